"""BEV pooling of the LSS frustum: v1 (scatter-add of the full outer product) and v2 (BEVDet ranks).

Both sum `depth[b, d, h, w] * feat[b, h, w, :]` over the frustum points that fall into each BEV cell
and give the same tensor. v1 builds the (B, D, fH, fW, C) outer product and scatter-adds it, as
BEVFusion's `bev_pool`. v2 (BEVDet's `bev_pool_v2`, guide §5.2.1) precomputes from the geometry alone
which depth entry, feature pixel and BEV cell each kept point uses (`ranks_*`), sorted by cell, with
the runs of equal cells as intervals; pooling then never materialises the outer product, and the
geometry can be computed once per calibration (guide §5.2.3) and shipped to the runtime kernel.

BEV layout (BEVFusion's): (B, nz * C, nx, ny), rows along x, channel index `z * C + c`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor


@dataclass(frozen=True)
class BevGrid:
    """The camera BEV voxel grid: each bound is (start, end, step) in metres (LiDAR frame)."""

    xbound: tuple[float, float, float]
    ybound: tuple[float, float, float]
    zbound: tuple[float, float, float]

    @staticmethod
    def from_bounds(xbound: Sequence[float], ybound: Sequence[float], zbound: Sequence[float]) -> "BevGrid":
        return BevGrid(tuple(map(float, xbound)), tuple(map(float, ybound)), tuple(map(float, zbound)))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(nx, ny, nz) cells."""
        return tuple(int(round((b[1] - b[0]) / b[2])) for b in (self.xbound, self.ybound, self.zbound))

    def cells(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """Cell (ix, iy, iz) of each point and whether it lies inside the grid.

        points: (..., 3) float32 -> (..., 3) int64, (...) bool. Uses floor, so a point just below a
        lower bound is outside (BEVFusion's truncating `.long()` would put it in cell 0).
        """
        lower = points.new_tensor([self.xbound[0], self.ybound[0], self.zbound[0]])
        step = points.new_tensor([self.xbound[2], self.ybound[2], self.zbound[2]])
        cells = torch.floor((points - lower) / step)
        upper = points.new_tensor(self.shape)
        kept = ((cells >= 0) & (cells < upper)).all(dim=-1)
        return torch.where(kept.unsqueeze(-1), cells, torch.zeros_like(cells)).long(), kept


def _bev_ranks(geom: Tensor, grid: BevGrid) -> tuple[Tensor, Tensor]:
    """Flat output row ((b * nz + iz) * nx + ix) * ny + iy of every frustum point, and its kept mask.

    geom: (B, D, fH, fW, 3) -> (B * D * fH * fW,) int64, (B * D * fH * fW,) bool.
    """
    batch = geom.shape[0]
    nx, ny, nz = grid.shape
    cells, kept = grid.cells(geom)
    b = torch.arange(batch, device=geom.device).view(-1, 1, 1, 1).expand(geom.shape[:4])
    ranks = ((b * nz + cells[..., 2]) * nx + cells[..., 0]) * ny + cells[..., 1]
    return ranks.reshape(-1), kept.reshape(-1)


def _to_bev(flat: Tensor, batch: int, grid: BevGrid) -> Tensor:
    """(B * nz * nx * ny, C) rows -> (B, nz * C, nx, ny)."""
    nx, ny, nz = grid.shape
    channels = flat.shape[1]
    bev = flat.view(batch, nz, nx, ny, channels).permute(0, 1, 4, 2, 3)
    return bev.reshape(batch, nz * channels, nx, ny)


def bev_pool_v1(depth: Tensor, feat: Tensor, geom: Tensor, grid: BevGrid) -> Tensor:
    """Scatter-add pooling of the full frustum outer product.

    depth: (B, D, fH, fW) float32 (a distribution over D); feat: (B, fH, fW, C) float32;
    geom: (B, D, fH, fW, 3) LiDAR-frame points. Returns (B, nz * C, nx, ny) float32.
    """
    batch, channels = depth.shape[0], feat.shape[-1]
    nx, ny, nz = grid.shape
    frustum = (depth.unsqueeze(-1) * feat.unsqueeze(1)).reshape(-1, channels)
    ranks, kept = _bev_ranks(geom, grid)
    out = frustum.new_zeros(batch * nz * nx * ny, channels)
    out = out.index_add(0, ranks[kept], frustum[kept])
    return _to_bev(out, batch, grid)


@dataclass(frozen=True)
class BevPoolV2Geometry:
    """What bev_pool_v2 needs from the calibration alone (BEVDet's names).

    ranks_depth: (P,) int64 flat index into depth (B, D, fH, fW); ranks_feat: (P,) int64 flat index
    into the feature pixels (B, fH, fW); ranks_bev: (P,) int64 flat output row (see `_bev_ranks`),
    non-decreasing; interval_starts / interval_lengths: (I,) int64, one run of equal ranks_bev each.
    P counts the kept frustum points only.
    """

    ranks_depth: Tensor
    ranks_feat: Tensor
    ranks_bev: Tensor
    interval_starts: Tensor
    interval_lengths: Tensor
    batch_size: int
    grid: BevGrid


def bev_pool_v2_prepare(geom: Tensor, grid: BevGrid) -> BevPoolV2Geometry:
    """Sort the kept frustum points by BEV cell. geom: (B, D, fH, fW, 3) float32 LiDAR-frame points."""
    batch, depth_bins, feat_h, feat_w = geom.shape[:4]
    ranks_bev, kept = _bev_ranks(geom.detach(), grid)
    ranks_depth = torch.arange(ranks_bev.numel(), device=geom.device)
    # depth index (b, d, h, w) -> feature pixel index (b, h, w)
    pixels = feat_h * feat_w
    ranks_feat = (ranks_depth // (depth_bins * pixels)) * pixels + ranks_depth % pixels
    ranks_bev, ranks_depth, ranks_feat = ranks_bev[kept], ranks_depth[kept], ranks_feat[kept]
    order = torch.argsort(ranks_bev, stable=True)
    ranks_bev, ranks_depth, ranks_feat = ranks_bev[order], ranks_depth[order], ranks_feat[order]
    starts_mask = torch.ones_like(ranks_bev, dtype=torch.bool)
    starts_mask[1:] = ranks_bev[1:] != ranks_bev[:-1]
    interval_starts = torch.nonzero(starts_mask).squeeze(1)
    ends = torch.cat([interval_starts[1:], interval_starts.new_tensor([ranks_bev.numel()])])
    return BevPoolV2Geometry(ranks_depth, ranks_feat, ranks_bev, interval_starts, ends - interval_starts,
                             batch, grid)


def bev_pool_v2(depth: Tensor, feat: Tensor, geometry: BevPoolV2Geometry) -> Tensor:
    """Interval pooling over precomputed ranks.

    depth: (B, D, fH, fW) float32; feat: (B, fH, fW, C) float32. Returns (B, nz * C, nx, ny) float32.
    """
    channels = feat.shape[-1]
    nx, ny, nz = geometry.grid.shape
    out = feat.new_zeros(geometry.batch_size * nz * nx * ny, channels)
    if geometry.interval_starts.numel() == 0:  # no frustum point inside the grid
        return _to_bev(out, geometry.batch_size, geometry.grid)
    contributions = depth.reshape(-1)[geometry.ranks_depth].unsqueeze(1) * \
        feat.reshape(-1, channels)[geometry.ranks_feat]
    sums = torch.segment_reduce(contributions, "sum", lengths=geometry.interval_lengths, axis=0)
    out = out.index_copy(0, geometry.ranks_bev[geometry.interval_starts], sums)
    return _to_bev(out, geometry.batch_size, geometry.grid)
