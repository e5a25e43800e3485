"""CenterPoint training targets: Gaussian class heatmaps and per-object regression targets.

The BEV map is X-major as the rest of the model (row = x cell, column = y cell): an object whose
centre falls in cell (ix, iy) peaks at heatmap[class, ix, iy] and is gathered at flat index
ix * ny + iy. Box layout in: design.md §2 (x, y, z geometric centre, dx, dy, dz, yaw[, vx, vy]).
Regression target per object: (x offset, y offset, z, dx, dy, dz (log with norm_bbox), sin yaw,
cos yaw[, vx, vy]), the x / y offsets being the centre's position inside its cell.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor


@dataclass(frozen=True)
class BevGeometry:
    """Where the head's BEV map lies: pc_range (6,), voxel_size (x, y), out_size_factor, bev_size
    (nx, ny); one head cell is voxel_size * out_size_factor metres."""

    pc_range: tuple[float, ...]
    voxel_size: tuple[float, float]
    out_size_factor: int
    bev_size: tuple[int, int]

    @property
    def cell_size(self) -> tuple[float, float]:
        return (self.voxel_size[0] * self.out_size_factor, self.voxel_size[1] * self.out_size_factor)


def gaussian_radius(length: float, width: float, min_overlap: float) -> float:
    """Radius (in cells) of the Gaussian drawn for a box of length x width cells.

    CornerNet's bound, as CenterPoint uses it: the smallest of the three radii for which a corner
    shift keeps IoU >= min_overlap (the tight box shrunk, grown, or shifted), each the larger root of
    a x^2 - b x + c = 0 halved (CenterPoint's form, kept so radii match published training).
    """
    cases = (
        (1.0, length + width, width * length * (1 - min_overlap) / (1 + min_overlap)),
        (4.0, 2 * (length + width), (1 - min_overlap) * width * length),
        (4 * min_overlap, -2 * min_overlap * (length + width), (min_overlap - 1) * width * length),
    )
    return min((b + math.sqrt(b * b - 4 * a * c)) / 2 for a, b, c in cases)


def gaussian_kernel(radius: int) -> Tensor:
    """(2r+1, 2r+1) float32 Gaussian with sigma = (2r+1)/6 and peak 1; values below float32 eps
    times the peak are zeroed, as CenterNet's gaussian2D."""
    sigma = (2 * radius + 1) / 6
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets.view(-1, 1) ** 2 + offsets.view(1, -1) ** 2) / (2 * sigma * sigma))
    kernel[kernel < torch.finfo(torch.float32).eps * kernel.max()] = 0
    return kernel


def draw_gaussian(heatmap: Tensor, row: int, col: int, radius: int) -> None:
    """Max-merge a Gaussian centred on heatmap[row, col] (in place). heatmap: (R, C) float32."""
    kernel = gaussian_kernel(radius).to(heatmap)
    rows, cols = heatmap.shape
    top, bottom = min(row, radius), min(rows - row, radius + 1)
    left, right = min(col, radius), min(cols - col, radius + 1)
    window = heatmap[row - top:row + bottom, col - left:col + right]
    patch = kernel[radius - top:radius + bottom, radius - left:radius + right]
    torch.maximum(window, patch, out=window)


@dataclass(frozen=True)
class CenterTargets:
    """Targets of one task for one frame.

    heatmap: (num_class, nx, ny) float32; boxes: (max_objs, code_size) float32; ind: (max_objs,)
    int64 flat cell ix * ny + iy; mask: (max_objs,) bool, which rows of boxes / ind are objects.
    """

    heatmap: Tensor
    boxes: Tensor
    ind: Tensor
    mask: Tensor


def center_targets(boxes: Tensor, labels: Tensor, num_class: int, geometry: BevGeometry,
                   gaussian_overlap: float, min_radius: int, max_objs: int, norm_bbox: bool,
                   with_velocity: bool) -> CenterTargets:
    """Targets for the objects of one task in one frame.

    boxes: (M, 7) or (M, 9) float32 (x, y, z, dx, dy, dz, yaw[, vx, vy]), velocity 0 when absent;
    labels: (M,) int64 class index inside the task. Object k uses row k (objects beyond max_objs are
    dropped); objects whose centre falls outside the BEV map or whose footprint is empty draw nothing
    and keep mask 0.
    """
    nx, ny = geometry.bev_size
    cell_x, cell_y = geometry.cell_size
    code_size = 10 if with_velocity else 8
    heatmap = boxes.new_zeros(num_class, nx, ny)
    targets = boxes.new_zeros(max_objs, code_size)
    ind = torch.zeros(max_objs, dtype=torch.int64, device=boxes.device)
    mask = torch.zeros(max_objs, dtype=torch.bool, device=boxes.device)
    for k in range(min(boxes.shape[0], max_objs)):
        x, y, z, dx, dy, dz, yaw = boxes[k, :7].tolist()
        width, length = dx / cell_x, dy / cell_y
        if width <= 0 or length <= 0:
            continue
        centre_x = (x - geometry.pc_range[0]) / cell_x
        centre_y = (y - geometry.pc_range[1]) / cell_y
        ix, iy = math.floor(centre_x), math.floor(centre_y)
        if not (0 <= ix < nx and 0 <= iy < ny):
            continue
        radius = max(min_radius, int(gaussian_radius(length, width, gaussian_overlap)))
        draw_gaussian(heatmap[int(labels[k])], ix, iy, radius)
        size = boxes[k, 3:6].log() if norm_bbox else boxes[k, 3:6]
        row = [boxes.new_tensor([centre_x - ix, centre_y - iy, z]), size,
               boxes.new_tensor([math.sin(yaw), math.cos(yaw)])]
        if with_velocity:  # single-frame labels (KITTI, DAIR) have no velocity: target 0
            row.append(boxes[k, 7:9] if boxes.shape[1] >= 9 else boxes.new_zeros(2))
        targets[k] = torch.cat(row)
        ind[k] = ix * ny + iy
        mask[k] = True
    return CenterTargets(heatmap, targets, ind, mask)


def task_objects(boxes: Tensor, labels: Tensor, class_ids: Sequence[int]) -> tuple[Tensor, Tensor]:
    """The objects of one task, labels renumbered inside it. labels: (M,) global class index."""
    ids = torch.as_tensor(list(class_ids), dtype=labels.dtype, device=labels.device)
    match = labels.view(-1, 1) == ids.view(1, -1)
    keep = match.any(dim=1)
    return boxes[keep], match[keep].int().argmax(dim=1)
