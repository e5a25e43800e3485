"""The export stages of a BEVFusion as separate modules sharing its parameters (guide §4.1, §5.2.4).

Pipeline A ships four ONNX files: `camera.backbone` (image -> camera_depth, camera_feature),
`lidar_pfe` (padded pillars -> pillar features), `fuser` (camera BEV, LiDAR BEV -> middle) and
`head` (middle -> heatmap, reg, height, dim, rot[, vel]). Their forwards have no data-dependent
Python control flow, so `torch.jit.trace` / `torch.onnx.export` record them for any input of the
traced shapes (V may vary for the PFE). BEV pooling, voxelization, the pillar scatter and decoding
stay outside, in kernels. `UnifiedStage` chains Pipeline B's model for one batch from precomputed
BEVPool-v2 geometry; its sparse convs need the export's custom ops to trace.

The stage modules are not registered under the BEVFusion, so its state_dict is unchanged; each takes
the model's train / eval mode when made (exporters restore a module's mode after tracing it, and a
stage left in training mode would put the shared BatchNorms back into training).
"""
from __future__ import annotations

from torch import Tensor, nn

from v2xfusion_tools.models.bevfusion import BEVFusion
from v2xfusion_tools.models.camera.bev_pool import BevPoolV2Geometry, bev_pool_v2
from v2xfusion_tools.models.camera.vtransform import DepthLSSTransform
from v2xfusion_tools.models.lidar.pillar_encoder import PointPillarsEncoder


class CameraBackboneStage(nn.Module):
    """ResNet -> GeneralizedLSSFPN -> depthnet: img (B, 3, H, W) -> camera_depth (B, D, fH, fW)
    (softmax over D), camera_feature (B, fH, fW, C) (channels last, as BEVPool-v2 reads it)."""

    def __init__(self, model: BEVFusion) -> None:
        super().__init__()
        camera = model.encoders["camera"]
        if isinstance(camera["vtransform"], DepthLSSTransform):
            raise ValueError("camera.backbone stage: DepthLSSTransform also needs the LiDAR depth image; "
                             "Pipeline A's camera stage is image-only (use LSSTransform)")
        self.backbone, self.neck, self.vtransform = camera["backbone"], camera["neck"], camera["vtransform"]
        self.level = model.camera_level
        self.train(model.training)

    def forward(self, img: Tensor) -> tuple[Tensor, Tensor]:
        features = self.neck(self.backbone(img))[self.level]
        return self.vtransform.camera_depth_and_feature(features)


class LidarPfeStage(nn.Module):
    """PillarFeatureNet: voxels (V, P, C), num_points (V,), coors (V, 4) (batch, x, y, z)
    -> pillar features (V, C_out)."""

    def __init__(self, model: BEVFusion) -> None:
        super().__init__()
        backbone = model.encoders["lidar"]["backbone"]
        if not isinstance(backbone, PointPillarsEncoder):
            raise ValueError("lidar_pfe stage: the model's LiDAR encoder is not PointPillars (Pipeline A)")
        self.pfe = backbone.pts_voxel_encoder
        self.train(model.training)

    def forward(self, voxels: Tensor, num_points: Tensor, coors: Tensor) -> Tensor:
        return self.pfe(voxels, num_points, coors)


class FuserStage(nn.Module):
    """ConvFuser + decoder backbone + neck: camera_bev (B, C_cam, nx, ny), lidar_bev (B, C_lidar, nx, ny)
    -> middle (B, C_mid, nx, ny)."""

    def __init__(self, model: BEVFusion) -> None:
        super().__init__()
        self.fuser, self.decoder = model.fuser, model.decoder
        self.train(model.training)

    def forward(self, camera_bev: Tensor, lidar_bev: Tensor) -> Tensor:
        x = self.fuser([camera_bev, lidar_bev])
        return self.decoder["neck"](self.decoder["backbone"](x))


class HeadStage(nn.Module):
    """CenterHead without decoding: middle -> the tuple named by `output_names`."""

    def __init__(self, model: BEVFusion) -> None:
        super().__init__()
        self.head = model.heads["object"]
        self.output_names = self.head.output_names
        self.train(model.training)

    def forward(self, middle: Tensor) -> tuple[Tensor, ...]:
        return self.head.forward_flat(middle)


class UnifiedStage(nn.Module):
    """Pipeline B in one call: img (B, 3, H, W), BEVPool-v2 geometry, voxel_features (V, C),
    coors (V, 4) (batch, z, y, x) -> the head's flat outputs."""

    def __init__(self, model: BEVFusion) -> None:
        super().__init__()
        self.camera = CameraBackboneStage(model)
        self.vtransform = model.encoders["camera"]["vtransform"]
        self.sparse_encoder = model.encoders["lidar"]["backbone"]
        self.fuser = FuserStage(model)
        self.head = HeadStage(model)
        self.train(model.training)

    def forward(self, img: Tensor, geometry: BevPoolV2Geometry, voxel_features: Tensor, coors: Tensor
                ) -> tuple[Tensor, ...]:
        depth, feature = self.camera(img)
        camera_bev = self.vtransform.downsample(bev_pool_v2(depth, feature, geometry))
        lidar_bev = self.sparse_encoder(voxel_features, coors, img.shape[0])
        return self.head(self.fuser(camera_bev, lidar_bev))


def export_stages(model: BEVFusion) -> dict[str, nn.Module]:
    """Pipeline A's four stages by ONNX file stem (guide §4.2.3)."""
    return {"camera.backbone": CameraBackboneStage(model), "lidar_pfe": LidarPfeStage(model),
            "fuser": FuserStage(model), "head": HeadStage(model)}
