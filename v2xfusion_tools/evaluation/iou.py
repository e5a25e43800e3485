"""The overlaps KITTI's evaluation scores boxes with: image-box IoU / IoA, rotated BEV IoU, 3-D IoU.

All boxes are KITTI camera-rect boxes (the label_2 fields): camera x right, y down, z forward. The
ground plane is x-z; a box of rotation_y = ry has its length along (cos ry, -sin ry) in (x, z), its
width along (sin ry, cos ry), and spans y in [y - h, y] (location is the bottom centre, y points
down). These are the conventions of the KITTI devkit's toPolygon / box3DOverlap and of mmdet3d's
rotate_iou / d3_box_overlap_kernel.

The rotated-rectangle intersection is exact: Sutherland-Hodgman clipping of one convex quadrilateral
by the four edges of the other, vectorized over all box pairs at once (pairs whose circumscribed
circles are apart are skipped: their overlap is 0).
"""
from __future__ import annotations

import numpy as np

# A quadrilateral clipped by four half-planes keeps at most 4 + 4 vertices.
_MAX_VERTICES = 8


def image_overlap(boxes: np.ndarray, query: np.ndarray, criterion: str = "iou") -> np.ndarray:
    """Overlap of axis-aligned image boxes, every box of `boxes` with every box of `query`.

    boxes: (N, 4), query: (M, 4) as (left, top, right, bottom) pixels. criterion "iou": intersection
    over union; "area_a": intersection over the area of the `boxes` box (the devkit's criterion 0, used
    for DontCare regions). Returns (N, M) float64, 0 where the boxes do not overlap.
    """
    a, b, rows, cols = _all_pairs(boxes, query, 4)
    return image_overlap_paired(a[rows], b[cols], criterion).reshape(len(a), len(b))


def image_overlap_paired(boxes: np.ndarray, query: np.ndarray, criterion: str = "iou") -> np.ndarray:
    """`image_overlap` of row i of boxes (P, 4) with row i of query (P, 4). Returns (P,) float64."""
    if criterion not in ("iou", "area_a"):
        raise ValueError(f"criterion must be 'iou' or 'area_a', got {criterion!r}")
    a = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(query, dtype=np.float64).reshape(-1, 4)
    width = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    height = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    overlapping = (width > 0) & (height > 0)
    inter = np.where(overlapping, width * height, 0.0)
    denominator = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    if criterion == "iou":
        denominator = denominator + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return _ratio(inter, denominator)


def bev_corners(boxes_bev: np.ndarray) -> np.ndarray:
    """Ground-plane rectangles of camera boxes. boxes_bev: (N, 5) x, z, l, w, ry.

    Returns (N, 4, 2) float64 (x, z) corners, counter-clockwise in the (x, z) axes.
    """
    boxes = np.asarray(boxes_bev, dtype=np.float64).reshape(-1, 5)
    cos, sin = np.cos(boxes[:, 4]), np.sin(boxes[:, 4])
    along = np.stack([cos, -sin], axis=1) * (boxes[:, 2:3] / 2.0)
    across = np.stack([sin, cos], axis=1) * (boxes[:, 3:4] / 2.0)
    centre = boxes[:, None, 0:2]
    signs = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    return centre + signs[None, :, 0:1] * along[:, None, :] + signs[None, :, 1:2] * across[:, None, :]


