"""ResNet-18/34 image backbone (BasicBlock), parameter names as mmdet's / torchvision's ResNet."""
from __future__ import annotations

from typing import Literal, Sequence

from torch import Tensor, nn

# blocks per stage for the BasicBlock ResNets (He et al. 2016, table 1)
STAGE_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
STAGE_CHANNELS = (64, 128, 256, 512)
# output stride of layer1..layer4 relative to the input image (stem: conv stride 2 + max-pool stride 2)
STAGE_STRIDES = (4, 8, 16, 32)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection; the first conv carries the stride."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet without its classifier; returns the feature maps of the stages named in `out_indices`.

    Names follow mmdet / torchvision (`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample.0`), so
    ImageNet weights (torchvision `resnet34`) and BEVFusion camera backbones load by name.
    """

    def __init__(self, depth: Literal[18, 34] = 34, in_channels: int = 3,
                 out_indices: Sequence[int] = (1, 2, 3)) -> None:
        super().__init__()
        self.out_indices = tuple(out_indices)
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = 64
        for stage, (blocks, out_channels) in enumerate(zip(STAGE_BLOCKS[depth], STAGE_CHANNELS)):
            stride = 1 if stage == 0 else 2
            layer = [BasicBlock(channels, out_channels, stride)]
            layer += [BasicBlock(out_channels, out_channels, 1) for _ in range(blocks - 1)]
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layer))
            channels = out_channels
        self._init_weights()

    @property
    def out_channels(self) -> list[int]:
        """Channels of each returned feature map."""
        return [STAGE_CHANNELS[i] for i in self.out_indices]

    @property
    def out_strides(self) -> list[int]:
        """Stride (relative to the input image) of each returned feature map."""
        return [STAGE_STRIDES[i] for i in self.out_indices]

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: (B, 3, H, W) float32 -> one (B, out_channels[i], H / out_strides[i], W / ...) per index."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for stage in range(4):
            x = getattr(self, f"layer{stage + 1}")(x)
            if stage in self.out_indices:
                outs.append(x)
        return outs
