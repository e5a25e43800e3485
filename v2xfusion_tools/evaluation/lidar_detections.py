"""Internal LiDAR-frame detections as KITTI prediction labels, so the camera-rect evaluator scores them.

The 3-D box converts through v2xfusion_perception.boxes.kitti_from_lidar_boxes with the frame's
lidar2cam; the 2-D box (which decides whether a detection is too small for a difficulty) is the
image rectangle around the projected corners, clipped to the image, as mmdet3d's KittiMetric and
BEVHeight's result2kitti make it (the part of a box behind the camera is cut off first). Like
mmdet3d, detections whose projection misses the image are dropped: KITTI-style ground truth only
covers the image.
truncated / occluded are written as 0 (the devkit never reads them for detections).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from v2xfusion_perception import boxes as box_ops
from v2xfusion_tools.datasets.kitti_format import KittiLabels

# the plane (depth in metres) boxes are cut at before projecting: what lies behind it has no image
_MIN_CORNER_DEPTH = 1e-3


def kitti_from_lidar_detections(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                                class_names: Sequence[str], lidar2cam: np.ndarray, lidar2img: np.ndarray,
                                image_size: tuple[int, int]) -> KittiLabels:
    """One frame's detections as prediction labels.

    boxes: (N, 7) internal LiDAR boxes (x, y, z, dx, dy, dz, yaw); scores: (N,); labels: (N,) int
    indices into class_names; lidar2cam: (4, 4) LiDAR -> camera-rect (R0_rect @ Tr_velo_to_cam);
    lidar2img: (3, 4) or (4, 4) LiDAR -> pixels (P2 @ lidar2cam); image_size: (width, height) pixels.
    Returns KittiLabels with scores, dropped detections left out, order kept.
    """
    boxes = box_ops.as_boxes(boxes)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if not len(scores) == len(labels) == len(boxes):
        raise ValueError(f"boxes ({len(boxes)}), scores ({len(scores)}) and labels ({len(labels)}) differ in count")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"labels must index class_names ({len(class_names)} classes), "
                         f"got {labels.min()}..{labels.max()}")
    bbox = image_boxes(boxes, lidar2img)
    width, height = image_size
    # NaN rectangles (boxes wholly behind the camera) fail every comparison
    keep = (bbox[:, 0] < width) & (bbox[:, 1] < height) & (bbox[:, 2] > 0.0) & (bbox[:, 3] > 0.0)
    dimensions, location, rotation_y = box_ops.kitti_from_lidar_boxes(boxes[keep], lidar2cam)
    clipped = np.clip(bbox[keep], 0.0, [width, height, width, height])
    return KittiLabels(
        types=tuple(class_names[i] for i in labels[keep]), truncated=np.zeros(int(keep.sum())),
        occluded=np.zeros(int(keep.sum()), dtype=np.int64), alpha=box_ops.kitti_alpha(location, rotation_y),
        bbox=clipped, dimensions=dimensions, location=location, rotation_y=rotation_y, score=scores[keep])


def image_boxes(boxes: np.ndarray, lidar2img: np.ndarray) -> np.ndarray:
    """Unclipped image rectangles around the parts of internal boxes (N, 7) in front of the camera.

    The box is cut at depth _MIN_CORNER_DEPTH: the rectangle spans the projections of its corners in
    front and of the points where its edges cross that plane. Returns (N, 4) left, top, right, bottom
    in pixels; all NaN for a box wholly behind the camera.
    """
    corners = box_ops.box_corners(boxes)
    matrix = np.asarray(lidar2img, dtype=np.float64)[:3, :]
    projected = corners @ matrix[:, :3].T + matrix[:, 3]
    depth = projected[..., 2]
    start, end = projected[:, box_ops.BOX_EDGES[:, 0]], projected[:, box_ops.BOX_EDGES[:, 1]]
    crosses = (start[..., 2] - _MIN_CORNER_DEPTH) * (end[..., 2] - _MIN_CORNER_DEPTH) < 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (_MIN_CORNER_DEPTH - start[..., 2]) / (end[..., 2] - start[..., 2])
    crossing = start + np.where(crosses, t, 0.0)[..., None] * (end - start)
    points = np.concatenate([projected, crossing], axis=1)
    usable = np.concatenate([depth >= _MIN_CORNER_DEPTH, crosses], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = points[..., :2] / points[..., 2:3]
    low = np.where(usable[..., None], uv, np.inf).min(axis=1)
    high = np.where(usable[..., None], uv, -np.inf).max(axis=1)
    rect = np.concatenate([low, high], axis=1)
    return np.where(usable.any(axis=1)[:, None], rect, np.nan)
