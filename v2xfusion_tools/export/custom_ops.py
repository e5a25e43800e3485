"""The custom ops of Pipeline B's unified ONNX (guide §5.1) as autograd Functions with `symbolic`.

Each Function computes its op in PyTorch (so the traced export module runs like the model) and
exports as one node of the `v2xfusion` domain, which the OpenVINO extension (ov_extension/)
implements on CPU with our kernels. Semantics, shared by the PyTorch forward, the ONNX node and the
C++ op:

* BevPoolV2(depth (1, D, fH, fW), feature (1, fH, fW, C), indices (P,) int32, intervals (K + 1, 3)
  int32; bev_dims = (nx, ny, nz)) -> (1, nz * C, nx, ny): geometry in the kernels' format
  (kernels/src/bevpool.hpp): indices a permutation of the P = D * fH * fW frustum points, inside
  points sorted by BEV rank (z * nx + x) * ny + y, intervals (start, end, rank) with the sentinel
  rank -1 last.
* SparseConvolution(features (N, Cin), indices (N, 4) int32 (b, z, y, x), weight (Cout, kz, ky, kx,
  Cin), bias (Cout,); kernel_size, stride, padding, dilation, in_spatial_shape as (z, y, x), subm,
  indice_key, activation) -> features (M, Cout)[, indices (M, 4) int32 when not subm]: spconv 2.x
  semantics (output o reads input o * stride - padding + k * dilation; SubM keeps the input sites,
  a strided conv's sites are sorted by (b, z, y, x)), BatchNorm already folded into weight / bias.
* SparseToDense(features (M, C), indices (M, 4) int32 (0, z, y, x); spatial_shape (Z, Y, X)) ->
  (1, C * Z, X, Y): BEVFusion's BEV layout, channel c * Z + z.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import Tensor

from v2xfusion_tools.models.sparse.rulebook import regular_rulebook, submanifold_rulebook

DOMAIN = "v2xfusion"
DOMAIN_VERSION = 1


@contextmanager
def untraced() -> Iterator[None]:
    """Run the PyTorch computation of a custom op outside the ONNX tracer: the op exports as its
    `symbolic` node only, and the tracer would otherwise record its data-dependent internals (loops
    over kernel offsets, index_add_) into a sub-block that the exporter's graph passes reject."""
    state = torch._C._get_tracing_state()
    torch._C._set_tracing_state(None)
    try:
        yield
    finally:
        torch._C._set_tracing_state(state)


def bev_pool_v2_intervals(depth: Tensor, feature: Tensor, indices: Tensor, intervals: Tensor,
                          bev_dims: Sequence[int]) -> Tensor:
    """BEVPool-v2 over the kernels' geometry format (see the module docstring).

    depth: (1, D, fH, fW) float32; feature: (1, fH, fW, C) float32; indices: (P,) int32;
    intervals: (K + 1, 3) int32. Returns (1, nz * C, nx, ny) float32.
    """
    nx, ny, nz = (int(v) for v in bev_dims)
    channels = feature.shape[-1]
    pixels = feature.shape[1] * feature.shape[2]
    runs = intervals[:-1].long()
    out = feature.new_zeros(nz * nx * ny, channels)
    if runs.shape[0]:
        lengths = runs[:, 1] - runs[:, 0]
        points = indices[int(runs[0, 0]):int(runs[-1, 1])].long()
        contributions = depth.reshape(-1)[points].unsqueeze(1) * feature.reshape(-1, channels)[points % pixels]
        sums = torch.segment_reduce(contributions, "sum", lengths=lengths, axis=0)
        out = out.index_copy(0, runs[:, 2], sums)
    return out.view(1, nz, nx, ny, channels).permute(0, 1, 4, 2, 3).reshape(1, nz * channels, nx, ny)


class BevPoolV2(torch.autograd.Function):
    """The BevPoolV2 node (module docstring)."""

    @staticmethod
    def forward(ctx, depth: Tensor, feature: Tensor, indices: Tensor, intervals: Tensor,
                bev_dims: tuple[int, int, int]) -> Tensor:
        with untraced():
            return bev_pool_v2_intervals(depth, feature, indices, intervals, bev_dims)

    @staticmethod
    def symbolic(g, depth, feature, indices, intervals, bev_dims):
        out = g.op(f"{DOMAIN}::BevPoolV2", depth, feature, indices, intervals, bev_dims_i=list(bev_dims))
        channels = feature.type().sizes()[3] if feature.type().sizes() else None
        nx, ny, nz = bev_dims
        out.setType(depth.type().with_sizes([1, channels * nz if channels else None, nx, ny]))
        return out