def convex_overlap_area(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Intersection areas of pairs of convex quadrilaterals (Sutherland-Hodgman).

    subject, clip: (P, 4, 2), each counter-clockwise. Returns (P,) float64 >= 0.
    """
    subject = np.asarray(subject, dtype=np.float64)
    clip = np.asarray(clip, dtype=np.float64)
    pairs = subject.shape[0]
    if pairs == 0:
        return np.zeros(0)
    # work relative to the clip polygon's centre: the cross products stay well-conditioned far from the origin
    origin = clip.mean(axis=1, keepdims=True)
    clip = clip - origin
    polygon = np.zeros((pairs, _MAX_VERTICES, 2))
    polygon[:, :4] = subject - origin
    count = np.full(pairs, 4)
    for edge in range(4):
        start, end = clip[:, edge], clip[:, (edge + 1) % 4]
        polygon, count = _clip_by_half_plane(polygon, count, start, end)
    return np.maximum(_polygon_area(polygon, count), 0.0)


def _next_index(count: np.ndarray, width: int) -> np.ndarray:
    """(P, width) index of each vertex's successor in a polygon of `count` vertices (wrapping)."""
    index = np.arange(width)[None, :] + 1
    return np.where(index < count[:, None], index, 0)


def _clip_by_half_plane(polygon: np.ndarray, count: np.ndarray, start: np.ndarray, end: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """One Sutherland-Hodgman step: keep the part of each polygon left of the line start -> end."""
    pairs, width, _ = polygon.shape
    valid = np.arange(width)[None, :] < count[:, None]
    following = _next_index(count, width)
    direction = (end - start)[:, None, :]
    offset = polygon - start[:, None, :]
    side = direction[..., 0] * offset[..., 1] - direction[..., 1] * offset[..., 0]
    side_next = np.take_along_axis(side, following, axis=1)
    inside, inside_next = side >= 0.0, side_next >= 0.0
    crossing = inside != inside_next
    # a crossing edge has its two ends on opposite sides, so side - side_next is not 0 there
    t = side / np.where(crossing, side - side_next, 1.0)
    vertex_next = np.take_along_axis(polygon, following[..., None], axis=1)
    crossing_point = polygon + t[..., None] * (vertex_next - polygon)
    # each input vertex emits itself (if inside) and then the crossing of its outgoing edge (if any)
    candidates = np.stack([polygon, crossing_point], axis=2).reshape(pairs, 2 * width, 2)
    keep = np.stack([inside & valid, crossing & valid], axis=2).reshape(pairs, 2 * width)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :_MAX_VERTICES]
    clipped = np.take_along_axis(candidates, order[..., None], axis=1)
    return clipped, np.minimum(keep.sum(axis=1), _MAX_VERTICES)


def _polygon_area(polygon: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Shoelace area of polygons of `count` vertices (fewer than 3 vertices: 0)."""
    width = polygon.shape[1]
    valid = np.arange(width)[None, :] < count[:, None]
    following = np.take_along_axis(polygon, _next_index(count, width)[..., None], axis=1)
    cross = polygon[..., 0] * following[..., 1] - polygon[..., 1] * following[..., 0]
    return np.where(count >= 3, 0.5 * np.sum(np.where(valid, cross, 0.0), axis=1), 0.0)


def bev_intersection(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Ground-plane intersection areas of box pairs. boxes_a, boxes_b: (P, 5) x, z, l, w, ry (row i with
    row i). Returns (P,) float64 square metres."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 5)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 5)
    areas = np.zeros(len(a))
    radius_a = 0.5 * np.hypot(a[:, 2], a[:, 3])
    radius_b = 0.5 * np.hypot(b[:, 2], b[:, 3])
    near = np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1]) <= radius_a + radius_b
    if np.any(near):
        areas[near] = convex_overlap_area(bev_corners(a[near]), bev_corners(b[near]))
    return areas


def bev_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Rotated IoU in the ground plane, every box of boxes_a (N, 5) with every box of boxes_b (M, 5),
    both x, z, l, w, ry. Returns (N, M) float64."""
    a, b, rows, cols = _all_pairs(boxes_a, boxes_b, 5)
    return bev_iou_paired(a[rows], b[cols]).reshape(len(a), len(b))


def bev_iou_paired(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """`bev_iou` of row i of boxes_a (P, 5) with row i of boxes_b (P, 5). Returns (P,) float64."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 5)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 5)
    inter = bev_intersection(a, b)
    return _ratio(inter, a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter)


def box3d_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """3-D IoU of camera boxes, every box of boxes_a (N, 7) with every box of boxes_b (M, 7), both in
    KITTI label order x, y, z (bottom centre), h, w, l, ry. Returns (N, M) float64."""
    a, b, rows, cols = _all_pairs(boxes_a, boxes_b, 7)
    return box3d_iou_paired(a[rows], b[cols]).reshape(len(a), len(b))


def box3d_iou_paired(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """`box3d_iou` of row i of boxes_a (P, 7) with row i of boxes_b (P, 7). Returns (P,) float64."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 7)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 7)
    inter = bev_intersection(camera_to_bev(a), camera_to_bev(b))
    # y points down: a box spans [y - h, y]
    top = np.maximum(a[:, 1] - a[:, 3], b[:, 1] - b[:, 3])
    bottom = np.minimum(a[:, 1], b[:, 1])
    volume = inter * np.maximum(bottom - top, 0.0)
    return _ratio(volume, np.prod(a[:, 3:6], axis=1) + np.prod(b[:, 3:6], axis=1) - volume)


def camera_to_bev(boxes_camera: np.ndarray) -> np.ndarray:
    """(N, 7) x, y, z, h, w, l, ry -> (N, 5) ground-plane x, z, l, w, ry."""
    boxes = np.asarray(boxes_camera, dtype=np.float64).reshape(-1, 7)
    return boxes[:, [0, 2, 5, 4, 6]]


def _all_pairs(boxes_a: np.ndarray, boxes_b: np.ndarray, width: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both box sets as float64 (N, width) / (M, width) and the row indices of all N x M pairs."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, width)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, width)
    return a, b, np.repeat(np.arange(len(a)), len(b)), np.tile(np.arange(len(b)), len(a))


def _ratio(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """part / whole where part > 0, else 0 (no overlap, or a degenerate box)."""
    positive = part > 0.0
    return np.where(positive, part / np.where(positive, whole, 1.0), 0.0)
