"""Per-object annotations of a synthetic frame: 2-D box, truncation, occlusion, LiDAR points.

* 2-D box: the box's 12 edges, clipped to the space NEAR metres in front of the camera, projected;
  their extent is the full (unclipped) 2-D box, and that clipped to the image is the label's box.
* truncation: 1 - area(box inside the image) / area(full 2-D box), 0..1 (KITTI `truncated`).
* occlusion: 1 - visible pixels / silhouette pixels (pixels the object would cover alone);
  level 0 below 5 %, 1 below 50 %, else 2 (KITTI `occluded` 0/1/2 and DAIR `occluded_state`).
* DAIR truncated_state: 0 not truncated, 1 cut by the left / right image border, 2 by top / bottom only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from v2xfusion_perception import boxes as box_ops
from v2xfusion_tools.synth.camera import NEAR, CameraPicture

OCCLUSION_LEVELS = (0.05, 0.5)


@dataclass(frozen=True)
class ObjectViews:
    """What each of M objects looks like to the sensors (arrays of length M).

    box2d: (M, 4) float64 left, top, right, bottom clipped to the image (zeros when not in view);
    in_view: (M,) bool some of the 3-D box projects into the image; visible_pixels: (M,) int64;
    truncation: (M,) float64; occlusion: (M,) float64; occlusion_level: (M,) int64;
    truncated_state: (M,) int64 DAIR code; lidar_points: (M,) int64.
    """

    box2d: np.ndarray
    in_view: np.ndarray
    visible_pixels: np.ndarray
    truncation: np.ndarray
    occlusion: np.ndarray
    occlusion_level: np.ndarray
    truncated_state: np.ndarray
    lidar_points: np.ndarray


def annotate(boxes: np.ndarray, picture: CameraPicture, lidar2cam: np.ndarray, lidar2img: np.ndarray,
             lidar_points: np.ndarray) -> ObjectViews:
    """boxes: (M, 7) internal; picture: the rendered frame; lidar2cam / lidar2img: (4, 4);
    lidar_points: (M,) points per object."""
    height, width = picture.object.shape
    count = len(boxes)
    box2d = np.zeros((count, 4))
    in_view = np.zeros(count, dtype=bool)
    truncation = np.zeros(count)
    truncated_state = np.zeros(count, dtype=np.int64)
    corners = box_ops.box_corners(boxes)
    for index in range(count):
        full = _full_box2d(corners[index], lidar2cam, lidar2img)
        if full is None:
            continue
        clipped = np.array([max(full[0], 0.0), max(full[1], 0.0), min(full[2], width - 1.0),
                            min(full[3], height - 1.0)])
        if clipped[0] >= clipped[2] or clipped[1] >= clipped[3]:
            continue
        in_view[index] = True
        box2d[index] = clipped
        full_area = (full[2] - full[0]) * (full[3] - full[1])
        truncation[index] = float(np.clip(1.0 - _area(clipped) / full_area, 0.0, 1.0)) if full_area > 0 else 0.0
        if full[0] < 0 or full[2] > width - 1:
            truncated_state[index] = 1
        elif full[1] < 0 or full[3] > height - 1:
            truncated_state[index] = 2
    visible = np.bincount(picture.object[picture.object >= 0].ravel(), minlength=count)[:count].astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        occlusion = np.where(picture.silhouette > 0, 1.0 - visible / np.maximum(picture.silhouette, 1), 1.0)
    level = np.digitize(occlusion, OCCLUSION_LEVELS).astype(np.int64)
    return ObjectViews(box2d=box2d, in_view=in_view, visible_pixels=visible, truncation=truncation,
                       occlusion=occlusion, occlusion_level=level, truncated_state=truncated_state,
                       lidar_points=np.asarray(lidar_points, dtype=np.int64))


def _full_box2d(corners: np.ndarray, lidar2cam: np.ndarray, lidar2img: np.ndarray) -> np.ndarray | None:
    """Unclipped 2-D extent (4,) of a box's corners (8, 3), its edges cut at the near plane; None if
    the whole box is behind it."""
    depth = box_ops.transform_points(corners, lidar2cam)[:, 2]
    front = depth > NEAR
    if not front.any():
        return None
    points = [corners[front]]
    for a, b in box_ops.BOX_EDGES:
        if front[a] != front[b]:
            s = (NEAR - depth[a]) / (depth[b] - depth[a])
            points.append((corners[a] + s * (corners[b] - corners[a]))[None, :])
    uv, _ = box_ops.project_points(np.concatenate(points), lidar2img)
    return np.array([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])


def _area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))
