"""Point cloud -> voxels: hard voxelization (PointPillars, Pipeline A) and dynamic mean voxels (B).

PyTorch references used inside the training forward; the runtime uses the C++ kernels, which follow
the same rules (design.md §3): Pipeline A's coors are (x, y, z) per voxel, Pipeline B's (z, y, x).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn


def voxel_grid_shape(pc_range: Sequence[float], voxel_size: Sequence[float]) -> tuple[int, int, int]:
    """(nx, ny, nz) voxels covering pc_range (x_min, y_min, z_min, x_max, y_max, z_max)."""
    return tuple(int(round((pc_range[i + 3] - pc_range[i]) / voxel_size[i])) for i in range(3))


def _point_cells(points: Tensor, pc_range: Sequence[float], voxel_size: Sequence[float]
                 ) -> tuple[Tensor, Tensor]:
    """Voxel cell (ix, iy, iz) of each point and whether it lies inside pc_range. (N, 3) int64, (N,)."""
    lower = points.new_tensor(pc_range[:3])
    size = points.new_tensor(voxel_size)
    cells = torch.floor((points[:, :3] - lower) / size).long()
    shape = torch.tensor(voxel_grid_shape(pc_range, voxel_size), device=points.device)
    inside = ((cells >= 0) & (cells < shape)).all(dim=1)
    return cells, inside


@dataclass(frozen=True)
class HardVoxels:
    """Hard voxelization of one cloud.

    voxels: (V, max_points, C) float32, zero-padded; coors: (V, 3) int32 (x, y, z) cell;
    num_points: (V,) int32 points kept per voxel (1..max_points).
    """

    voxels: Tensor
    coors: Tensor
    num_points: Tensor


def voxelize_hard(points: Tensor, pc_range: Sequence[float], voxel_size: Sequence[float],
                  max_points: int, max_voxels: int) -> HardVoxels:
    """mmcv's hard voxelization rules: voxels in the order their first point appears, points in cloud
    order, at most `max_points` per voxel and `max_voxels` voxels; extra points and voxels are dropped.

    points: (N, C) float32, LiDAR frame, x y z first.
    """
    cells, inside = _point_cells(points, pc_range, voxel_size)
    points, cells = points[inside], cells[inside]
    nx, ny, nz = voxel_grid_shape(pc_range, voxel_size)
    keys = (cells[:, 0] * ny + cells[:, 1]) * nz + cells[:, 2]
    unique_keys, inverse = torch.unique(keys, return_inverse=True)
    order = torch.arange(keys.numel(), device=points.device)
    first_seen = torch.full((unique_keys.numel(),), keys.numel(), dtype=torch.long, device=points.device)
    first_seen = first_seen.scatter_reduce(0, inverse, order, reduce="amin")
    # voxel id = rank of its first point in the cloud
    rank_of_unique = torch.empty_like(first_seen)
    rank_of_unique[torch.argsort(first_seen)] = torch.arange(first_seen.numel(), device=points.device)
    voxel_id = rank_of_unique[inverse]
    # slot of each point inside its voxel = how many earlier points share the voxel
    sorted_ids, by_voxel = torch.sort(voxel_id, stable=True)
    group_start = torch.searchsorted(sorted_ids, sorted_ids, right=False)
    slot = torch.empty_like(voxel_id)
    slot[by_voxel] = torch.arange(voxel_id.numel(), device=points.device) - group_start
    keep = (voxel_id < max_voxels) & (slot < max_points)
    num_voxels = min(int(first_seen.numel()), max_voxels)
    voxels = points.new_zeros(num_voxels, max_points, points.shape[1])
    voxels[voxel_id[keep], slot[keep]] = points[keep]
    num_points = torch.bincount(voxel_id[keep], minlength=num_voxels).to(torch.int32)
    first_cells = cells[first_seen[torch.argsort(first_seen)][:num_voxels]]
    return HardVoxels(voxels, first_cells.to(torch.int32), num_points)


@dataclass(frozen=True)
class DynamicVoxels:
    """Mean-reduced voxels of one cloud: features (V, C) float32, coors (V, 3) int32 (z, y, x)."""

    features: Tensor
    coors: Tensor


def voxelize_dynamic(points: Tensor, pc_range: Sequence[float], voxel_size: Sequence[float]) -> DynamicVoxels:
    """Every point inside pc_range joins its voxel; a voxel's feature is the mean of its points
    (mmcv's DynamicScatter with mean reduction). Voxels come sorted by (z, y, x).

    points: (N, C) float32, LiDAR frame, x y z first.
    """
    cells, inside = _point_cells(points, pc_range, voxel_size)
    points, cells = points[inside], cells[inside]
    nx, ny, nz = voxel_grid_shape(pc_range, voxel_size)
    keys = (cells[:, 2] * ny + cells[:, 1]) * nx + cells[:, 0]
    unique_keys, inverse = torch.unique(keys, return_inverse=True)
    counts = torch.bincount(inverse, minlength=unique_keys.numel()).to(points.dtype)
    sums = points.new_zeros(unique_keys.numel(), points.shape[1]).index_add(0, inverse, points)
    coors = torch.stack([unique_keys // (ny * nx), (unique_keys // nx) % ny, unique_keys % nx], dim=1)
    return DynamicVoxels(sums / counts.unsqueeze(1), coors.to(torch.int32))


class PillarVoxelizer(nn.Module):
    """Hard voxelization of a batch of clouds into pillars (Pipeline A); no parameters."""

    def __init__(self, pc_range: Sequence[float], voxel_size: Sequence[float], max_points: int,
                 max_voxels: int) -> None:
        super().__init__()
        self.pc_range, self.voxel_size = tuple(pc_range), tuple(voxel_size)
        self.max_points, self.max_voxels = max_points, max_voxels

    @torch.no_grad()
    def forward(self, points: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """points: per frame (N_i, C) -> voxels (V, max_points, C), num_points (V,) int32,
        coors (V, 4) int32 (batch, x, y, z); frames concatenated in order."""
        frames = [voxelize_hard(p, self.pc_range, self.voxel_size, self.max_points, self.max_voxels)
                  for p in points]
        coors = [torch.nn.functional.pad(f.coors, (1, 0), value=b) for b, f in enumerate(frames)]
        return (torch.cat([f.voxels for f in frames]), torch.cat([f.num_points for f in frames]),
                torch.cat(coors))


class DynamicVoxelizer(nn.Module):
    """Dynamic mean voxelization of a batch of clouds (Pipeline B); no parameters."""

    def __init__(self, pc_range: Sequence[float], voxel_size: Sequence[float]) -> None:
        super().__init__()
        self.pc_range, self.voxel_size = tuple(pc_range), tuple(voxel_size)

    @torch.no_grad()
    def forward(self, points: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """points: per frame (N_i, C) -> features (V, C), coors (V, 4) int32 (batch, z, y, x)."""
        frames = [voxelize_dynamic(p, self.pc_range, self.voxel_size) for p in points]
        coors = [torch.nn.functional.pad(f.coors, (1, 0), value=b) for b, f in enumerate(frames)]
        return torch.cat([f.features for f in frames]), torch.cat(coors)
