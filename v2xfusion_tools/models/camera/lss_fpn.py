"""GeneralizedLSSFPN: BEVFusion's top-down camera feature pyramid (upsample, concat, 1x1, 3x3)."""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from v2xfusion_tools.models.conv_module import ConvModule


class GeneralizedLSSFPN(nn.Module):
    """Fuses backbone levels top-down; output i has level i's resolution and `out_channels` channels.

    For each level i below the coarsest, from coarse to fine: upsample level i+1's result to level i's
    size, concatenate with level i's input, then `lateral_convs[i]` (1x1) and `fpn_convs[i]` (3x3).
    With n input levels there are n - 1 outputs (the coarsest level only feeds the one above it).
    Module names (`lateral_convs.{i}.conv`, `fpn_convs.{i}.bn`) are BEVFusion's.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int,
                 upsample_mode: Literal["bilinear", "nearest"] = "bilinear", align_corners: bool = False,
                 no_norm_on_lateral: bool = False) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.upsample_mode = upsample_mode
        self.align_corners = align_corners if upsample_mode == "bilinear" else None
        levels = len(self.in_channels)
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(levels - 1):
            # the coarsest pair concatenates raw backbone channels; finer pairs concatenate FPN outputs
            from_above = self.in_channels[i + 1] if i == levels - 2 else out_channels
            self.lateral_convs.append(ConvModule(self.in_channels[i] + from_above, out_channels, 1,
                                                 norm=not no_norm_on_lateral))
            self.fpn_convs.append(ConvModule(out_channels, out_channels, 3, padding=1))

    def forward(self, inputs: Sequence[Tensor]) -> list[Tensor]:
        """inputs: one (B, in_channels[i], H_i, W_i) per level, fine to coarse -> n - 1 outputs
        (B, out_channels, H_i, W_i)."""
        laterals = list(inputs)
        for i in range(len(laterals) - 2, -1, -1):
            above = F.interpolate(laterals[i + 1], size=laterals[i].shape[2:], mode=self.upsample_mode,
                                  align_corners=self.align_corners)
            laterals[i] = self.fpn_convs[i](self.lateral_convs[i](torch.cat([laterals[i], above], 1)))
        return laterals[:-1]
