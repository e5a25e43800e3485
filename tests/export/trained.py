"""Tiny detectors for the export and quantization tests: the fixture configs of tests/models on random
scenes, BatchNorm statistics taken from those scenes, and the head trained for a few dozen steps on
frozen BEV features, so that decoded boxes sit on the objects instead of on noise.

Training the whole model to that point takes minutes on two cores; the head alone on precomputed
features takes seconds, and the boxes it gives on held-out scenes are real detections of the LiDAR
returns (tests compare FP32 / INT8 / OpenVINO / PyTorch boxes, which needs boxes that mean something).
Built once per process (both test folders share them).
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from models.batches import camera_calibration, load_fixture, random_batch
from v2xfusion_tools.export.calibration import CameraCalibration
from v2xfusion_tools.models import BEVFusion, FusionBatch, build_model

FRAMES = 20        # random scenes: 0-7 calibration / training, 8-19 held out
HEAD_STEPS = 60


def recalibrate_batch_norm(model: BEVFusion, batches: list[FusionBatch]) -> None:
    """Running statistics = the batches' statistics (cumulative average), weights untouched."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        for batch in batches:
            model.bev_features(batch)
    model.eval()


def train_head(model: BEVFusion, batches: list[FusionBatch], steps: int, lr: float = 3e-3) -> None:
    """Adam on the CenterHead only, over the batches' frozen BEV features."""
    with torch.no_grad():
        features = [model.bev_features(batch) for batch in batches]
    head = model.heads["object"]
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    head.train()
    for step in range(steps):
        i = step % len(batches)
        losses = head.loss(head(features[i]), batches[i].gt_boxes, batches[i].gt_labels)
        loss = torch.stack(list(losses.values())).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@functools.lru_cache(maxsize=None)
def detector(pipeline: str, preset: str = "kitti") -> tuple[dict, BEVFusion, tuple[FusionBatch, ...]]:
    """(config, eval-mode model, FRAMES one-frame batches) of a tiny trained detector."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = load_fixture(pipeline, preset)
        torch.manual_seed(0)
        model = build_model(config)
        batches = tuple(random_batch(config, batch=1, seed=seed) for seed in range(FRAMES))
        recalibrate_batch_norm(model, list(batches[:6]))
        train_head(model, list(batches[:8]), HEAD_STEPS)
    finally:
        torch.set_num_threads(threads)
    return config, model, batches


def batch_camera_calibration(config: dict) -> CameraCalibration:
    """The camera of models.batches.random_batch (ground plane z = 0 through the LiDAR, as the batches')."""
    intrinsics, lidar2camera = camera_calibration(1, config["geometry"]["image_size"])
    return CameraCalibration(intrinsics[0, :3, :3].double().numpy(), lidar2camera[0].double().numpy(),
                             tuple(config["geometry"]["image_size"]), np.array([0.0, 0.0, 1.0, 0.0]))
