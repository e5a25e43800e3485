"""3-D box conversions between the data sets' conventions and ours, box corners and image projection.

The internal box (design.md §2) is `(x, y, z, dx, dy, dz, yaw)` in the LiDAR frame (x forward, y left,
z up): (x, y, z) the geometric centre, dx the length along the box's heading, dy the width, dz the
height, yaw about +z from +x, wrapped to [-pi, pi).

Size order, stated once for the whole project (every reader and writer converts through this file):

    internal          (dx, dy, dz)  = (length, width, height)
    KITTI label_2     (h, w, l)     = (dz, dy, dx)      location: bottom centre in camera-rect
    DAIR / V2X / nuScenes  (w, l, h) = (dy, dx, dz)     location: box centre in the LiDAR frame

KITTI boxes live in the rectified camera frame (x right, y down, z forward) and turn by rotation_y
about the camera's y axis; a KITTI box's heading at rotation_y = 0 is the camera's +x. Conversions use
the calibration only through `lidar2cam = R0_rect @ Tr_velo_to_cam` (4x4), with no assumption that the
two frames are axis-aligned: the bottom-centre point maps through the matrix (the LiDAR's "down" is
-z), and the heading vector maps through its rotation part. For the standard KITTI rig this reduces to
rotation_y = -yaw - pi/2 (as mmdet3d's Box3DMode); for any camera whose y axis is not horizontal the
two directions are exact inverses of each other, so a box survives LiDAR -> camera -> LiDAR unchanged.
"""
from __future__ import annotations

import numpy as np

# Corner order of `box_corners` in the box's own frame (x forward, y left, z up), half sizes (l, w, h):
# bottom face 0-3 counter-clockwise seen from above starting front-left, then the top face 4-7 above it.
CORNER_SIGNS = np.array([
    [1, 1, -1], [1, -1, -1], [-1, -1, -1], [-1, 1, -1],
    [1, 1, 1], [1, -1, 1], [-1, -1, 1], [-1, 1, 1],
], dtype=np.float64)
# The 12 edges as corner index pairs; FRONT_FACE is the face the heading points out of.
BOX_EDGES = np.array([
    [0, 1], [1, 2], [2, 3], [3, 0],
    [4, 5], [5, 6], [6, 7], [7, 4],
    [0, 4], [1, 5], [2, 6], [3, 7],
], dtype=np.int64)
FRONT_FACE = np.array([0, 1, 5, 4], dtype=np.int64)


def wrap_yaw(yaw: np.ndarray) -> np.ndarray:
    """Wrap angles to [-pi, pi). yaw: any shape, float; returns float64 of the same shape."""
    yaw = np.asarray(yaw, dtype=np.float64)
    wrapped = np.mod(yaw + np.pi, 2.0 * np.pi) - np.pi
    # np.mod can round a value just below 2*pi up to 2*pi exactly, which would land on +pi
    return np.where(wrapped >= np.pi, wrapped - 2.0 * np.pi, wrapped)


def as_boxes(boxes: np.ndarray) -> np.ndarray:
    """boxes: (N, 7) or (7,) -> (N, 7) float64 (a view where possible)."""
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 7)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 4x4 (or 3x4) rigid / affine transform. points: (N, 3) -> (N, 3) float64."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    matrix = np.asarray(matrix, dtype=np.float64)
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def rigid_inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 4x4 transform whose 3x3 part is invertible (rotation, or R0_rect @ rotation)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    inverse = np.eye(4)
    rot_inv = np.linalg.inv(matrix[:3, :3])
    inverse[:3, :3] = rot_inv
    inverse[:3, 3] = -rot_inv @ matrix[:3, 3]
    return inverse


def lidar_boxes_from_kitti(dimensions_hwl: np.ndarray, location: np.ndarray, rotation_y: np.ndarray,
                           lidar2cam: np.ndarray) -> np.ndarray:
    """KITTI camera-rect label boxes -> internal LiDAR boxes.

    dimensions_hwl: (N, 3) KITTI (h, w, l); location: (N, 3) bottom centre in camera-rect;
    rotation_y: (N,) about camera y; lidar2cam: (4, 4) R0_rect @ Tr_velo_to_cam.
    Returns (N, 7) float64 (x, y, z, dx, dy, dz, yaw).
    """
    dims = np.asarray(dimensions_hwl, dtype=np.float64).reshape(-1, 3)
    rotation_y = np.asarray(rotation_y, dtype=np.float64).reshape(-1)
    cam2lidar = rigid_inverse(lidar2cam)
    bottom = transform_points(location, cam2lidar)
    heading_cam = np.stack([np.cos(rotation_y), np.zeros_like(rotation_y), -np.sin(rotation_y)], axis=1)
    heading = heading_cam @ cam2lidar[:3, :3].T
    yaw = wrap_yaw(np.arctan2(heading[:, 1], heading[:, 0]))
    h, w, l = dims[:, 0], dims[:, 1], dims[:, 2]
    centre = bottom + np.stack([np.zeros_like(h), np.zeros_like(h), h / 2.0], axis=1)
    return np.concatenate([centre, np.stack([l, w, h], axis=1), yaw[:, None]], axis=1)


