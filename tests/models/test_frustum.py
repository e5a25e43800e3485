"""LSS frustum bins and geometry (v2xfusion_tools/models/camera/frustum.py), checked by projecting the
frustum points back into the image with numpy."""
import math

import numpy as np
import torch

from v2xfusion_tools.models.camera.frustum import (INVALID_COORDINATE, depth_bins, feature_pixels,
                                                   frustum_points_depth, frustum_points_height, height_bins)
from .batches import camera_calibration


def test_depth_bins_are_start_end_count():
    bins = depth_bins([1.0, 60.0, 118])
    assert bins.shape == (118,)
    np.testing.assert_allclose(bins.numpy(), np.arange(1.0, 60.0, 0.5), atol=1e-6)


def test_height_bins_follow_the_power_spacing():
    bins = height_bins([-2.0, 0.0, 90], 1.5).numpy()
    k = np.arange(90)
    np.testing.assert_allclose(bins, -2.0 + 2.0 * (k / 90) ** 1.5, atol=1e-6)
    np.testing.assert_allclose(height_bins([-2.0, 0.0, 4], 1.0).numpy(), [-2.0, -1.5, -1.0, -0.5])


def test_feature_pixels_span_the_image():
    pixels = feature_pixels([128, 64], [8, 4])
    assert pixels.shape == (4, 8, 2)
    assert pixels[0, 0].tolist() == [0.0, 0.0] and pixels[-1, -1].tolist() == [127.0, 63.0]
    assert pixels[2, 3, 0] == np.linspace(0, 127, 8)[3] and pixels[2, 3, 1] == np.linspace(0, 63, 4)[2]


def _augmentations():
    img_aug = torch.eye(4)
    img_aug[0, 0] = img_aug[1, 1] = 0.5  # resize by half, then crop 3 px left / 2 px top
    img_aug[0, 3], img_aug[1, 3] = -3.0, -2.0
    yaw = 0.3
    lidar_aug = torch.eye(4)
    lidar_aug[:3, :3] = torch.tensor([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0],
                                      [0, 0, 1]]) * 1.05
    lidar_aug[:3, 3] = torch.tensor([0.5, -1.0, 0.2])
    return img_aug.unsqueeze(0), lidar_aug.unsqueeze(0)


def _project(points_aug: np.ndarray, lidar_aug, lidar2camera, intrinsics, img_aug):
    """Independent numpy projection: augmented LiDAR points -> network-input pixels and camera depth."""
    la, l2c, k, ia = (m[0].double().numpy() for m in (lidar_aug, lidar2camera, intrinsics, img_aug))
    original = (points_aug - la[:3, 3]) @ np.linalg.inv(la[:3, :3]).T
    cam = original @ l2c[:3, :3].T + l2c[:3, 3]
    uv = (cam @ k[:3, :3].T)[:, :2] / cam[:, 2:3]
    uv = uv @ ia[:2, :2].T + ia[:2, 3]
    return uv, cam[:, 2], original


def test_depth_frustum_points_project_back_to_their_pixel_and_depth():
    intrinsics, lidar2camera = camera_calibration(1, [128, 64])
    img_aug, lidar_aug = _augmentations()
    pixels = feature_pixels([128, 64], [8, 4])
    bins = depth_bins([1.0, 60.0, 118])
    points = frustum_points_depth(pixels, bins, torch.inverse(lidar2camera), intrinsics, img_aug, lidar_aug)
    assert points.shape == (1, 118, 4, 8, 3)
    flat = points.reshape(-1, 3).double().numpy()
    uv, depth, _ = _project(flat, lidar_aug, lidar2camera, intrinsics, img_aug)
    expected_uv = np.broadcast_to(pixels.numpy(), (118, 4, 8, 2)).reshape(-1, 2)
    expected_depth = np.broadcast_to(bins.numpy().reshape(-1, 1, 1), (118, 4, 8)).reshape(-1)
    np.testing.assert_allclose(uv, expected_uv, atol=2e-3)
    np.testing.assert_allclose(depth, expected_depth, rtol=1e-5, atol=1e-4)


def test_height_frustum_points_lie_on_their_plane_and_ray():
    intrinsics, lidar2camera = camera_calibration(1, [128, 64], height=4.0, pitch_deg=15.0)
    img_aug, lidar_aug = _augmentations()
    pixels = feature_pixels([128, 64], [8, 4])
    bins = height_bins([-2.0, 0.0, 6], 1.5)
    plane = torch.tensor([[0.0, 0.0, 1.0, 3.0]])  # ground 3 m below the LiDAR: height = z + 3
    points = frustum_points_height(pixels, bins, torch.inverse(lidar2camera), intrinsics, img_aug, lidar_aug,
                                   plane)
    flat = points.reshape(-1, 3).double().numpy()
    valid = flat[:, 0] != INVALID_COORDINATE
    uv, depth, original = _project(flat, lidar_aug, lidar2camera, intrinsics, img_aug)
    expected_uv = np.broadcast_to(pixels.numpy(), (6, 4, 8, 2)).reshape(-1, 2)
    expected_height = np.broadcast_to(bins.numpy().reshape(-1, 1, 1), (6, 4, 8)).reshape(-1)
    # the camera is 4 m above the LiDAR, 7 m above ground: pixels below the horizon meet every plane
    assert valid.mean() > 0.5
    np.testing.assert_allclose(uv[valid], expected_uv[valid], atol=2e-3)
    np.testing.assert_allclose(original[valid, 2] + 3.0, expected_height[valid], atol=1e-3)
    assert (depth[valid] > 0).all()


def test_height_frustum_marks_rays_that_miss_their_plane():
    intrinsics, lidar2camera = camera_calibration(1, [128, 64], height=1.0, pitch_deg=-30.0)  # looking up
    eye = torch.eye(4).unsqueeze(0)
    points = frustum_points_height(feature_pixels([128, 64], [8, 4]), torch.tensor([-1.0]),
                                   torch.inverse(lidar2camera), intrinsics, eye, eye,
                                   torch.tensor([[0.0, 0.0, 1.0, 0.0]]))
    # every ray of a camera pitched 30 deg up points above the plane z = -1 below it: none meets it
    assert (points == INVALID_COORDINATE).all()
