"""Pipeline B INT8 in the guide's three stages (v2xfusion_tools/quantize/pipeline_b.py): the voxel dump of
a synthetic set, the FP32 pseudo ground truth, PTQ with the mixed preset and histogram ranges of a model
holding our custom ops, and the INT8 IR read back with the extension."""
import json

import numpy as np
import openvino as ov
import pytest
import torch

import v2xfusion_ov_extension
from data.synthetic_sets import tiny_config
from v2xfusion_perception.errors import V2XError
from v2xfusion_tools.data.loader import build_dataset
from v2xfusion_tools.export.artifacts import export_artifacts
from v2xfusion_tools.export.calibration import calibration_from_dataset
from v2xfusion_tools.export.manifest import model_file, read_manifest
from v2xfusion_tools.models import build_model
from v2xfusion_tools.quantize import pipeline_b


def test_voxel_dump_holds_the_data_pipelines_frames_voxelized(kitti_root, tmp_path):
    config = tiny_config("kitti", "second_bevpoolv2")
    count = pipeline_b.dump_voxels(config, tmp_path, "val", 3, kitti_root)
    index = json.loads((tmp_path / "index.json").read_text())
    assert count == 3 and len(index["frame_ids"]) == 3
    sample = build_dataset(config, "val", training=False, data_root=kitti_root)[1]
    with np.load(pipeline_b.frame_file(tmp_path, 1)) as frame:
        np.testing.assert_array_equal(frame["img"][0], sample.img)
        coors, features = frame["coors"], frame["voxel_features"]
    pc = np.asarray(config["geometry"]["pc_range"])
    size = np.asarray(config["geometry"]["voxel_size"])
    cells = np.floor((sample.points[:, :3] - pc[:3]) / size).astype(np.int64)  # independent numpy voxelization
    assert (coors[:, 0] == 0).all() and len(np.unique(coors, axis=0)) == len(coors)
    for row in (0, len(coors) // 2, len(coors) - 1):
        z, y, x = coors[row, 1:]
        members = sample.points[(cells[:, 0] == x) & (cells[:, 1] == y) & (cells[:, 2] == z)]
        np.testing.assert_allclose(features[row], members.mean(axis=0), rtol=1e-5, atol=1e-5)
    assert len(coors) == len(np.unique(cells[((cells >= 0) & (cells < np.round((pc[3:] - pc[:3]) / size))).all(1)],
                                       axis=0))


def test_three_stages_quantize_a_model_with_custom_ops(kitti_root, tmp_path):
    config = tiny_config("kitti", "second_bevpoolv2")
    torch.manual_seed(0)
    model = build_model(config).eval()
    calibration = calibration_from_dataset(config, "val", 0, kitti_root)
    folder = export_artifacts(config, model, tmp_path / "art", {"config": "tiny"}, calibration=calibration).folder
    calib_dir = tmp_path / "calib"
    assert pipeline_b.dump_voxels(config, calib_dir, "val", 4, kitti_root) == 4
    cache = calib_dir / "_pseudo_gt.npz"
    reference = pipeline_b.pseudo_gt(folder, calib_dir, cache, n_calib=2, n_val=2)
    assert len(pipeline_b.load_boxes(cache)) == 2
    for cached, fresh in zip(pipeline_b.load_boxes(cache), reference):
        np.testing.assert_array_equal(cached.boxes, fresh.boxes)
    with pytest.raises(V2XError, match="n-val"):
        pipeline_b.quantize_unified(folder, calib_dir, cache, n_calib=2, n_val=3)
    result = pipeline_b.quantize_unified(folder, calib_dir, cache, n_calib=2, n_val=2)
    assert (result.settings.preset, result.settings.activation_range) == ("mixed", "histogram")
    manifest = read_manifest(folder)
    assert model_file(manifest, "unified", "int8")["file"] == "bevfusion_unified_int8.xml"
    assert manifest["quantization"]["validation"] == result.agreement.as_dict()
    core = ov.Core()
    core.add_extension(str(v2xfusion_ov_extension.library_path()))
    int8 = core.read_model(str(result.int8_file))
    types = [op.get_type_name() for op in int8.get_ordered_ops()]
    assert types.count("FakeQuantize") > 10
    assert {"BevPoolV2", "SparseConvolution", "SparseToDense"} <= set(types)  # custom ops kept, in float
    compiled = core.compile_model(int8, "CPU")
    inputs = pipeline_b.load_frame(calib_dir, 3, *_geometry(folder))
    assert np.isfinite(np.asarray(compiled(inputs)[compiled.outputs[0]])).all()


def test_validation_of_the_trained_tiny_detector_is_recorded(detector_b, artifacts_b, tmp_path):
    """Frames dumped from the tiny detector's scenes; the agreement is taken against the cached FP32 boxes
    and recorded in the manifest."""
    _, model, batches = detector_b
    for i, batch in enumerate(batches[:12]):
        features, coors = model.encoders["lidar"]["voxelize"](batch.points)
        np.savez(pipeline_b.frame_file(tmp_path, i), img=batch.img.numpy(), voxel_features=features.numpy(),
                 coors=coors.int().numpy())
    reference = pipeline_b.pseudo_gt(artifacts_b.folder, tmp_path, tmp_path / "pgt.npz", n_calib=8, n_val=4)
    assert sum(len(r.scores) for r in reference) > 0
    result = pipeline_b.quantize_unified(artifacts_b.folder, tmp_path, tmp_path / "pgt.npz", n_calib=8, n_val=4)
    assert result.agreement.frames == 4 and result.agreement.reference_boxes == sum(len(r.scores) for r in reference)
    recorded = read_manifest(artifacts_b.folder)["quantization"]
    assert recorded["validation"]["matched"] == result.agreement.matched
    assert recorded["calibration_frames"] == 8


def _geometry(folder):
    from v2xfusion_tools.export.geometry import read_geometry

    geometry = read_geometry(folder / "geometry")
    return geometry.indices, geometry.intervals
