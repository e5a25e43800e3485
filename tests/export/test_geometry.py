"""BEVPool-v2 geometry precompute (v2xfusion_tools/export/geometry.py) and calibration files
(calibration.py) against the model's own BEVPool-v2 preparation."""
import json

import numpy as np
import pytest
import torch

from models.batches import load_fixture
from v2xfusion_tools.export.calibration import CalibrationError, read_calibration_file, write_calibration_file
from v2xfusion_tools.export.geometry import (frustum_points, precompute_geometry, read_geometry, write_geometry)
from v2xfusion_tools.models import build_model

from .trained import batch_camera_calibration


@pytest.mark.parametrize("preset", ["kitti", "v2x"], ids=["depth-bins", "height-bins"])
def test_intervals_hold_the_frustum_points_the_model_pools_into_each_cell(preset):
    config = load_fixture("b", preset)
    vtransform = build_model(config).encoders["camera"]["vtransform"]
    calibration = batch_camera_calibration(config)
    geometry = precompute_geometry(vtransform, calibration)
    reference = vtransform.prepare_bevpool_v2(frustum_points(vtransform, calibration).unsqueeze(0))
    depth_bins, feat_h, feat_w = vtransform.D, vtransform.feature_size[1], vtransform.feature_size[0]
    assert geometry.indices.shape == (depth_bins * feat_h * feat_w,)
    assert sorted(geometry.indices.tolist()) == list(range(len(geometry.indices)))  # a permutation
    runs, sentinel = geometry.intervals[:-1], geometry.intervals[-1]
    assert sentinel[2] == -1 and sentinel[1] == len(geometry.indices)
    ranks = reference.ranks_bev[reference.interval_starts].numpy()
    np.testing.assert_array_equal(runs[:, 2], ranks)
    for (start, end, _), ref_start, ref_length in zip(runs, reference.interval_starts, reference.interval_lengths):
        expected = reference.ranks_depth[ref_start:ref_start + ref_length].numpy()
        assert sorted(geometry.indices[start:end].tolist()) == sorted(expected.tolist())
    assert len(runs) > 10


def test_geometry_files_round_trip_in_the_guides_raw_int32_layout(tmp_path):
    config = load_fixture("b", "kitti")
    vtransform = build_model(config).encoders["camera"]["vtransform"]
    calibration = batch_camera_calibration(config)
    geometry = precompute_geometry(vtransform, calibration)
    names = write_geometry(tmp_path, geometry, calibration)
    assert names == ["indices.bin", "intervals.bin", "geometry.pth", "calibration.json"]
    assert (tmp_path / "indices.bin").stat().st_size == 4 * geometry.indices.size
    raw = np.frombuffer((tmp_path / "intervals.bin").read_bytes(), dtype="<i4").reshape(-1, 3)
    np.testing.assert_array_equal(raw, geometry.intervals)
    back = read_geometry(tmp_path, num_points=geometry.indices.size)
    np.testing.assert_array_equal(back.indices, geometry.indices)
    tensors = torch.load(tmp_path / "geometry.pth", weights_only=True)
    np.testing.assert_array_equal(tensors["intervals"].numpy(), geometry.intervals)
    again = read_calibration_file(tmp_path / "calibration.json")
    np.testing.assert_array_equal(again.lidar2camera, calibration.lidar2camera)
    with pytest.raises(Exception, match="D \\* fH \\* fW"):
        read_geometry(tmp_path, num_points=geometry.indices.size + 1)


def test_height_bins_without_a_ground_plane_and_bad_calibration_files_are_named_errors(tmp_path):
    config = load_fixture("b", "v2x")
    vtransform = build_model(config).encoders["camera"]["vtransform"]
    path = tmp_path / "calib.json"
    calibration = batch_camera_calibration(config)
    write_calibration_file(path, calibration)
    values = json.loads(path.read_text())
    values["ground_plane"] = None
    path.write_text(json.dumps(values))
    with pytest.raises(CalibrationError, match="ground_plane"):
        precompute_geometry(vtransform, read_calibration_file(path))
    plane = read_calibration_file(path, ground_plane=[0.0, 0.0, 1.0, 0.0])
    assert precompute_geometry(vtransform, plane).intervals.shape[0] > 1
    values["lidar2camera"] = [[1.0, 0.0]]
    path.write_text(json.dumps(values))
    with pytest.raises(CalibrationError, match="calib.json: 'lidar2camera'"):
        read_calibration_file(path)
    with pytest.raises(CalibrationError, match="not found"):
        read_calibration_file(tmp_path / "missing.json")
