"""Pipeline A's four ONNX files (v2xfusion_tools/export/onnx_pipeline_a.py) against the PyTorch stages:
ONNX Runtime and OpenVINO (f32) per output, the guide's I/O names, dynamic and static V, FP16 IR, and
the decoded boxes of the whole chain."""
import numpy as np
import onnx
import onnxruntime
import openvino as ov
import pytest
import torch

from v2xfusion_tools.export.metadata import read_onnx_metadata
from v2xfusion_tools.export.onnx_pipeline_a import export_pipeline_a, pad_pillars, stage_modules
from v2xfusion_tools.export.openvino_ir import F32_CONFIG
from v2xfusion_tools.quantize.pipeline_a import ChainA, openvino_runner, torch_runners

from .conftest import STATIC_V

GUIDE_IO = {  # guide §4.1 stage I/O
    "camera.backbone": (["img"], ["camera_depth", "camera_feature"]),
    "lidar_pfe": (["voxels", "num_points", "coors"], ["pillar_features"]),
    "fuser": (["camera_bev", "lidar_bev"], ["middle"]),
    "head": (["middle"], ["heatmap", "reg", "height", "dim", "rot", "vel"]),
}


def _relative_max_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


def _torch_outputs(module, inputs: dict) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(*(torch.from_numpy(np.asarray(v)) for v in inputs.values()))
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def _stage_inputs(detector, stage: str, frame: int, static_v=None) -> dict:
    """Real inputs of a stage on a held-out frame (the PyTorch chain up to it)."""
    _, model, batches = detector
    chain = ChainA(model, torch_runners(model), model.heads["object"].output_names, static_v)
    return chain.run(batches[frame], until=stage).stage_inputs[stage]


@pytest.mark.parametrize("stem", ["camera.backbone", "lidar_pfe", f"lidar_pfe_v{STATIC_V}", "fuser", "head"])
def test_each_onnx_file_matches_pytorch_in_onnxruntime_and_openvino_f32(detector_a, artifacts_a, stem):
    config, model, _ = detector_a
    stage = "lidar_pfe" if stem.startswith("lidar_pfe") else stem
    static_v = STATIC_V if stem != stage else None
    path = artifacts_a.folder / f"{stem}.onnx"
    graph = onnx.load(path).graph
    assert ([i.name for i in graph.input], [o.name for o in graph.output]) == GUIDE_IO[stage]
    inputs = _stage_inputs(detector_a, stage, frame=10, static_v=static_v)
    want = _torch_outputs(stage_modules(model)[stage], inputs)
    ort = onnxruntime.InferenceSession(str(path)).run(None, inputs)
    compiled = ov.Core().compile_model(str(path), "CPU", F32_CONFIG)
    ov_out = compiled(inputs)
    for k, name in enumerate(GUIDE_IO[stage][1]):
        assert _relative_max_error(ort[k], want[k]) <= 1e-4, (stem, name, "onnxruntime")
        assert _relative_max_error(np.asarray(ov_out[name]), want[k]) <= 1e-4, (stem, name, "openvino")
    metadata = read_onnx_metadata(path)
    assert metadata["pc_range"] == config["geometry"]["pc_range"] and metadata["stage"] == stage
    assert metadata.get("static_voxels") == (static_v if stage == "lidar_pfe" else None)


def test_dynamic_pfe_runs_any_pillar_count_and_static_pfe_has_fixed_shape(detector_a, artifacts_a):
    config, model, batches = detector_a
    voxels, num_points, coors = model.encoders["lidar"]["voxelize"](batches[12].points)
    names = ("voxels", "num_points", "coors")
    dynamic = onnxruntime.InferenceSession(str(artifacts_a.folder / "lidar_pfe.onnx"))
    for count in (1, 37, voxels.shape[0]):
        part = {n: t[:count].numpy() for n, t in zip(names, (voxels, num_points.int(), coors.int()))}
        (out,) = dynamic.run(None, part)
        assert out.shape == (count, 64)
        assert _relative_max_error(out, _torch_outputs(stage_modules(model)["lidar_pfe"], part)[0]) <= 1e-4
    static = onnx.load(artifacts_a.folder / f"lidar_pfe_v{STATIC_V}.onnx").graph.input[0]
    assert [d.dim_value for d in static.type.tensor_type.shape.dim] == [STATIC_V, 32, 4]
    padded = pad_pillars(voxels, num_points.int(), coors.int(), STATIC_V)
    (out,) = onnxruntime.InferenceSession(str(artifacts_a.folder / f"lidar_pfe_v{STATIC_V}.onnx")).run(
        None, {n: t.numpy() for n, t in zip(names, padded)})
    (real,) = dynamic.run(None, {n: t.numpy() for n, t in zip(names, (voxels, num_points.int(), coors.int()))})
    np.testing.assert_allclose(out[:voxels.shape[0]], real, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="fixed_v"):
        pad_pillars(voxels, num_points, coors, 3)


def test_fp16_ir_stays_within_fp16_rounding_of_fp32(detector_a, artifacts_a):
    _, model, _ = detector_a
    core = ov.Core()
    for stage in ("camera.backbone", "head"):
        inputs = _stage_inputs(detector_a, stage, frame=9)
        want = _torch_outputs(stage_modules(model)[stage], inputs)
        compiled = core.compile_model(str(artifacts_a.folder / f"{stage}_fp16.xml"), "CPU", F32_CONFIG)
        got = [np.asarray(v) for v in compiled(inputs).values()]
        assert all(_relative_max_error(g, w) < 2e-2 for g, w in zip(got, want)), stage
    weights = (artifacts_a.folder / "head_fp16.bin").stat().st_size
    onnx_size = (artifacts_a.folder / "head.onnx").stat().st_size
    assert weights < 0.6 * onnx_size  # half-size weights


def test_openvino_fp32_chain_gives_the_pytorch_boxes_within_a_centimetre(detector_a, artifacts_a):
    """The four OpenVINO FP32 stages with the kernels' glue against BEVFusion.forward's decoded boxes."""
    config, model, batches = detector_a
    head = model.heads["object"]
    core = ov.Core()
    folder = artifacts_a.folder
    runners = {stage: openvino_runner(core.compile_model(str(folder / f"{stage}.onnx"), "CPU", F32_CONFIG))
               for stage in ("camera.backbone", "lidar_pfe", "fuser", "head")}
    chain = ChainA(model, runners, head.output_names, None)
    total = 0
    for frame in range(8, 20):
        outputs = chain.run(batches[frame]).head_outputs
        preds = [{name: torch.from_numpy(outputs[name]) for name in head.output_names}]
        got = head.predict(preds)[0]
        with torch.no_grad():
            want = model(batches[frame]).detections[0]
        assert got.boxes.shape[0] == want.boxes.shape[0], frame
        assert torch.equal(got.labels, want.labels)
        assert (got.boxes[:, :3] - want.boxes[:, :3]).abs().max() < 0.01 if len(got.boxes) else True
        total += len(got.boxes)
    assert total >= 12  # the trained head finds objects: the comparison is not of empty sets


def test_export_refuses_a_model_in_training_mode(detector_a, tmp_path):
    config, model, _ = detector_a
    model.train()
    try:
        with pytest.raises(ValueError, match="eval mode"):
            export_pipeline_a(model, config, tmp_path)
    finally:
        model.eval()
