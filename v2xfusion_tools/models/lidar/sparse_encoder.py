"""SparseEncoder: the SECOND / BEVFusion 3-D sparse conv backbone of Pipeline B (guide §5.1).

Layout as mmdet3d's / BEVFusion's SparseEncoder: `conv_input` (SubMConv3d + BN + ReLU), stages
`encoder_layers.encoder_layer{i}` (a strided SparseConv3d opens each stage after the first, or with
`block_type: basicblock` closes each stage but the last, the others being SubMConv3d blocks), and
`conv_out` (a (1, 1, 3) stride (1, 1, 2) SparseConv3d collapsing z). Inside, sites and kernels are
ordered (x, y, z) as BEVFusion's, so its 3-D kernels load without transposition; the input coors
are Pipeline B's voxelizer layout (batch, z, y, x) (guide §5.2.4). Weights: spconv 2.x layout.
"""
from __future__ import annotations

from typing import Literal, Sequence

from torch import Tensor, nn

from v2xfusion_tools.models.sparse import SparseConv3d, SparseTensor, SubMConv3d
from v2xfusion_tools.models.sparse.rulebook import output_shape

BN_EPS = 1e-3
BN_MOMENTUM = 0.01


class SparseConvBlock(nn.Sequential):
    """[sparse conv, BatchNorm1d, ReLU] as mmdet3d's make_sparse_convmodule (`.0`, `.1` names)."""

    def __init__(self, conv: SparseConv3d) -> None:
        super().__init__(conv, nn.BatchNorm1d(conv.out_channels, eps=BN_EPS, momentum=BN_MOMENTUM), nn.ReLU())

    def forward(self, x: SparseTensor) -> SparseTensor:
        x = self[0](x)
        return x.replace_features(self[2](self[1](x.features)))


class SparseBasicBlock(nn.Module):
    """Residual pair of 3x3x3 submanifold convs (mmdet3d's SparseBasicBlock names conv1/bn1/conv2/bn2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = SubMConv3d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm1d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.conv2 = SubMConv3d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm1d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()

    def forward(self, x: SparseTensor) -> SparseTensor:
        out = self.conv1(x)
        out = self.conv2(out.replace_features(self.relu(self.bn1(out.features))))
        return out.replace_features(self.relu(self.bn2(out.features) + x.features))


def _padding3(value: int | Sequence[int]) -> tuple[int, int, int]:
    return (value,) * 3 if isinstance(value, int) else tuple(value)


class SparseEncoder(nn.Module):
    """Voxel features -> dense BEV (B, output_channels * Z_out, X_out, Y_out).

    sparse_shape: (X, Y, Z) voxels; encoder_channels[i][j] / encoder_paddings[i][j]: channels and
    padding (int or (x, y, z)) of block j of stage i.
    """

    def __init__(self, sparse_shape: Sequence[int], in_channels: int = 4, base_channels: int = 16,
                 output_channels: int = 128,
                 encoder_channels: Sequence[Sequence[int]] = (
                     (16,), (32, 32, 32), (64, 64, 64), (64, 64, 64)),
                 encoder_paddings: Sequence[Sequence[int | Sequence[int]]] = (
                     (1,), (1, 1, 1), (1, 1, 1), ((1, 1, 0), 1, 1)),
                 block_type: Literal["conv_module", "basicblock"] = "conv_module") -> None:
        super().__init__()
        if [len(c) for c in encoder_channels] != [len(p) for p in encoder_paddings]:
            raise ValueError("encoder_paddings must give one padding per entry of encoder_channels")
        self.sparse_shape = tuple(int(s) for s in sparse_shape)
        self.in_channels = in_channels
        self.output_channels = output_channels
        self.conv_input = SparseConvBlock(SubMConv3d(in_channels, base_channels, 3, padding=1))
        shape = self.sparse_shape
        channels = base_channels
        self.encoder_layers = nn.Sequential()
        stages = len(encoder_channels)
        for i, (stage_channels, stage_paddings) in enumerate(zip(encoder_channels, encoder_paddings)):
            blocks: list[nn.Module] = []
            for j, (out_channels, padding) in enumerate(zip(stage_channels, stage_paddings)):
                padding = _padding3(padding)
                strided = (i != 0 and j == 0) if block_type == "conv_module" else \
                    (j == len(stage_channels) - 1 and i != stages - 1)
                if strided:
                    blocks.append(SparseConvBlock(SparseConv3d(channels, out_channels, 3, stride=2,
                                                               padding=padding)))
                    shape = output_shape(shape, (3, 3, 3), (2, 2, 2), padding, (1, 1, 1))
                elif block_type == "basicblock":
                    if out_channels != channels:
                        raise ValueError(f"encoder_channels[{i}][{j}]: a basic block keeps its {channels} "
                                         f"channels, got {out_channels}")
                    blocks.append(SparseBasicBlock(channels))
                else:
                    blocks.append(SparseConvBlock(SubMConv3d(channels, out_channels, 3, padding=padding)))
                channels = out_channels
            self.encoder_layers.add_module(f"encoder_layer{i + 1}", nn.Sequential(*blocks))
        self.conv_out = SparseConvBlock(SparseConv3d(channels, output_channels, (1, 1, 3), stride=(1, 1, 2)))
        self.out_shape = output_shape(shape, (1, 1, 3), (1, 1, 2), (0, 0, 0), (1, 1, 1))

    @property
    def out_channels(self) -> int:
        """Channels of the dense BEV output: output_channels per remaining z cell."""
        return self.output_channels * self.out_shape[2]

    def forward(self, voxel_features: Tensor, coors: Tensor, batch_size: int) -> Tensor:
        """voxel_features: (V, C) float32; coors: (V, 4) int (batch, z, y, x), unique rows
        -> (B, out_channels, X_out, Y_out) float32, channel index c * Z_out + z."""
        indices = coors[:, [0, 3, 2, 1]].long()
        x = SparseTensor(voxel_features, indices, self.sparse_shape, batch_size)
        x = self.conv_input(x)
        for stage in self.encoder_layers:
            for block in stage:
                x = block(x)
        dense = self.conv_out(x).dense()
        batch, channels, size_x, size_y, size_z = dense.shape
        return dense.permute(0, 1, 4, 2, 3).reshape(batch, channels * size_z, size_x, size_y)
