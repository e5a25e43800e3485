"""Frame transforms of the data pipeline as pure functions over arrays: camera resize / crop, global
LiDAR augmentation of points and boxes, range and field-of-view filters, the ground plane.

Both augmentations are recorded as the matrices the models take (frustum.py): `img_aug_matrix` maps
native image pixels (u, v, depth) to network-input pixels, `lidar_aug_matrix` maps the original LiDAR
frame to the augmented one the points and boxes live in. Boxes are internal (design.md §2).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from v2xfusion_perception import boxes as box_ops
from v2xfusion_perception import image_transform
from v2xfusion_perception.image_transform import ImageCrop


def image_crop(native_size: Sequence[int], input_size: Sequence[int], jitter: float = 0.0,
               rng: np.random.Generator | None = None) -> ImageCrop:
    """The resize / crop bringing a native (W, H) image to the network input (W, H).

    The factor makes the resized image cover the input (max of the two ratios); the crop keeps the
    bottom of the image (the road; the sky goes first, as BEVFusion's bottom crop) and is centred
    sideways. With rng (training) the factor is multiplied by U(1 - jitter, 1 + jitter) and the crop
    slides sideways uniformly over the slack.
    """
    if rng is None:  # evaluation: the rule the runtime applies (image_transform.image_crop)
        return image_transform.image_crop(native_size, input_size)
    width, height = (int(v) for v in native_size)
    out_w, out_h = (int(v) for v in input_size)
    scale = max(out_w / width, out_h / height)
    if jitter > 0:
        scale *= float(rng.uniform(1.0 - jitter, 1.0 + jitter))
    resized = (int(round(width * scale)), int(round(height * scale)))
    slack = resized[0] - out_w
    left = int(round(rng.uniform(min(0, slack), max(0, slack))))
    return ImageCrop(scale, resized, left, resized[1] - out_h)


def apply_image_crop(image: Image.Image, crop: ImageCrop, input_size: Sequence[int]) -> np.ndarray:
    """The network-input picture (H, W, 3) uint8 of an RGB PIL image."""
    out_w, out_h = (int(v) for v in input_size)
    resized = image.resize(crop.resized, Image.BILINEAR)
    return np.asarray(resized.crop((crop.left, crop.top, crop.left + out_w, crop.top + out_h)))


def normalise_image(picture: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32, (value / 255 - mean) / std per channel."""
    scaled = picture.astype(np.float32) / 255.0
    scaled = (scaled - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(scaled.transpose(2, 0, 1))


def lidar_aug_matrix(rotation: float, scale: float, flip_y: bool, flip_x: bool,
                     translation: Sequence[float]) -> np.ndarray:
    """(4, 4) float64: rotate about +z, scale, mirror (y -> -y, then x -> -x), then translate."""
    cos, sin = math.cos(rotation), math.sin(rotation)
    linear = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]]) * scale
    mirror = np.diag([-1.0 if flip_x else 1.0, -1.0 if flip_y else 1.0, 1.0])
    matrix = np.eye(4)
    matrix[:3, :3] = mirror @ linear
    matrix[:3, 3] = np.asarray(translation, dtype=np.float64)
    return matrix


def random_lidar_aug(rng: np.random.Generator, rotation: Sequence[float], scale: Sequence[float],
                     translation_std: Sequence[float], flip_y: float, flip_x: float) -> np.ndarray:
    """A random lidar_aug_matrix (4, 4): rotation / scale uniform in their (low, high), translation
    Gaussian, each flip with its probability."""
    angle = float(rng.uniform(*rotation))
    factor = float(rng.uniform(*scale))
    shift = rng.normal(0.0, 1.0, 3) * np.asarray(translation_std, dtype=np.float64)
    return lidar_aug_matrix(angle, factor, bool(rng.random() < flip_y), bool(rng.random() < flip_x), shift)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """points: (N, C >= 3) float32; x y z go through matrix (4, 4), the other columns stay."""
    out = points.copy()
    out[:, :3] = box_ops.transform_points(points[:, :3], matrix).astype(points.dtype)
    return out


