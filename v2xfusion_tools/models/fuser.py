"""ConvFuser: BEVFusion's fusion of camera and LiDAR BEV maps (concat, 3x3 conv, BN, ReLU)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


class ConvFuser(nn.Sequential):
    """Concatenate the BEV maps along channels and mix them; names `0` (conv), `1` (BN) as BEVFusion."""

    def __init__(self, in_channels: Sequence[int], out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(sum(in_channels), out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(True),
        )
        self.in_channels = list(in_channels)
        self.out_channels = out_channels

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """inputs: (B, in_channels[i], nx, ny) each, camera first -> (B, out_channels, nx, ny)."""
        return super().forward(torch.cat(list(inputs), dim=1))