def sparse_convolution(features: Tensor, indices: Tensor, weight: Tensor, bias: Tensor,
                       kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                       dilation: Sequence[int], in_spatial_shape: Sequence[int], subm: bool,
                       relu: bool) -> tuple[Tensor, Tensor]:
    """The op in PyTorch: (M, Cout) features and their (M, 4) int32 sites (module docstring)."""
    sites = indices.long()
    if subm:
        rulebook = submanifold_rulebook(sites, in_spatial_shape, kernel_size, padding, dilation)
    else:
        rulebook = regular_rulebook(sites, in_spatial_shape, kernel_size, stride, padding, dilation)
    # plain gather - GEMM - scatter-add: the model's own autograd Function would nest inside this one,
    # which the ONNX tracer cannot record
    kernels = weight.reshape(weight.shape[0], -1, weight.shape[-1]).permute(1, 2, 0)
    out = features.new_zeros(rulebook.out_indices.shape[0], weight.shape[0])
    for k, (src, dst) in enumerate(zip(rulebook.in_rows, rulebook.out_rows)):
        if src.numel():
            out.index_add_(0, dst, features[src] @ kernels[k])
    out = out + bias
    if relu:
        out = torch.relu(out)
    return out, rulebook.out_indices.to(torch.int32)


class SparseConvolution(torch.autograd.Function):
    """The SparseConvolution node (module docstring). Returns features, and for a strided conv
    (subm False) also the output sites."""

    @staticmethod
    def forward(ctx, features: Tensor, indices: Tensor, weight: Tensor, bias: Tensor, kernel_size: tuple,
                stride: tuple, padding: tuple, dilation: tuple, in_spatial_shape: tuple, subm: bool,
                indice_key: str, relu: bool):
        with untraced():
            out, out_indices = sparse_convolution(features, indices, weight, bias, kernel_size, stride, padding,
                                                  dilation, in_spatial_shape, subm, relu)
        return out if subm else (out, out_indices)

    @staticmethod
    def symbolic(g, features, indices, weight, bias, kernel_size, stride, padding, dilation, in_spatial_shape,
                 subm, indice_key, relu):
        outputs = g.op(f"{DOMAIN}::SparseConvolution", features, indices, weight, bias,
                       kernel_size_i=list(kernel_size), stride_i=list(stride), padding_i=list(padding),
                       dilation_i=list(dilation), in_spatial_shape_i=list(in_spatial_shape),
                       subm_i=int(subm), indice_key_s=indice_key, activation_s="relu" if relu else "none",
                       outputs=1 if subm else 2)
        out_channels = weight.type().sizes()[0]
        if subm:
            outputs.setType(features.type().with_sizes([None, out_channels]))
            return outputs
        out, out_indices = outputs
        out.setType(features.type().with_sizes([None, out_channels]))
        out_indices.setType(indices.type().with_sizes([None, 4]))
        return out, out_indices


def sparse_to_dense_bev(features: Tensor, indices: Tensor, spatial_shape: Sequence[int]) -> Tensor:
    """(M, C) features at (0, z, y, x) sites -> (1, C * Z, X, Y) (module docstring)."""
    z_dim, y_dim, x_dim = (int(v) for v in spatial_shape)
    channels = features.shape[1]
    sites = indices.long()
    rows = (sites[:, 1] * x_dim + sites[:, 3]) * y_dim + sites[:, 2]
    dense = features.new_zeros(z_dim * x_dim * y_dim, channels).index_copy(0, rows, features)
    return dense.view(z_dim, x_dim, y_dim, channels).permute(3, 0, 1, 2).reshape(1, channels * z_dim, x_dim, y_dim)


class SparseToDense(torch.autograd.Function):
    """The SparseToDense node (module docstring)."""

    @staticmethod
    def forward(ctx, features: Tensor, indices: Tensor, spatial_shape: tuple) -> Tensor:
        with untraced():
            return sparse_to_dense_bev(features, indices, spatial_shape)

    @staticmethod
    def symbolic(g, features, indices, spatial_shape):
        out = g.op(f"{DOMAIN}::SparseToDense", features, indices, spatial_shape_i=list(spatial_shape))
        channels = features.type().sizes()[1] if features.type().sizes() else None
        z_dim, y_dim, x_dim = spatial_shape
        out.setType(features.type().with_sizes([1, channels * z_dim if channels else None, x_dim, y_dim]))
        return out
