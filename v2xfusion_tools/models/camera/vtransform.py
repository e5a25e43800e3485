"""LSS view transforms: camera features -> depth (or height) distribution x context -> BEV features.

`LSSTransform` is CUDA-V2XFusion's (a 1x1 `depthnet` on the image features); `DepthLSSTransform` is
BEVFusion's, which also feeds a LiDAR depth image through `dtransform`. Module names
(`depthnet`, `dtransform`, `downsample`) are BEVFusion's so checkpoints load by name.

The image-only part (`camera_depth_and_feature`) has no data-dependent control flow: it is what the
camera.backbone ONNX of Pipeline A ends with (guide §4.1); the pooling runs outside it.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import Tensor, nn

from v2xfusion_tools.models.camera.bev_pool import (BevGrid, BevPoolV2Geometry, bev_pool_v1, bev_pool_v2,
                                                    bev_pool_v2_prepare)
from v2xfusion_tools.models.camera.frustum import (depth_bins, feature_pixels, frustum_points_depth,
                                                   frustum_points_height, height_bins)


def _bev_downsample(channels: int, factor: int) -> nn.Module:
    """BEVFusion's optional stride-2 BEV downsampling (three 3x3 conv + BN + ReLU, middle one strided)."""
    if factor == 1:
        return nn.Identity()
    layers: list[nn.Module] = []
    for stride in (1, factor, 1):
        layers += [nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False),
                   nn.BatchNorm2d(channels), nn.ReLU(True)]
    return nn.Sequential(*layers)