def transform_boxes(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Internal boxes (M, 7) through a lidar_aug_matrix (rotation about z, uniform scale, mirrors,
    translation): centres move, sizes scale, the heading turns with the mapped heading vector."""
    boxes = box_ops.as_boxes(boxes)
    linear = np.asarray(matrix, dtype=np.float64)[:3, :3]
    scale = abs(np.linalg.det(linear)) ** (1.0 / 3.0)
    out = boxes.copy()
    out[:, :3] = box_ops.transform_points(boxes[:, :3], matrix)
    out[:, 3:6] = boxes[:, 3:6] * scale
    heading = np.stack([np.cos(boxes[:, 6]), np.sin(boxes[:, 6]), np.zeros(len(boxes))], axis=1) @ linear.T
    out[:, 6] = box_ops.wrap_yaw(np.arctan2(heading[:, 1], heading[:, 0]))
    return out


def fold_heading(boxes: np.ndarray) -> np.ndarray:
    """Boxes (M, 7) with yaw folded into [-pi/2, pi/2) (the same box: turning it by pi changes nothing
    but which end is the front)."""
    out = box_ops.as_boxes(boxes).copy()
    out[:, 6] = np.mod(out[:, 6] + np.pi / 2, np.pi) - np.pi / 2
    return out


def points_in_range(points: np.ndarray, pc_range: Sequence[float]) -> np.ndarray:
    """Mask (N,) of points whose x y z lie in pc_range [x0, y0, z0, x1, y1, z1) (the voxelizers' rule)."""
    low, high = np.asarray(pc_range[:3]), np.asarray(pc_range[3:])
    return np.all((points[:, :3] >= low) & (points[:, :3] < high), axis=1)


def boxes_in_bev_range(boxes: np.ndarray, pc_range: Sequence[float]) -> np.ndarray:
    """Mask (M,) of boxes whose centre lies in pc_range's x / y extent (mmdet3d's ObjectRangeFilter)."""
    boxes = box_ops.as_boxes(boxes)
    return ((boxes[:, 0] >= pc_range[0]) & (boxes[:, 0] < pc_range[3])
            & (boxes[:, 1] >= pc_range[1]) & (boxes[:, 1] < pc_range[4]))


def points_in_image(points: np.ndarray, lidar2img: np.ndarray, image_size: Sequence[int]) -> np.ndarray:
    """Mask (N,) of points in front of the camera whose projection lands in the (W, H) image."""
    uv, depth = box_ops.project_points(points[:, :3], lidar2img)
    width, height = image_size
    return (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)


def ground_plane_from_denorm(denorm: np.ndarray, lidar2cam: np.ndarray) -> np.ndarray:
    """The ground plane (a, b, c, d) in the LiDAR frame from BEVHeight's `denorm` in the camera frame.

    denorm: (4,) a plane n . X + d = 0 in camera coordinates; lidar2cam: (4, 4). Returns (4,) float64
    with (a, b, c) a unit normal such that `a x + b y + c z + d` is the signed distance to the plane,
    negative above it (towards the LiDAR's +z): the height-bin convention of BEVHeight / CUDA-V2XFusion,
    where dbound [-2, 0] spans 0..2 m above the ground (a LiDAR h metres above a level ground gives
    (0, 0, -1, -h)).
    """
    denorm = np.asarray(denorm, dtype=np.float64).reshape(4)
    lidar2cam = np.asarray(lidar2cam, dtype=np.float64)
    rotation, translation = lidar2cam[:3, :3], lidar2cam[:3, 3]
    # n . (R X + t) + d = (R^T n) . X + (n . t + d)
    normal = rotation.T @ denorm[:3]
    offset = denorm[:3] @ translation + denorm[3]
    length = float(np.linalg.norm(normal))
    plane = np.append(normal, offset) / length
    return -plane if plane[2] > 0 else plane