def kitti_from_lidar_boxes(boxes: np.ndarray, lidar2cam: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Internal LiDAR boxes -> KITTI camera-rect label boxes (exact inverse of lidar_boxes_from_kitti).

    boxes: (N, 7); lidar2cam: (4, 4). Returns dimensions_hwl (N, 3), location (N, 3) bottom centre in
    camera-rect, rotation_y (N,) wrapped to [-pi, pi) — all float64.
    """
    boxes = as_boxes(boxes)
    lidar2cam = np.asarray(lidar2cam, dtype=np.float64)
    bottom = boxes[:, :3] - np.stack([np.zeros(len(boxes)), np.zeros(len(boxes)), boxes[:, 5] / 2.0], axis=1)
    location = transform_points(bottom, lidar2cam)
    # rotation_y is the angle whose camera heading (cos, 0, -sin) maps onto the LiDAR heading: with
    # a = camera x and b = -camera z seen from the LiDAR, that heading is cos(ry) a + sin(ry) b; it must
    # have no component across the wanted LiDAR direction (normal n) and a positive one along it (f).
    cam2lidar_rot = np.linalg.inv(lidar2cam[:3, :3])
    a, b = cam2lidar_rot[:, 0], -cam2lidar_rot[:, 2]
    yaw = boxes[:, 6]
    normal = np.stack([-np.sin(yaw), np.cos(yaw), np.zeros_like(yaw)], axis=1)
    forward = np.stack([np.cos(yaw), np.sin(yaw), np.zeros_like(yaw)], axis=1)
    rotation_y = np.arctan2(-(normal @ a), normal @ b)
    along = np.cos(rotation_y) * (forward @ a) + np.sin(rotation_y) * (forward @ b)
    rotation_y = wrap_yaw(np.where(along < 0.0, rotation_y + np.pi, rotation_y))
    dimensions_hwl = boxes[:, [5, 4, 3]].copy()
    return dimensions_hwl, location, rotation_y


def kitti_alpha(location: np.ndarray, rotation_y: np.ndarray) -> np.ndarray:
    """KITTI observation angle alpha = rotation_y - atan2(x, z) of the camera-rect location, in [-pi, pi).

    location: (N, 3); rotation_y: (N,). Returns (N,) float64.
    """
    location = np.asarray(location, dtype=np.float64).reshape(-1, 3)
    return wrap_yaw(np.asarray(rotation_y, dtype=np.float64).reshape(-1)
                    - np.arctan2(location[:, 0], location[:, 2]))


def lidar_boxes_from_wlh(centre: np.ndarray, size_wlh: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """DAIR / V2X / nuScenes-style boxes -> internal boxes.

    centre: (N, 3) box centre in the LiDAR frame; size_wlh: (N, 3) (w, l, h); yaw: (N,) yaw_lidar
    (DAIR's `rotation`), same axis and sign as ours. Returns (N, 7) float64.
    """
    centre = np.asarray(centre, dtype=np.float64).reshape(-1, 3)
    size = np.asarray(size_wlh, dtype=np.float64).reshape(-1, 3)
    yaw = wrap_yaw(np.asarray(yaw, dtype=np.float64).reshape(-1))
    return np.concatenate([centre, size[:, [1, 0, 2]], yaw[:, None]], axis=1)


def wlh_from_lidar_boxes(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Internal boxes -> (centre (N, 3), size_wlh (N, 3) as (w, l, h), yaw (N,)), all float64."""
    boxes = as_boxes(boxes)
    return boxes[:, :3].copy(), boxes[:, [4, 3, 5]].copy(), wrap_yaw(boxes[:, 6])


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """Corners of internal boxes. boxes: (N, 7) -> (N, 8, 3) float64 in CORNER_SIGNS order."""
    boxes = as_boxes(boxes)
    local = CORNER_SIGNS[None, :, :] * (boxes[:, None, 3:6] / 2.0)
    cos, sin = np.cos(boxes[:, 6])[:, None], np.sin(boxes[:, 6])[:, None]
    x = local[..., 0] * cos - local[..., 1] * sin
    y = local[..., 0] * sin + local[..., 1] * cos
    return np.stack([x, y, local[..., 2]], axis=-1) + boxes[:, None, :3]


def points_in_boxes(points: np.ndarray, boxes: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Which points lie inside which boxes (closed boxes, grown by `margin` metres on every side).

    points: (N, >=3) LiDAR frame; boxes: (M, 7). Returns (N, M) bool.
    """
    points = np.asarray(points, dtype=np.float64)[:, :3]
    boxes = as_boxes(boxes)
    inside = np.zeros((len(points), len(boxes)), dtype=bool)
    for j, box in enumerate(boxes):
        offset = points - box[:3]
        cos, sin = np.cos(box[6]), np.sin(box[6])
        along = offset[:, 0] * cos + offset[:, 1] * sin
        across = -offset[:, 0] * sin + offset[:, 1] * cos
        half = box[3:6] / 2.0 + margin
        inside[:, j] = (np.abs(along) <= half[0]) & (np.abs(across) <= half[1]) & (np.abs(offset[:, 2]) <= half[2])
    return inside


def project_points(points: np.ndarray, lidar2img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection. points: (..., 3) LiDAR frame; lidar2img: (3, 4) or (4, 4), e.g. P2 @ lidar2cam.

    Returns uv (..., 2) pixel coordinates (pixel centres at integers) and depth (...) along the optical
    axis; uv is meaningless where depth <= 0 (behind the camera), which the caller must mask.
    """
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(lidar2img, dtype=np.float64)[:3, :]
    projected = points @ matrix[:, :3].T + matrix[:, 3]
    depth = projected[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = projected[..., :2] / depth[..., None]
    return uv, depth


def project_box_corners(boxes: np.ndarray, lidar2img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corners of internal boxes in the image. Returns uv (N, 8, 2) and depth (N, 8)."""
    return project_points(box_corners(boxes), lidar2img)
