"""PointPillars encoder: PillarFeatureNet (per-pillar PointNet) + PointPillarsScatter (BEV canvas).

Names follow mmdet3d / CUDA-V2XFusion (`pts_voxel_encoder.pfn_layers.0.linear`, `.norm`, and with
`input_norm` CUDA-V2XFusion's extra `.bn` on the decorated input), so their checkpoints load by name.
`PillarFeatureNet.forward` is the lidar_pfe ONNX of Pipeline A (guide §4.1): the point decorations
(f_cluster, f_center, distance) and the padding mask are computed inside it, with no data-dependent
control flow, so a static V (padded pillars with num_points 0) traces and runs.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

# mmdet3d's PointPillars norm settings
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


class PFNLayer(nn.Module):
    """Linear + BN + ReLU over each point, then max over the pillar's points.

    A last layer returns the max (V, out); an inner one concatenates it to every point (V, P, out) and
    uses half the channels for each half. `input_norm` adds CUDA-V2XFusion's BatchNorm of the input.
    """

    def __init__(self, in_channels: int, out_channels: int, last_layer: bool, input_norm: bool) -> None:
        super().__init__()
        self.last_layer = last_layer
        units = out_channels if last_layer else out_channels // 2
        self.bn = nn.BatchNorm1d(in_channels) if input_norm else None
        self.linear = nn.Linear(in_channels, units, bias=False)
        self.norm = nn.BatchNorm1d(units, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs: (V, P, in_channels) -> (V, out_channels) if last else (V, P, out_channels)."""
        x = inputs
        if self.bn is not None:
            x = self._batch_norm(self.bn, x)
        x = self.linear(x)
        x = torch.relu(self._batch_norm(self.norm, x))
        x_max = x.max(dim=1, keepdim=True).values
        if self.last_layer:
            return x_max.squeeze(1)
        return torch.cat([x, x_max.expand(-1, inputs.shape[1], -1)], dim=2)

    def _batch_norm(self, norm: nn.BatchNorm1d, x: Tensor) -> Tensor:
        """BatchNorm of every point's channels, x: (V, P, C). Training normalises the flat (V * P, C)
        view: the same statistics, about 5x faster on CPU than the strided (V, C, P) one; evaluation
        keeps the (V, C, P) form that the exported graph is made of."""
        if self.training:
            return norm(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        return norm(x.transpose(1, 2)).transpose(1, 2)


class PillarFeatureNet(nn.Module):
    """Decorate each point with its offset from the pillar's point mean (f_cluster), from the pillar
    centre (f_center; z too with `voxel_center_z`) and optionally its range, then run PFN layers.

    voxel_size: pillar (dx, dy, dz); point_cloud_range: (x_min, y_min, z_min, x_max, y_max, z_max).
    """

    def __init__(self, voxel_size: Sequence[float], point_cloud_range: Sequence[float], in_channels: int = 4,
                 feat_channels: Sequence[int] = (64,), with_distance: bool = False,
                 with_cluster_center: bool = True, with_voxel_center: bool = True,
                 voxel_center_z: bool = True, input_norm: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.with_distance = with_distance
        self.with_cluster_center = with_cluster_center
        self.with_voxel_center = with_voxel_center
        self.voxel_center_z = voxel_center_z
        decorated = in_channels + 3 * with_cluster_center + with_distance
        decorated += (3 if voxel_center_z else 2) * with_voxel_center
        channels = [decorated, *feat_channels]
        self.pfn_layers = nn.ModuleList(
            PFNLayer(channels[i], channels[i + 1], last_layer=i == len(channels) - 2,
                     input_norm=input_norm and i == 0)
            for i in range(len(channels) - 1))
        self.out_channels = channels[-1]
        self.register_buffer("voxel_size", torch.tensor(list(voxel_size), dtype=torch.float32),
                             persistent=False)
        # centre of pillar (0, 0, 0)
        origin = [point_cloud_range[i] + voxel_size[i] / 2 for i in range(3)]
        self.register_buffer("origin", torch.tensor(origin, dtype=torch.float32), persistent=False)

    def decorate(self, features: Tensor, num_points: Tensor, coors: Tensor) -> Tensor:
        """features: (V, P, C) float32 padded points; num_points: (V,) int; coors: (V, 4) int
        (batch, x, y, z) -> (V, P, C + decorations): points, f_cluster (3), f_center (2 or 3),
        distance (1), in that order; padding slots all zero."""
        xyz = features[:, :, :3]
        count = num_points.to(features.dtype).clamp(min=1).view(-1, 1, 1)  # padded pillars have 0
        parts = [features]
        if self.with_cluster_center:
            parts.append(xyz - xyz.sum(dim=1, keepdim=True) / count)
        if self.with_voxel_center:
            axes = 3 if self.voxel_center_z else 2
            centre = coors[:, 1:1 + axes].to(features.dtype) * self.voxel_size[:axes] + self.origin[:axes]
            parts.append(xyz[:, :, :axes] - centre.unsqueeze(1))
        if self.with_distance:
            parts.append(torch.linalg.vector_norm(xyz, dim=2, keepdim=True))
        decorated = torch.cat(parts, dim=2)
        # decorations of padding slots are not zero (e.g. -centre): zero the whole slot again
        slots = torch.arange(features.shape[1], device=features.device).view(1, -1)
        mask = (slots < num_points.view(-1, 1)).unsqueeze(2).to(features.dtype)
        return decorated * mask

    def forward(self, features: Tensor, num_points: Tensor, coors: Tensor) -> Tensor:
        """features: (V, P, C) float32 padded points; num_points: (V,) int; coors: (V, 4) int
        (batch, x, y, z) -> (V, out_channels) float32."""
        x = self.decorate(features, num_points, coors)
        for layer in self.pfn_layers:
            x = layer(x)
        return x


class PointPillarsScatter(nn.Module):
    """Write each pillar's feature into its cell of a zero BEV canvas (B, C, nx, ny), rows along x.

    output_shape: (nx, ny).
    """

    def __init__(self, output_shape: Sequence[int], in_channels: int = 64) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.nx, self.ny = int(output_shape[0]), int(output_shape[1])

    def forward(self, voxel_features: Tensor, coors: Tensor, batch_size: int) -> Tensor:
        """voxel_features: (V, C); coors: (V, 4) int (batch, x, y, z), unique cells -> (B, C, nx, ny)."""
        coors = coors.long()
        rows = (coors[:, 0] * self.nx + coors[:, 1]) * self.ny + coors[:, 2]
        canvas = voxel_features.new_zeros(batch_size * self.nx * self.ny, self.in_channels)
        canvas = canvas.index_copy(0, rows, voxel_features)
        return canvas.view(batch_size, self.nx, self.ny, self.in_channels).permute(0, 3, 1, 2).contiguous()


class PointPillarsEncoder(nn.Module):
    """PillarFeatureNet then PointPillarsScatter, under mmdet3d's names."""

    def __init__(self, pts_voxel_encoder: PillarFeatureNet, pts_middle_encoder: PointPillarsScatter) -> None:
        super().__init__()
        self.pts_voxel_encoder = pts_voxel_encoder
        self.pts_middle_encoder = pts_middle_encoder

    @property
    def out_channels(self) -> int:
        return self.pts_middle_encoder.in_channels

    def forward(self, voxels: Tensor, num_points: Tensor, coors: Tensor, batch_size: int) -> Tensor:
        """voxels: (V, P, C); num_points: (V,); coors: (V, 4) (batch, x, y, z) -> (B, C, nx, ny)."""
        pillars = self.pts_voxel_encoder(voxels, num_points, coors)
        return self.pts_middle_encoder(pillars, coors, batch_size)
