"""CenterHead post-processing in PyTorch: heatmap top-k, box decoding, rotated / circle NMS.

The plain reference of what the runtime's C++ kernels do (design.md §3). Boxes out: design.md §2
(x, y, z geometric centre, dx, dy, dz, yaw in [-pi, pi)[, vx, vy]) in the LiDAR frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from v2xfusion_tools.models.heads.targets import BevGeometry


@dataclass(frozen=True)
class Detections:
    """One frame's detections: boxes (K, 7 or 9) float32, scores (K,) float32, labels (K,) int64
    (index into the config's class_names), highest score first."""

    boxes: Tensor
    scores: Tensor
    labels: Tensor


def wrap_angle(yaw: Tensor) -> Tensor:
    """Wrap to [-pi, pi)."""
    return torch.remainder(yaw + math.pi, 2 * math.pi) - math.pi


def decode_topk(heatmap: Tensor, reg: Tensor, height: Tensor, dim: Tensor, rot: Tensor, vel: Tensor | None,
                geometry: BevGeometry, top_k: int, norm_bbox: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Top-k cells of one task's heatmap over all its classes, decoded to boxes.

    heatmap: (B, num_class, nx, ny) probabilities; reg (B, 2, nx, ny); height (B, 1, ..);
    dim (B, 3, ..) (log sizes with norm_bbox); rot (B, 2, ..) (sin, cos); vel (B, 2, ..) or None.
    Returns boxes (B, K, 7|9), scores (B, K), labels (B, K) int64 class inside the task,
    K = min(top_k, num_class * nx * ny).
    """
    batch, num_class, nx, ny = heatmap.shape
    k = min(top_k, num_class * nx * ny)
    scores, flat = heatmap.reshape(batch, -1).topk(k, dim=1)
    labels = torch.div(flat, nx * ny, rounding_mode="floor")
    cell = flat % (nx * ny)
    ix, iy = torch.div(cell, ny, rounding_mode="floor"), cell % ny

    def gather(t: Tensor) -> Tensor:  # (B, C, nx, ny) -> (B, K, C)
        return t.reshape(batch, t.shape[1], nx * ny).gather(2, cell.unsqueeze(1).expand(-1, t.shape[1], -1)) \
            .transpose(1, 2)

    offset = gather(reg)
    cell_x, cell_y = geometry.cell_size
    x = (ix + offset[..., 0]) * cell_x + geometry.pc_range[0]
    y = (iy + offset[..., 1]) * cell_y + geometry.pc_range[1]
    z = gather(height)[..., 0]
    size = gather(dim)
    size = size.exp() if norm_bbox else size
    sin_cos = gather(rot)
    yaw = wrap_angle(torch.atan2(sin_cos[..., 0], sin_cos[..., 1]))
    parts = [x.unsqueeze(-1), y.unsqueeze(-1), z.unsqueeze(-1), size, yaw.unsqueeze(-1)]
    if vel is not None:
        parts.append(gather(vel))
    return torch.cat(parts, dim=-1), scores, labels


def bev_corners(boxes: Tensor) -> Tensor:
    """Footprint corners, counter-clockwise seen from above. boxes: (N, >=7) -> (N, 4, 2)."""
    half = boxes[:, 3:5] / 2
    signs = boxes.new_tensor([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    local = signs.unsqueeze(0) * half.unsqueeze(1)
    cos, sin = boxes[:, 6].cos().view(-1, 1), boxes[:, 6].sin().view(-1, 1)
    x = local[..., 0] * cos - local[..., 1] * sin + boxes[:, 0:1]
    y = local[..., 0] * sin + local[..., 1] * cos + boxes[:, 1:2]
    return torch.stack([x, y], dim=-1)


def _cross(a: Tensor, b: Tensor) -> Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _inside(points: Tensor, quad: Tensor) -> Tensor:
    """points (..., P, 2) inside the convex CCW quad (..., 4, 2) (boundary included) -> (..., P)."""
    edges = quad.roll(-1, dims=-2) - quad
    rel = points.unsqueeze(-2) - quad.unsqueeze(-3)
    return (_cross(edges.unsqueeze(-3), rel) >= -1e-9).all(dim=-1)


def rotated_iou_bev(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """Bird's-eye-view IoU of rotated footprints. boxes_a: (N, >=7), boxes_b: (M, >=7) -> (N, M) float64.

    The intersection of two convex quads is the convex hull of the corners of each inside the other
    and of the edge crossings; its area comes from the shoelace formula over the points sorted by
    angle around their centroid.
    """
    a = bev_corners(boxes_a.double()).unsqueeze(1)  # (N, 1, 4, 2)
    b = bev_corners(boxes_b.double()).unsqueeze(0)  # (1, M, 4, 2)
    a, b = torch.broadcast_tensors(a, b)
    a_in_b = _inside(a, b)
    b_in_a = _inside(b, a)
    # edge crossings: edge i of a (p + t r) with edge j of b (q + u s)
    p, r = a.unsqueeze(3), (a.roll(-1, dims=2) - a).unsqueeze(3)
    q, s = b.unsqueeze(2), (b.roll(-1, dims=2) - b).unsqueeze(2)
    denom = _cross(r, s)
    safe = torch.where(denom.abs() > 1e-12, denom, torch.ones_like(denom))
    t = _cross(q - p, s) / safe
    u = _cross(q - p, r) / safe
    crossing = (denom.abs() > 1e-12) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
    cross_points = (p + t.unsqueeze(-1) * r).flatten(2, 3)
    points = torch.cat([a, b, cross_points], dim=2)  # (N, M, 24, 2)
    valid = torch.cat([a_in_b, b_in_a, crossing.flatten(2, 3)], dim=2)
    count = valid.sum(dim=2, keepdim=True)
    centroid = (points * valid.unsqueeze(-1)).sum(dim=2) / count.clamp(min=1)
    rel = points - centroid.unsqueeze(2)
    angle = torch.where(valid, torch.atan2(rel[..., 1], rel[..., 0]), torch.full_like(rel[..., 0], 10.0))
    order = angle.argsort(dim=2)
    ordered = points.gather(2, order.unsqueeze(-1).expand(-1, -1, -1, 2))
    ordered_valid = valid.gather(2, order)
    # invalid points (sorted last) repeat the first point: they add zero-length edges only
    ordered = torch.where(ordered_valid.unsqueeze(-1), ordered, ordered[:, :, :1].expand_as(ordered))
    area = 0.5 * _cross(ordered, ordered.roll(-1, dims=2)).sum(dim=2).abs()
    inter = torch.where(count.squeeze(-1) >= 3, area, torch.zeros_like(area))
    area_a = (boxes_a[:, 3] * boxes_a[:, 4]).double().view(-1, 1)
    area_b = (boxes_b[:, 3] * boxes_b[:, 4]).double().view(1, -1)
    return inter / (area_a + area_b - inter).clamp(min=1e-12)


def nms_rotated(boxes: Tensor, scores: Tensor, iou_threshold: float, max_keep: int) -> Tensor:
    """Greedy NMS on BEV rotated IoU: keep the best box, drop those overlapping it by more than the
    threshold, repeat. boxes: (N, >=7); scores: (N,). Returns kept indices (<= max_keep), best first."""
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() and len(keep) < max_keep:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        if rest.numel() == 0:
            break
        iou = rotated_iou_bev(boxes[best:best + 1], boxes[rest])[0]
        order = rest[iou <= iou_threshold]
    return torch.stack(keep) if keep else scores.new_zeros(0, dtype=torch.long)


def nms_circle(boxes: Tensor, scores: Tensor, radius: float, max_keep: int) -> Tensor:
    """Greedy NMS on BEV centre distance: a box within `radius` metres of a kept one is dropped."""
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() and len(keep) < max_keep:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        distance = torch.linalg.vector_norm(boxes[rest, :2] - boxes[best, :2], dim=1)
        order = rest[distance > radius]
    return torch.stack(keep) if keep else scores.new_zeros(0, dtype=torch.long)


@dataclass(frozen=True)
class PostProcess:
    """Decoding settings (the preset's `postprocess` section and geometry.post_center_range)."""

    score_threshold: float
    pre_max_size: int
    post_max_size: int
    nms_type: str
    nms_iou_threshold: float
    circle_radius: tuple[float, ...]
    post_center_range: tuple[float, ...]


def select_detections(boxes: Tensor, scores: Tensor, labels: Tensor, settings: PostProcess) -> Detections:
    """Score threshold, centre range and per-class NMS over one frame's candidates.

    boxes: (K, 7|9); scores: (K,); labels: (K,) global class index. Classes do not suppress each
    other; each keeps at most post_max_size boxes, and so does the frame.
    """
    low = boxes.new_tensor(settings.post_center_range[:3])
    high = boxes.new_tensor(settings.post_center_range[3:])
    keep = (scores > settings.score_threshold) & ((boxes[:, :3] >= low) & (boxes[:, :3] <= high)).all(dim=1)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    kept = []
    for label in labels.unique().tolist():
        idx = torch.nonzero(labels == label).squeeze(1)
        if settings.nms_type == "circle":
            sel = nms_circle(boxes[idx], scores[idx], settings.circle_radius[label], settings.post_max_size)
        else:
            sel = nms_rotated(boxes[idx], scores[idx], settings.nms_iou_threshold, settings.post_max_size)
        kept.append(idx[sel])
    kept_idx = torch.cat(kept) if kept else labels.new_zeros(0)
    kept_idx = kept_idx[scores[kept_idx].argsort(descending=True)][:settings.post_max_size]
    return Detections(boxes[kept_idx], scores[kept_idx], labels[kept_idx])

