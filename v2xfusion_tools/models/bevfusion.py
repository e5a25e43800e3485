"""BEVFusion: camera and LiDAR encoders -> ConvFuser -> SECOND decoder -> CenterHead, one forward.

Module tree and names as BEVFusion's (`encoders.camera.backbone`, `encoders.camera.neck`,
`encoders.camera.vtransform`, `encoders.lidar.backbone`, `fuser`, `decoder.backbone`, `decoder.neck`,
`heads.object`), so published checkpoints load by name (see checkpoint.py for what differs).
Build it from a config with `builder.build_model`; stages.py cuts it into the export stages.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from v2xfusion_tools.models.camera.vtransform import DepthLSSTransform, render_lidar_depth
from v2xfusion_tools.models.heads.decode import Detections
from v2xfusion_tools.models.lidar.pillar_encoder import PointPillarsEncoder


@dataclass
class FusionBatch:
    """One batch of B frames, one camera each.

    img: (B, 3, H, W) float32 normalised network input; points: per frame (N_i, C) float32 in the
    augmented LiDAR frame (x, y, z, intensity, ...); camera_intrinsics (K in the top-left 3x3),
    lidar2camera, img_aug_matrix, lidar_aug_matrix: (B, 4, 4) float32 (frustum.py says how the two
    aug matrices act); ground_plane: (B, 4) (a, b, c, d) in the original LiDAR frame, needed by height
    bins (frustum.frustum_points_height); gt_boxes: per frame (M_i, 7) (x, y, z, dx, dy, dz, yaw) or
    (M_i, 9) with (vx, vy); gt_labels: per frame (M_i,) int64 index into class_names.
    """

    img: Tensor
    points: Sequence[Tensor]
    camera_intrinsics: Tensor
    lidar2camera: Tensor
    img_aug_matrix: Tensor
    lidar_aug_matrix: Tensor
    ground_plane: Tensor | None = None
    gt_boxes: Sequence[Tensor] | None = None
    gt_labels: Sequence[Tensor] | None = None

    @property
    def batch_size(self) -> int:
        return len(self.points) if self.points is not None else self.img.shape[0]


@dataclass(frozen=True)
class FusionOutput:
    """Evaluation output: raw head outputs per task ({heatmap (logits), reg, height, dim, rot[, vel]},
    each (B, C, nx, ny)) and the decoded detections per frame."""

    preds: list[dict[str, Tensor]]
    detections: list[Detections]


class BEVFusion(nn.Module):
    """The fusion detector. encoders: {"camera": {backbone, neck, vtransform}, "lidar": {voxelize,
    backbone}} (either may be absent); fuser: None with a single encoder; decoder: {backbone, neck};
    heads: {"object": CenterHead}. camera_level: which neck output feeds the view transform."""

    def __init__(self, encoders: nn.ModuleDict, fuser: nn.Module | None, decoder: nn.ModuleDict,
                 heads: nn.ModuleDict, camera_level: int = 0) -> None:
        super().__init__()
        self.encoders = encoders
        self.fuser = fuser
        self.decoder = decoder
        self.heads = heads
        self.camera_level = camera_level

    # camera branch ---------------------------------------------------------------------------------
    def camera_features(self, img: Tensor) -> Tensor:
        """img: (B, 3, H, W) -> neck feature map (B, C, fH, fW) of level camera_level."""
        camera = self.encoders["camera"]
        return camera["neck"](camera["backbone"](img))[self.camera_level]

    def camera_geometry(self, batch: FusionBatch) -> Tensor:
        """LiDAR-frame frustum points (B, D, fH, fW, 3) of the batch's calibration."""
        camera2lidar = torch.inverse(batch.lidar2camera)
        return self.encoders["camera"]["vtransform"].geometry(
            camera2lidar, batch.camera_intrinsics, batch.img_aug_matrix, batch.lidar_aug_matrix,
            batch.ground_plane)

    def camera_bev(self, batch: FusionBatch) -> Tensor:
        """Camera BEV features (B, C_cam, nx, ny)."""
        vtransform = self.encoders["camera"]["vtransform"]
        x = self.camera_features(batch.img)
        geom = self.camera_geometry(batch)
        if isinstance(vtransform, DepthLSSTransform):
            lidar2image = batch.camera_intrinsics @ batch.lidar2camera
            depth_image = render_lidar_depth(batch.points, lidar2image, batch.img_aug_matrix,
                                             batch.lidar_aug_matrix, vtransform.image_size)
            return vtransform(x, geom, depth_image)
        return vtransform(x, geom)

    # LiDAR branch ----------------------------------------------------------------------------------
    def lidar_bev(self, points: Sequence[Tensor]) -> Tensor:
        """LiDAR BEV features (B, C_lidar, nx, ny) of the clouds (one per frame)."""
        lidar = self.encoders["lidar"]
        if isinstance(lidar["backbone"], PointPillarsEncoder):
            voxels, num_points, coors = lidar["voxelize"](points)
            return lidar["backbone"](voxels, num_points, coors, len(points))
        features, coors = lidar["voxelize"](points)
        return lidar["backbone"](features, coors, len(points))

    # shared trunk ----------------------------------------------------------------------------------
    def fuse_and_decode(self, bev_maps: Sequence[Tensor]) -> Tensor:
        """BEV maps (camera first) -> decoder output (B, C, nx, ny): the fuser stage of Pipeline A."""
        x = self.fuser(list(bev_maps)) if self.fuser is not None else bev_maps[0]
        return self.decoder["neck"](self.decoder["backbone"](x))

    def bev_features(self, batch: FusionBatch) -> Tensor:
        maps = []
        if "camera" in self.encoders:
            maps.append(self.camera_bev(batch))
        if "lidar" in self.encoders:
            maps.append(self.lidar_bev(batch.points))
        return self.fuse_and_decode(maps)

    def forward(self, batch: FusionBatch) -> dict[str, Tensor] | FusionOutput:
        """Training mode: the losses ({"heatmap/task0": ..., "bbox/task0": ..., "loss": total}).
        Evaluation mode: FusionOutput (raw head outputs and decoded detections)."""
        head = self.heads["object"]
        preds = head(self.bev_features(batch))
        if self.training:
            if batch.gt_boxes is None or batch.gt_labels is None:
                raise ValueError("batch.gt_boxes / batch.gt_labels: training needs ground truth")
            losses = head.loss(preds, batch.gt_boxes, batch.gt_labels)
            losses["loss"] = torch.stack(list(losses.values())).sum()
            return losses
        return FusionOutput(preds, head.predict(preds))
