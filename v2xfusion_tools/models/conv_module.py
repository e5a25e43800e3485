"""Conv2d + BatchNorm2d + ReLU unit whose parameters carry mmcv ConvModule's names (`conv`, `bn`)."""
from __future__ import annotations

from torch import Tensor, nn


class ConvModule(nn.Module):
    """Conv2d followed by an optional BatchNorm2d and an optional ReLU.

    Parameter names match mmcv's ConvModule (`conv.weight`, `bn.running_mean`, ...) so that BEVFusion
    and mmdet3d checkpoints load by name. As in mmcv's `bias="auto"`, the convolution has a bias only
    when no norm follows it (a bias before BatchNorm is redundant).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, norm: bool = True, act: bool = True, eps: float = 1e-5,
                 momentum: float = 0.1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              bias=not norm)
        self.bn = nn.BatchNorm2d(out_channels, eps=eps, momentum=momentum) if norm else None
        self.act = nn.ReLU(inplace=False) if act else None

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, H, W) -> (B, out_channels, H', W')."""
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x
