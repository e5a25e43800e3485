"""Camera frustum of the LSS view transform: depth / height bins and their points in the LiDAR frame.

Every camera feature pixel casts one ray; LSS puts D candidate points on it, one per bin, and the
network predicts a distribution over them. Two ways to place the points (design.md §2):

* `depth` (KITTI preset): the bins are metric depths along the camera's optical axis, as BEVFusion.
* `height` (v2x preset, BEVHeight / CUDA-V2XFusion): the bins are heights h above a plane; the point is
  where the ray meets the plane `n . X + d = h` (LiDAR frame). A roadside camera looks down on a
  ground whose distance varies far more than its height, which is what makes height bins work there.

Both take `dbound = (start, end, count)`; see `depth_bins` and `height_bins` for the spacing.
Matrices follow BEVFusion: `img_aug_matrix` maps original image pixels (u, v, depth) to network input
pixels, `lidar_aug_matrix` maps the original LiDAR frame to the augmented one the points live in.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

# where points that do not exist (a ray that never meets its height plane) are put: far outside any
# BEV grid, so the range check of the pooling drops them without a separate mask
INVALID_COORDINATE = -1.0e6


def depth_bins(dbound: Sequence[float]) -> Tensor:
    """Metric depths `start + k (end - start) / count`, k = 0..count-1. Returns (count,) float32.

    [1, 60, 118] gives 1.0, 1.5, ..., 59.5 m: BEVFusion's `arange(1, 60, 0.5)`.
    """
    start, end, count = float(dbound[0]), float(dbound[1]), int(dbound[2])
    return start + (end - start) / count * torch.arange(count, dtype=torch.float32)


def height_bins(dbound: Sequence[float], power: float) -> Tensor:
    """Heights `start + (end - start) (k / count) ** power`, k = 0..count-1. Returns (count,) float32.

    power 1 spaces them evenly; CUDA-V2XFusion uses 1.5, which packs bins near `start`.
    """
    start, end, count = float(dbound[0]), float(dbound[1]), int(dbound[2])
    fraction = torch.arange(count, dtype=torch.float64) / count
    return (start + (end - start) * fraction ** power).to(torch.float32)


def feature_pixels(image_size: Sequence[int], feature_size: Sequence[int]) -> Tensor:
    """Network-input pixel (u, v) of every feature-map cell, spread over the image as BEVFusion does.

    image_size: (W, H); feature_size: (fW, fH). Returns (fH, fW, 2) float32.
    """
    width, height = image_size
    feat_w, feat_h = feature_size
    us = torch.linspace(0, width - 1, feat_w, dtype=torch.float32)
    vs = torch.linspace(0, height - 1, feat_h, dtype=torch.float32)
    grid_v, grid_u = torch.meshgrid(vs, us, indexing="ij")
    return torch.stack([grid_u, grid_v], dim=-1)


def _undo_image_aug(pixels: Tensor, third: Tensor, img_aug_matrix: Tensor) -> Tensor:
    """(u', v', third) in the network input -> (u, v, third) in the original image.

    pixels: (fH, fW, 2); third: (D, 1, 1) or scalar broadcast; img_aug_matrix: (B, 4, 4).
    Returns (B, D, fH, fW, 3).
    """
    feat_h, feat_w = pixels.shape[:2]
    uv = pixels.view(1, 1, feat_h, feat_w, 2).expand(1, third.shape[0], feat_h, feat_w, 2)
    points = torch.cat([uv, third.expand(-1, feat_h, feat_w).unsqueeze(0).unsqueeze(-1)], dim=-1)
    post_rot = img_aug_matrix[:, :3, :3]
    post_trans = img_aug_matrix[:, :3, 3]
    points = points - post_trans.view(-1, 1, 1, 1, 3)
    return torch.einsum("bij,bdhwj->bdhwi", torch.inverse(post_rot), points)


def _apply_lidar_aug(points: Tensor, lidar_aug_matrix: Tensor) -> Tensor:
    """points: (B, D, fH, fW, 3) in the original LiDAR frame -> the augmented frame."""
    rot = lidar_aug_matrix[:, :3, :3]
    trans = lidar_aug_matrix[:, :3, 3]
    return torch.einsum("bij,bdhwj->bdhwi", rot, points) + trans.view(-1, 1, 1, 1, 3)


def frustum_points_depth(pixels: Tensor, depths: Tensor, camera2lidar: Tensor, intrinsics: Tensor,
                         img_aug_matrix: Tensor, lidar_aug_matrix: Tensor) -> Tensor:
    """LiDAR-frame point of every (depth bin, feature pixel).

    pixels: (fH, fW, 2) from `feature_pixels`; depths: (D,) metres; camera2lidar, intrinsics (K in the
    top-left 3x3), img_aug_matrix, lidar_aug_matrix: (B, 4, 4) float32. Returns (B, D, fH, fW, 3).
    """
    points = _undo_image_aug(pixels, depths.view(-1, 1, 1), img_aug_matrix)
    # pixel (u, v) at depth d is the camera point K^-1 (u d, v d, d)
    points = torch.cat([points[..., :2] * points[..., 2:3], points[..., 2:3]], dim=-1)
    combine = camera2lidar[:, :3, :3] @ torch.inverse(intrinsics[:, :3, :3])
    points = torch.einsum("bij,bdhwj->bdhwi", combine, points) + camera2lidar[:, :3, 3].view(-1, 1, 1, 1, 3)
    return _apply_lidar_aug(points, lidar_aug_matrix)


def frustum_points_height(pixels: Tensor, heights: Tensor, camera2lidar: Tensor, intrinsics: Tensor,
                          img_aug_matrix: Tensor, lidar_aug_matrix: Tensor, ground_plane: Tensor) -> Tensor:
    """LiDAR-frame point where each feature pixel's ray meets each height plane.

    heights: (D,) metres; ground_plane: (B, 4) (a, b, c, d) in the original LiDAR frame, the height of a
    point X being `a x + b y + c z + d` with (a, b, c) a unit normal (its sign says which way is
    "higher"). Other arguments as `frustum_points_depth`. A ray that meets its plane behind the camera
    or runs parallel to it gets `INVALID_COORDINATE`. Returns (B, D, fH, fW, 3).
    """
    ones = torch.ones(1, 1, 1, dtype=pixels.dtype, device=pixels.device)
    uv1 = _undo_image_aug(pixels, ones, img_aug_matrix)[:, 0]  # (B, fH, fW, 3) = (u, v, 1)
    rays_cam = torch.einsum("bij,bhwj->bhwi", torch.inverse(intrinsics[:, :3, :3]), uv1)
    rays = torch.einsum("bij,bhwj->bhwi", camera2lidar[:, :3, :3], rays_cam)
    origin = camera2lidar[:, :3, 3]
    normal = ground_plane[:, :3]
    offset = ground_plane[:, 3]
    # X = origin + t ray on the plane n.X + d = h  =>  t = (h - d - n.origin) / n.ray
    n_dot_ray = torch.einsum("bi,bhwi->bhw", normal, rays).unsqueeze(1)
    numerator = (heights.view(1, -1, 1, 1) - offset.view(-1, 1, 1, 1)
                 - (normal * origin).sum(-1).view(-1, 1, 1, 1))
    safe = torch.where(n_dot_ray.abs() > 1e-6, n_dot_ray, torch.ones_like(n_dot_ray))
    t = numerator / safe
    valid = (n_dot_ray.abs() > 1e-6) & (t > 0)
    points = origin.view(-1, 1, 1, 1, 3) + t.unsqueeze(-1) * rays.unsqueeze(1)
    points = _apply_lidar_aug(points, lidar_aug_matrix)
    return torch.where(valid.unsqueeze(-1), points, torch.full_like(points, INVALID_COORDINATE))
