"""BEVPool-v2 geometry at run time: the frustum as the PyTorch model computes it, the export's geometry files
reproduced exactly, recomputed when the calibration changes and cached otherwise."""
import math

import numpy as np
import torch
import v2xfusion_kernels

from v2xfusion_perception.camera_geometry import (
    CameraGeometry,
    feature_pixels,
    frustum_points_height,
)
from v2xfusion_perception.frame import Calibration
from v2xfusion_perception.image_transform import image_crop
from v2xfusion_perception.manifest import read_manifest
from v2xfusion_perception.pipeline_b import _export_calibration
from v2xfusion_tools.models.camera.frustum import (
    depth_bins,
    frustum_points_depth,
    height_bins,
)
from v2xfusion_tools.models.camera.frustum import feature_pixels as torch_feature_pixels
from v2xfusion_tools.models.camera.frustum import (
    frustum_points_height as torch_frustum_height,
)


def roadside_camera(pitch_deg=12.0, height=4.6, size=(1920, 1080), focal=2180.0):
    """A pole camera `height` m above the LiDAR origin looking along +x, pitched down."""
    intrinsics = np.array([[focal, 0, size[0] / 2], [0, focal, size[1] / 2], [0, 0, 1.0]])
    base = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    p = math.radians(pitch_deg)
    pitch = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    lidar2cam = np.eye(4)
    lidar2cam[:3, :3] = pitch @ base
    lidar2cam[:3, 3] = -lidar2cam[:3, :3] @ np.array([0.0, 0.0, height])
    return Calibration(intrinsics, lidar2cam, size)


def test_height_frustum_matches_the_models_frustum():
    calibration = roadside_camera()
    network, feature = (1536, 864), (96, 54)
    aug = image_crop(calibration.image_size, network).matrix
    heights = height_bins([-2.0, 0.0, 90], 1.5)
    plane = np.array([0.0, 0.0, -1.0, -0.3])
    ours = frustum_points_height(feature_pixels(network, feature), heights.numpy(), np.linalg.inv(calibration.lidar2cam),
                                 calibration.intrinsics, aug, plane)
    intrinsics = torch.eye(4)
    intrinsics[:3, :3] = torch.from_numpy(calibration.intrinsics).float()
    theirs = torch_frustum_height(torch_feature_pixels(network, feature), heights,
                                  torch.inverse(torch.from_numpy(calibration.lidar2cam).float())[None], intrinsics[None],
                                  torch.from_numpy(aug).float()[None], torch.eye(4)[None],
                                  torch.from_numpy(plane).float()[None])[0].numpy()
    assert ours.shape == theirs.shape == (90, 54, 96, 3)
    invalid_ours, invalid_theirs = ours[..., 0] < -1e5, theirs[..., 0] < -1e5
    np.testing.assert_array_equal(invalid_ours, invalid_theirs)
    assert invalid_ours.any() and not invalid_ours.all()   # the sky never meets the ground planes
    np.testing.assert_allclose(ours[~invalid_ours], theirs[~invalid_theirs], rtol=1e-4, atol=1e-3)


def test_depth_frustum_of_the_kernels_matches_the_models_frustum():
    calibration = Calibration(np.array([[721.5, 0, 609.6], [0, 721.5, 172.9], [0, 0, 1.0]]),
                              roadside_camera(pitch_deg=0.0, height=0.08).lidar2cam, (1242, 375))
    network, feature = (1280, 384), (80, 24)
    aug = image_crop(calibration.image_size, network).matrix
    depths = depth_bins([1.0, 60.0, 118])
    camera2lidar = np.linalg.inv(calibration.lidar2cam)
    ours = v2xfusion_kernels.frustum_points(camera2lidar.astype(np.float32), calibration.intrinsics.astype(np.float32),
                                            aug.astype(np.float32), depths.numpy(), list(network), list(feature))
    intrinsics = torch.eye(4)
    intrinsics[:3, :3] = torch.from_numpy(calibration.intrinsics).float()
    theirs = frustum_points_depth(torch_feature_pixels(network, feature), depths,
                                  torch.from_numpy(camera2lidar).float()[None], intrinsics[None],
                                  torch.from_numpy(aug).float()[None], torch.eye(4)[None])[0].numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)


def test_geometry_of_the_export_calibration_is_reproduced_exactly(reference_b):
    manifest = read_manifest(reference_b.artifacts)
    calibration, exported, plane = _export_calibration(manifest)
    geometry = CameraGeometry(manifest.geometry, v2xfusion_kernels.backend("host"), plane)
    computed = geometry(calibration, image_crop(calibration.image_size, manifest.geometry["image_size"]).matrix)
    assert manifest.geometry["depth_mode"] == "height"
    assert len(exported.intervals) > 2
    np.testing.assert_array_equal(computed.indices, exported.indices)
    np.testing.assert_array_equal(computed.intervals, exported.intervals)


def test_geometry_is_recomputed_when_the_calibration_changes_and_cached_otherwise(reference_b):
    manifest = read_manifest(reference_b.artifacts)
    geometry = CameraGeometry(manifest.geometry, v2xfusion_kernels.backend("host"), np.array([0.0, 0.0, -1.0, 0.0]))
    first = roadside_camera()
    moved = roadside_camera(pitch_deg=14.0)
    aug = image_crop(first.image_size, manifest.geometry["image_size"]).matrix
    a = geometry(first, aug)
    assert geometry(first, aug) is a and geometry.computed == 1
    b = geometry(moved, aug)
    assert geometry.computed == 2
    assert not np.array_equal(a.intervals, b.intervals)
    assert geometry(first, aug) is a and geometry.computed == 2
