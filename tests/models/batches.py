"""The model configs of configs/ (as the model tests use them) shrunk to a tiny geometry, and random batches with a camera."""
from __future__ import annotations

import math

import torch

from v2xfusion_perception.config import CONFIG_ROOT, load_config
from v2xfusion_tools.models import FusionBatch

MODEL_CONFIGS = {"a": "pointpillars", "b": "second_bevpoolv2"}   # configs/<preset>/<name>.yaml
PIPELINES = ("a", "b")
PRESETS = ("kitti", "v2x")


def tiny_geometry(geometry: dict) -> dict:
    """The preset's geometry on a small image and a 32 x 32 BEV grid, keeping its voxel sizes, bins,
    out_size_factor and depth mode (what the models derive their layers from)."""
    geo = dict(geometry)
    stride = geo["camera_downsample"]
    geo["image_size"] = [8 * stride, 4 * stride]
    geo["feature_size"] = [8, 4]
    cell = geo["voxel_size"][0] * geo["out_size_factor"]
    extent = 32 * cell
    geo["pc_range"] = [0.0, -extent / 2, -5.0, extent, extent / 2, 3.0]
    geo["post_center_range"] = list(geo["pc_range"])
    geo["bev_size"] = [32, 32]
    geo["xbound"] = [0.0, extent, cell]
    geo["ybound"] = [-extent / 2, extent / 2, cell]
    geo["max_voxels"] = 2000
    return geo


def load_fixture(pipeline: str, preset: str, tiny: bool = True) -> dict:
    config = load_config(CONFIG_ROOT / preset / f"{MODEL_CONFIGS[pipeline]}.yaml")
    if tiny:
        config["geometry"] = tiny_geometry(config["geometry"])
    return config


def camera_calibration(batch: int, image_size, height: float = 1.6, pitch_deg: float = 8.0):
    """A camera `height` metres above the LiDAR origin looking along +x, pitched down.
    Returns intrinsics (B, 4, 4), lidar2camera (B, 4, 4)."""
    width, img_h = image_size
    focal = width / 2
    intrinsics = torch.eye(4)
    intrinsics[0, 0] = intrinsics[1, 1] = focal
    intrinsics[0, 2], intrinsics[1, 2] = width / 2, img_h / 2
    # LiDAR axes (x fwd, y left, z up) -> camera axes (x right, y down, z fwd), then pitch about x
    base = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    p = math.radians(pitch_deg)
    pitch = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(p), -math.sin(p)], [0.0, math.sin(p), math.cos(p)]])
    rot = pitch @ base
    lidar2camera = torch.eye(4)
    lidar2camera[:3, :3] = rot
    lidar2camera[:3, 3] = -rot @ torch.tensor([0.0, 0.0, height])
    return intrinsics.expand(batch, 4, 4).clone(), lidar2camera.expand(batch, 4, 4).clone()


def random_batch(config: dict, batch: int = 2, seed: int = 0, points_per_frame: int = 800) -> FusionBatch:
    """Random image; a cloud of ground points 1.6 m below the LiDAR plus points on two to three
    boxes per frame (surfaces, as a LiDAR sees them, keep the sparse encoders' site counts small)."""
    gen = torch.Generator().manual_seed(seed)
    geo = config["geometry"]
    width, height = geo["image_size"]
    pc = torch.tensor(geo["pc_range"])
    intrinsics, lidar2camera = camera_calibration(batch, geo["image_size"])
    points, boxes, labels = [], [], []
    for _ in range(batch):
        count = 2 + int(torch.randint(0, 2, (1,), generator=gen))
        centres = pc[:3] + (pc[3:] - pc[:3]) * torch.tensor([0.2, 0.2, 0.0]) + \
            (pc[3:] - pc[:3]) * torch.tensor([0.6, 0.6, 0.0]) * torch.rand(count, 3, generator=gen)
        centres[:, 2] = -0.8
        sizes = torch.tensor([[4.0, 1.8, 1.5], [0.8, 0.7, 1.7], [1.8, 0.6, 1.6]])
        label = torch.randint(0, 3, (count,), generator=gen)
        yaw = (torch.rand(count, generator=gen) * 2 - 1) * math.pi
        box = torch.cat([centres, sizes[label], yaw.unsqueeze(1)], dim=1)
        cloud = pc[:3] + (pc[3:] - pc[:3]) * torch.rand(points_per_frame, 3, generator=gen)
        cloud[:, 2] = -1.6 + 0.05 * torch.randn(points_per_frame, generator=gen)
        on_boxes = box[:, :3].repeat_interleave(60, 0) + 0.3 * torch.randn(60 * count, 3, generator=gen)
        xyz = torch.cat([cloud, on_boxes])
        points.append(torch.cat([xyz, torch.rand(xyz.shape[0], 1, generator=gen)], dim=1))
        boxes.append(box)
        labels.append(label)
    return FusionBatch(
        img=torch.randn(batch, 3, height, width, generator=gen),
        points=points,
        camera_intrinsics=intrinsics,
        lidar2camera=lidar2camera,
        img_aug_matrix=torch.eye(4).expand(batch, 4, 4).clone(),
        lidar_aug_matrix=torch.eye(4).expand(batch, 4, 4).clone(),
        ground_plane=torch.tensor([0.0, 0.0, 1.0, 0.0]).expand(batch, 4).clone(),
        gt_boxes=boxes,
        gt_labels=labels,
    )
