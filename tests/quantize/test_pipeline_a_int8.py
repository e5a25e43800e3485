"""Pipeline A INT8 (v2xfusion_tools/quantize/pipeline_a.py): four INT8 IRs from the FP32 stage inputs,
static-V PFE preferred, floating point where the defaults say so, the manifest updated, and the
validation numbers consistent with the boxes they summarise."""
import re

import numpy as np
import openvino as ov
import pytest

from v2xfusion_tools.export.manifest import model_file, read_manifest, verify_files
from v2xfusion_tools.export.metadata import RT_INFO_SECTION
from v2xfusion_tools.quantize.agreement import agreement
from v2xfusion_tools.quantize.pipeline_a import DEFAULT_SETTINGS, quantize_pipeline_a

from .conftest import STATIC_V


def _fake_quantize_nodes(model: ov.Model) -> list[str]:
    return [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "FakeQuantize"]


@pytest.fixture(scope="module")
def quantized_a(detector_a, artifacts_a):
    """The tiny detector's artifacts quantized: calibration frames 0-7, validation frames 8-13."""
    _, model, batches = detector_a
    return quantize_pipeline_a(artifacts_a.folder, model, list(batches[:8]), list(batches[8:14]),
                               ap_score_threshold=0.1)


def test_four_stages_quantize_into_the_manifest_and_validate(detector_a, artifacts_a, quantized_a):
    config, _, _ = detector_a
    folder = artifacts_a.folder
    report, boxes = quantized_a
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    core = ov.Core()
    for stage, settings in DEFAULT_SETTINGS.items():
        entry = model_file(manifest, stage, "int8")
        int8 = core.read_model(str(folder / entry["file"]))
        assert int8.get_rt_info([RT_INFO_SECTION, "stage"]).astype(str) == f'"{stage}"'
        nodes = _fake_quantize_nodes(int8)
        if settings.keep_float:
            assert not nodes, stage
        else:  # the head keeps only its shared 3x3 conv in INT8 (ptq.HEAD_TASK_BRANCHES stay float)
            assert len(nodes) >= (1 if stage == "head" else 2), stage
        for pattern in settings.ignored_patterns:  # what stays float carries no quantizer
            assert not any(re.fullmatch(pattern, n.rsplit("/fq", 1)[0]) for n in nodes), (stage, pattern)
    assert model_file(manifest, "lidar_pfe", "int8")["static_voxels"] == STATIC_V
    assert report.stages["lidar_pfe"]["source"] == f"lidar_pfe_v{STATIC_V}.onnx"
    validation = manifest["quantization"]["validation"]
    assert validation["frames"] == 6 and validation == report.agreement.as_dict()
    again = agreement(boxes.fp32, boxes.int8, len(config["class_names"]))
    assert again.matched == validation["matched"] and again.reference_boxes == sum(len(b.scores) for b in boxes.fp32)
    assert len(boxes.fp32_for_ap) == 6 and sum(len(b.scores) for b in boxes.fp32_for_ap) >= validation["reference_boxes"]
    assert 0.0 <= report.stage_errors["camera.backbone"] < 1.0
    assert report.stage_errors["lidar_pfe"] == 0.0  # kept floating point
    # the trained part of the tiny detector (its head) quantizes well; its random trunk does not (see README)
    assert report.stage_errors["head"] < 0.1


def test_int8_head_runs_with_the_plugins_default_precision(artifacts_a, quantized_a):
    folder = artifacts_a.folder
    manifest = read_manifest(folder)
    head = ov.Core().compile_model(str(folder / model_file(manifest, "head", "int8")["file"]), "CPU")
    middle = np.random.default_rng(0).standard_normal((1, 512, 32, 32)).astype(np.float32)
    out = head({"middle": middle})
    assert np.asarray(out[head.outputs[0]]).shape == (1, 3, 32, 32)
