"""Pure-PyTorch 3-D sparse convolution (spconv 2.x semantics and weight layout, CPU, with autograd).

spconv 2.3.8 installs here, but its CPU backward calls `torch.cuda.current_stream()` and fails on a
CPU-only torch, so training uses this implementation: a hashed coordinate table builds the rulebook
(which input site feeds which output site through which kernel offset), then gather - GEMM -
scatter-add per offset. Weights are laid out as spconv 2.x: (out, k0, k1, k2, in).
"""
from v2xfusion_tools.models.sparse.conv import SparseConv3d, SubMConv3d, sparse_conv3d
from v2xfusion_tools.models.sparse.tensor import SparseTensor

__all__ = ["SparseConv3d", "SparseTensor", "SubMConv3d", "sparse_conv3d"]
