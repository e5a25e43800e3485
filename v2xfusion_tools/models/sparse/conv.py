"""SubMConv3d / SparseConv3d modules over SparseTensor (spconv 2.x weight layout and semantics)."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from v2xfusion_tools.models.sparse.rulebook import Rulebook, regular_rulebook, submanifold_rulebook
from v2xfusion_tools.models.sparse.tensor import SparseTensor


def _triple(value: int | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(value, int):
        return (value, value, value)
    if len(value) != 3:
        raise ValueError(f"expected an int or 3 ints, got {value!r}")
    return tuple(int(v) for v in value)


def _kernels(weight: Tensor) -> Tensor:
    """(out, k0, k1, k2, in) -> (K, in, out), contiguous per kernel offset."""
    return weight.reshape(weight.shape[0], -1, weight.shape[-1]).permute(1, 2, 0).contiguous()


class _GatherGemmScatter(torch.autograd.Function):
    """out[o] += features[i] @ W_k for every pair (i, o) of every kernel offset k, and its gradients.

    Written as one autograd node so that the per-offset products and scatter-adds run in place: the
    work is proportional to the number of pairs, not to M x kernel volume (sparse data leaves most
    neighbourhood slots empty).
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)   # float32 under CUDA AMP
    def forward(ctx, features: Tensor, weight: Tensor, in_rows: list[Tensor], out_rows: list[Tensor],
                num_out: int) -> Tensor:
        kernels = _kernels(weight)
        out = features.new_zeros(num_out, weight.shape[0])
        for k, (src, dst) in enumerate(zip(in_rows, out_rows)):
            if src.numel():
                out.index_add_(0, dst, features[src] @ kernels[k])
        ctx.save_for_backward(features, weight)
        ctx.pairs = (in_rows, out_rows)
        return out

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad_out: Tensor):
        features, weight = ctx.saved_tensors
        in_rows, out_rows = ctx.pairs
        kernels = _kernels(weight)
        grad_features = torch.zeros_like(features) if ctx.needs_input_grad[0] else None
        grad_kernels = torch.zeros_like(kernels) if ctx.needs_input_grad[1] else None
        for k, (src, dst) in enumerate(zip(in_rows, out_rows)):
            if not src.numel():
                continue
            grad = grad_out[dst]
            if grad_features is not None:
                grad_features.index_add_(0, src, grad @ kernels[k].T)
            if grad_kernels is not None:
                grad_kernels[k] = features[src].T @ grad
        grad_weight = None
        if grad_kernels is not None:  # back to (out, k0, k1, k2, in)
            grad_weight = grad_kernels.permute(2, 0, 1).reshape(weight.shape[0], *weight.shape[1:4],
                                                                weight.shape[4])
        return grad_features, grad_weight, None, None, None


def sparse_conv3d(features: Tensor, weight: Tensor, rulebook: Rulebook, bias: Tensor | None = None) -> Tensor:
    """Gather - GEMM - scatter-add over a rulebook.

    features: (N, in) float32; weight: (out, k0, k1, k2, in). Returns (M, out) float32 for the
    rulebook's M output sites.
    """
    out = _GatherGemmScatter.apply(features, weight, rulebook.in_rows, rulebook.out_rows,
                                   rulebook.out_indices.shape[0])
    if bias is not None:
        out = out + bias
    return out


class SparseConv3d(nn.Module):
    """Regular sparse conv: output sites are all sites reached by an input (dense conv3d semantics)."""

    subm = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                 dilation: int | Sequence[int] = 1, bias: bool = False) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _triple(kernel_size)
        self.stride = _triple(stride)
        self.padding = _triple(padding)
        self.dilation = _triple(dilation)
        if self.subm and self.stride != (1, 1, 1):
            raise ValueError(f"a submanifold conv has stride 1, got {self.stride}")
        self.weight = nn.Parameter(torch.empty(out_channels, *self.kernel_size, in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        # nn.Conv3d's default: kaiming-uniform over fan_in = in * kernel volume
        nn.init.kaiming_uniform_(self.weight.data.view(out_channels, -1), a=math.sqrt(5))

    def rulebook(self, x: SparseTensor) -> Rulebook:
        return regular_rulebook(x.indices, x.spatial_shape, self.kernel_size, self.stride, self.padding,
                                self.dilation)

    def forward(self, x: SparseTensor) -> SparseTensor:
        rulebook = self.rulebook(x)
        features = sparse_conv3d(x.features, self.weight, rulebook, self.bias)
        return SparseTensor(features, rulebook.out_indices, rulebook.out_shape, x.batch_size)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, subm={self.subm}")


class SubMConv3d(SparseConv3d):
    """Submanifold sparse conv: stride 1, output sites = input sites (no dilation of the active set)."""

    subm = True

    def rulebook(self, x: SparseTensor) -> Rulebook:
        key = ("subm", self.kernel_size, self.padding, self.dilation)
        if key not in x.rulebooks:
            x.rulebooks[key] = submanifold_rulebook(x.indices, x.spatial_shape, self.kernel_size,
                                                    self.padding, self.dilation)
        return x.rulebooks[key]

    def forward(self, x: SparseTensor) -> SparseTensor:
        return x.replace_features(sparse_conv3d(x.features, self.weight, self.rulebook(x), self.bias))