class LSSTransform(nn.Module):
    """Lift image features onto frustum points and splat them into the camera BEV grid.

    image_size / feature_size: (W, H) of the network input and of the feature map; x/y/zbound:
    (start, end, step) of the BEV grid; dbound: (start, end, count) of the bins, metric depths
    (`depth_mode: depth`) or heights (`depth_mode: height`, spaced with `height_bin_power`).
    """

    def __init__(self, in_channels: int, out_channels: int, image_size: Sequence[int],
                 feature_size: Sequence[int], xbound: Sequence[float], ybound: Sequence[float],
                 zbound: Sequence[float], dbound: Sequence[float],
                 depth_mode: Literal["depth", "height"] = "depth", height_bin_power: float = 1.0,
                 downsample: Literal[1, 2] = 1,
                 use_bevpool: Literal["bevpoolv1", "bevpoolv2"] = "bevpoolv1") -> None:
        super().__init__()
        self.in_channels = in_channels
        self.C = out_channels
        self.image_size = tuple(image_size)
        self.feature_size = tuple(feature_size)
        self.depth_mode = depth_mode
        self.use_bevpool = use_bevpool
        self.grid = BevGrid.from_bounds(xbound, ybound, zbound)
        bins = depth_bins(dbound) if depth_mode == "depth" else height_bins(dbound, height_bin_power)
        self.D = bins.numel()
        # derived from the config, so not part of the checkpoint
        self.register_buffer("bins", bins, persistent=False)
        self.register_buffer("pixels", feature_pixels(image_size, feature_size), persistent=False)
        self._build_depthnet()
        self.bev_downsample = downsample
        self.downsample = _bev_downsample(out_channels, downsample)

    def _build_depthnet(self) -> None:
        self.depthnet = nn.Conv2d(self.in_channels, self.D + self.C, 1)

    @property
    def bev_channels(self) -> int:
        """Channels of the BEV output: C per z cell."""
        return self.C * self.grid.shape[2]

    def camera_depth_and_feature(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, in_channels, fH, fW) -> depth (B, D, fH, fW) softmax over D, feat (B, fH, fW, C)."""
        x = self.depthnet(x)
        depth = x[:, :self.D].softmax(dim=1)
        feat = x[:, self.D:self.D + self.C].permute(0, 2, 3, 1)
        return depth, feat

    def geometry(self, camera2lidar: Tensor, intrinsics: Tensor, img_aug_matrix: Tensor,
                 lidar_aug_matrix: Tensor, ground_plane: Tensor | None = None) -> Tensor:
        """LiDAR-frame frustum points (B, D, fH, fW, 3); matrices (B, 4, 4), ground_plane (B, 4)."""
        if self.depth_mode == "height" and ground_plane is None:
            raise ValueError("ground_plane: depth_mode 'height' needs the ground plane (B, 4) of each frame")
        # float32 under AMP too (BEVFusion's force_fp32): float16 would put points centimetres off at 80 m
        with torch.autocast(camera2lidar.device.type, enabled=False):
            if self.depth_mode == "depth":
                return frustum_points_depth(self.pixels, self.bins, camera2lidar, intrinsics, img_aug_matrix,
                                            lidar_aug_matrix)
            return frustum_points_height(self.pixels, self.bins, camera2lidar, intrinsics, img_aug_matrix,
                                         lidar_aug_matrix, ground_plane)

    def prepare_bevpool_v2(self, geom: Tensor) -> BevPoolV2Geometry:
        """The ranks / intervals of `bev_pool_v2` for frustum points geom (B, D, fH, fW, 3)."""
        return bev_pool_v2_prepare(geom, self.grid)

    def pool(self, depth: Tensor, feat: Tensor, geom: Tensor) -> Tensor:
        """Splat and downsample: depth (B, D, fH, fW), feat (B, fH, fW, C), geom (B, D, fH, fW, 3)
        -> (B, bev_channels, nx / downsample, ny / downsample)."""
        # float32 under AMP too (BEVFusion's force_fp32): a BEV cell sums many frustum points
        with torch.autocast(depth.device.type, enabled=False):
            depth, feat, geom = depth.float(), feat.float(), geom.float()
            if self.use_bevpool == "bevpoolv2":
                bev = bev_pool_v2(depth, feat, self.prepare_bevpool_v2(geom))
            else:
                bev = bev_pool_v1(depth, feat, geom, self.grid)
        return self.downsample(bev)

    def forward(self, x: Tensor, geom: Tensor) -> Tensor:
        """x: (B, in_channels, fH, fW) image features; geom: (B, D, fH, fW, 3) -> camera BEV."""
        depth, feat = self.camera_depth_and_feature(x)
        return self.pool(depth, feat, geom)


class DepthLSSTransform(LSSTransform):
    """BEVFusion's variant: a sparse LiDAR depth image, encoded by `dtransform`, joins the features."""

    def _build_depthnet(self) -> None:
        stride = self.image_size[0] // self.feature_size[0]
        # BEVFusion's dtransform reduces by 4 then 2 (feature stride 8); keep the 4 and take the rest
        # in the second conv, so the same weights serve stride 16
        self.dtransform = nn.Sequential(
            nn.Conv2d(1, 8, 1), nn.BatchNorm2d(8), nn.ReLU(True),
            nn.Conv2d(8, 32, 5, stride=4, padding=2), nn.BatchNorm2d(32), nn.ReLU(True),
            nn.Conv2d(32, 64, 5, stride=stride // 4, padding=2), nn.BatchNorm2d(64), nn.ReLU(True),
        )
        channels = self.in_channels
        self.depthnet = nn.Sequential(
            nn.Conv2d(channels + 64, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(True),
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(True),
            nn.Conv2d(channels, self.D + self.C, 1),
        )

    def camera_depth_and_feature(self, x: Tensor, depth_image: Tensor | None = None
                                 ) -> tuple[Tensor, Tensor]:
        """x: (B, in_channels, fH, fW); depth_image: (B, 1, H, W) metres, 0 where no LiDAR point."""
        if depth_image is None:
            raise ValueError("depth_image: DepthLSSTransform needs the LiDAR depth image (B, 1, H, W)")
        x = torch.cat([self.dtransform(depth_image), x], dim=1)
        return super().camera_depth_and_feature(x)

    def forward(self, x: Tensor, geom: Tensor, depth_image: Tensor | None = None) -> Tensor:
        depth, feat = self.camera_depth_and_feature(x, depth_image)
        return self.pool(depth, feat, geom)


def render_lidar_depth(points: Sequence[Tensor], lidar2image: Tensor, img_aug_matrix: Tensor,
                       lidar_aug_matrix: Tensor, image_size: Sequence[int]) -> Tensor:
    """Sparse depth image of the LiDAR points in the network input image (DepthLSSTransform's input).

    points: per sample (N_i, >=3) float32 in the augmented LiDAR frame; lidar2image: (B, 4, 4)
    K @ lidar2camera; image_size: (W, H). Returns (B, 1, H, W) float32, camera depth in metres where a
    point lands (the last point written wins, as BEVFusion), 0 elsewhere.
    """
    width, height = image_size
    batch = len(points)
    depth = lidar2image.new_zeros(batch, 1, height, width)
    for b in range(batch):
        xyz = points[b][:, :3] - lidar_aug_matrix[b, :3, 3]
        xyz = xyz @ torch.inverse(lidar_aug_matrix[b, :3, :3]).T
        cam = xyz @ lidar2image[b, :3, :3].T + lidar2image[b, :3, 3]
        dist = cam[:, 2]
        uv = cam[:, :2] / cam[:, 2:3].clamp(min=1e-5)
        uvd = torch.cat([uv, torch.ones_like(dist).unsqueeze(1)], dim=1)
        uv = (uvd @ img_aug_matrix[b, :3, :3].T + img_aug_matrix[b, :3, 3])[:, :2]
        cols, rows = uv[:, 0].floor().long(), uv[:, 1].floor().long()
        on_image = (dist > 0) & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
        depth[b, 0, rows[on_image], cols[on_image]] = dist[on_image]
    return depth
