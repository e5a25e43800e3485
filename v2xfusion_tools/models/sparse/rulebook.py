"""Rulebooks of 3-D sparse convolutions: for each kernel offset, the (input row, output row) pairs.

An output site o receives input site i through kernel offset k when `i = o * stride - padding +
k * dilation` (per axis), as a dense conv3d. A submanifold conv keeps the input sites as its output
sites; a regular conv's output sites are every site some input reaches. Sites are found through a
sorted table of int64 coordinate keys (binary search), so no dense grid is ever allocated.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Sequence

import torch
from torch import Tensor


@dataclass(frozen=True)
class Rulebook:
    """out_indices: (M, 4) int64 output sites (batch, i0, i1, i2); in_rows[k] / out_rows[k]: (P_k,)
    int64, input row in_rows[k][p] feeds output row out_rows[k][p] through kernel offset k, k
    running over the offsets in (k0, k1, k2) row-major order (the weight's layout)."""

    out_indices: Tensor
    out_shape: tuple[int, int, int]
    in_rows: list[Tensor]
    out_rows: list[Tensor]


def output_shape(spatial_shape: Sequence[int], kernel_size: Sequence[int], stride: Sequence[int],
                 padding: Sequence[int], dilation: Sequence[int]) -> tuple[int, int, int]:
    """Output extent of a regular conv per axis (dense conv3d arithmetic)."""
    return tuple((s + 2 * p - d * (k - 1) - 1) // st + 1
                 for s, k, st, p, d in zip(spatial_shape, kernel_size, stride, padding, dilation))


def _keys(indices: Tensor, shape: Sequence[int]) -> Tensor:
    """Unique int64 key of each (batch, i0, i1, i2) row in a grid of `shape`."""
    return ((indices[:, 0] * shape[0] + indices[:, 1]) * shape[1] + indices[:, 2]) * shape[2] + indices[:, 3]


def _lookup(table_keys: Tensor, query: Tensor) -> Tensor:
    """Row of each query key in `table_keys` (any order), or -1. query: (Q,) int64 -> (Q,) int64."""
    if table_keys.numel() == 0:
        return torch.full_like(query, -1)
    sorted_keys, order = torch.sort(table_keys)
    pos = torch.searchsorted(sorted_keys, query).clamp(max=sorted_keys.numel() - 1)
    found = sorted_keys[pos] == query
    return torch.where(found, order[pos], torch.full_like(query, -1))


def _offsets(kernel_size: Sequence[int], device: torch.device) -> Tensor:
    return torch.tensor(list(product(*(range(k) for k in kernel_size))), dtype=torch.long,
                        device=device).view(-1, 3)


def submanifold_rulebook(indices: Tensor, spatial_shape: Sequence[int], kernel_size: Sequence[int],
                         padding: Sequence[int], dilation: Sequence[int]) -> Rulebook:
    """Rulebook of a stride-1 conv whose output sites are its input sites. indices: (N, 4) int64."""
    keys = _keys(indices, spatial_shape)
    shape = torch.tensor(spatial_shape, device=indices.device)
    pad = torch.tensor(padding, device=indices.device)
    dil = torch.tensor(dilation, device=indices.device)
    rows = torch.arange(indices.shape[0], device=indices.device)
    in_rows, out_rows = [], []
    for offset in _offsets(kernel_size, indices.device):
        source = indices[:, 1:] - pad + offset * dil
        inside = ((source >= 0) & (source < shape)).all(dim=1)
        found = _lookup(keys, _keys(torch.cat([indices[:, :1], source], dim=1), spatial_shape))
        valid = inside & (found >= 0)
        in_rows.append(found[valid])
        out_rows.append(rows[valid])
    return Rulebook(indices, tuple(spatial_shape), in_rows, out_rows)


def regular_rulebook(indices: Tensor, spatial_shape: Sequence[int], kernel_size: Sequence[int],
                     stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int]) -> Rulebook:
    """Rulebook of a regular (strided) conv; output sites sorted by (batch, i0, i1, i2)."""
    out_shape = output_shape(spatial_shape, kernel_size, stride, padding, dilation)
    limit = torch.tensor(out_shape, device=indices.device)
    st = torch.tensor(stride, device=indices.device)
    pad = torch.tensor(padding, device=indices.device)
    dil = torch.tensor(dilation, device=indices.device)
    rows = torch.arange(indices.shape[0], device=indices.device)
    in_rows, sites = [], []  # per kernel offset: input rows and the output sites they reach
    for offset in _offsets(kernel_size, indices.device):
        shifted = indices[:, 1:] + pad - offset * dil
        target = torch.div(shifted, st, rounding_mode="floor")
        valid = ((shifted % st) == 0).all(dim=1) & ((target >= 0) & (target < limit)).all(dim=1)
        in_rows.append(rows[valid])
        sites.append(torch.cat([indices[valid, :1], target[valid]], dim=1))
    unique_keys, inverse = torch.unique(_keys(torch.cat(sites), out_shape), return_inverse=True)
    s0, s1, s2 = out_shape
    out_indices = torch.stack([unique_keys // (s0 * s1 * s2), (unique_keys // (s1 * s2)) % s0,
                               (unique_keys // s2) % s1, unique_keys % s2], dim=1)
    out_rows = list(inverse.split([r.numel() for r in in_rows]))
    return Rulebook(out_indices, out_shape, in_rows, out_rows)
