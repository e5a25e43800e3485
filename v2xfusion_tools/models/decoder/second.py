"""SECOND 2-D backbone: stages of 3x3 conv + BN + ReLU, each opened by a strided conv (mmdet3d names)."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.01


class SECOND(nn.Module):
    """blocks[i] = [Conv(stride layer_strides[i]), BN, ReLU] + layer_nums[i] x [Conv, BN, ReLU]."""

    def __init__(self, in_channels: int, out_channels: Sequence[int], layer_nums: Sequence[int],
                 layer_strides: Sequence[int]) -> None:
        super().__init__()
        if not len(out_channels) == len(layer_nums) == len(layer_strides):
            raise ValueError("out_channels, layer_nums and layer_strides need one entry per stage")
        self.out_channels = list(out_channels)
        self.strides = list(layer_strides)
        channels = [in_channels, *out_channels]
        self.blocks = nn.ModuleList()
        for i, (repeats, stride) in enumerate(zip(layer_nums, layer_strides)):
            layers: list[nn.Module] = [
                nn.Conv2d(channels[i], channels[i + 1], 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(channels[i + 1], eps=BN_EPS, momentum=BN_MOMENTUM), nn.ReLU(inplace=True)]
            for _ in range(repeats):
                layers += [nn.Conv2d(channels[i + 1], channels[i + 1], 3, padding=1, bias=False),
                           nn.BatchNorm2d(channels[i + 1], eps=BN_EPS, momentum=BN_MOMENTUM),
                           nn.ReLU(inplace=True)]
            self.blocks.append(nn.Sequential(*layers))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: (B, in_channels, nx, ny) -> one (B, out_channels[i], nx / s_i, ny / s_i) per stage,
        s_i the product of the strides up to stage i."""
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return outs
