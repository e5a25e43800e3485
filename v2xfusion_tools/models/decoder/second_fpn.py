"""SECONDFPN neck: bring each SECOND stage back to one resolution and concatenate (mmdet3d names)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.01


class SECONDFPN(nn.Module):
    """deblocks[i] = [ConvTranspose2d (upsample_strides[i] > 1, or == 1 without use_conv_for_no_stride)
    or Conv2d (stride 1 / upsample_strides[i]), BN, ReLU]; outputs concatenated along channels."""

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int],
                 upsample_strides: Sequence[float], use_conv_for_no_stride: bool = False) -> None:
        super().__init__()
        if not len(in_channels) == len(out_channels) == len(upsample_strides):
            raise ValueError("in_channels, out_channels and upsample_strides need one entry per level")
        self.out_channels = sum(out_channels)
        self.upsample_strides = [float(s) for s in upsample_strides]
        self.deblocks = nn.ModuleList()
        for c_in, c_out, stride in zip(in_channels, out_channels, self.upsample_strides):
            if stride > 1 or (stride == 1 and not use_conv_for_no_stride):
                if stride != int(stride):
                    raise ValueError(f"upsample stride {stride} above 1 must be an integer")
                up: nn.Module = nn.ConvTranspose2d(c_in, c_out, int(stride), stride=int(stride), bias=False)
            else:
                down = round(1 / stride)
                if abs(down * stride - 1) > 1e-6:
                    raise ValueError(f"upsample stride {stride} below 1 must be 1 / an integer")
                up = nn.Conv2d(c_in, c_out, down, stride=down, bias=False)
            self.deblocks.append(nn.Sequential(up, nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM),
                                               nn.ReLU(inplace=True)))
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """inputs: SECOND's stage outputs -> (B, sum(out_channels), nx', ny')."""
        return torch.cat([deblock(x) for deblock, x in zip(self.deblocks, inputs)], dim=1)
