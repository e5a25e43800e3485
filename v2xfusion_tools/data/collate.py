"""Batch collation: Samples -> one `FrameBatch` (the models' FusionBatch plus each frame's FrameMeta)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from v2xfusion_tools.data.dataset import FrameFailure, FrameMeta, Sample
from v2xfusion_tools.models import FusionBatch


@dataclass
class FrameBatch:
    """inputs: what the model takes; metas: one per frame, same order."""

    inputs: FusionBatch
    metas: list[FrameMeta]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> FrameBatch:
        """The batch with every tensor on `device`."""
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device, non_blocking=non_blocking)

        b = self.inputs
        inputs = FusionBatch(
            img=move(b.img), points=[move(p) for p in b.points], camera_intrinsics=move(b.camera_intrinsics),
            lidar2camera=move(b.lidar2camera), img_aug_matrix=move(b.img_aug_matrix),
            lidar_aug_matrix=move(b.lidar_aug_matrix),
            ground_plane=None if b.ground_plane is None else move(b.ground_plane),
            gt_boxes=None if b.gt_boxes is None else [move(t) for t in b.gt_boxes],
            gt_labels=None if b.gt_labels is None else [move(t) for t in b.gt_labels])
        return FrameBatch(inputs, self.metas)

    def pin_memory(self) -> FrameBatch:
        """Called by the DataLoader (pin_memory=True) for faster host -> GPU copies."""
        b = self.inputs
        self.inputs = FusionBatch(
            img=b.img.pin_memory(), points=[p.pin_memory() for p in b.points],
            camera_intrinsics=b.camera_intrinsics.pin_memory(), lidar2camera=b.lidar2camera.pin_memory(),
            img_aug_matrix=b.img_aug_matrix.pin_memory(), lidar_aug_matrix=b.lidar_aug_matrix.pin_memory(),
            ground_plane=b.ground_plane.pin_memory(), gt_boxes=[t.pin_memory() for t in b.gt_boxes],
            gt_labels=[t.pin_memory() for t in b.gt_labels])
        return self


@dataclass(frozen=True)
class BatchFailure:
    """A batch holding a frame that could not be read; the loader raises its message."""

    message: str


def collate(samples: Sequence[Sample | FrameFailure]) -> FrameBatch | BatchFailure:
    """Stack B samples: img (B, 3, H, W), matrices (B, 4, 4), ground_plane (B, 4); points, gt_boxes
    and gt_labels stay per-frame lists (frames differ in count)."""
    for sample in samples:
        if isinstance(sample, FrameFailure):
            return BatchFailure(sample.message)

    def stack(name: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([getattr(s, name) for s in samples]))

    inputs = FusionBatch(
        img=stack("img"), points=[torch.from_numpy(s.points) for s in samples],
        camera_intrinsics=stack("camera_intrinsics"), lidar2camera=stack("lidar2camera"),
        img_aug_matrix=stack("img_aug_matrix"), lidar_aug_matrix=stack("lidar_aug_matrix"),
        ground_plane=stack("ground_plane"), gt_boxes=[torch.from_numpy(s.gt_boxes) for s in samples],
        gt_labels=[torch.from_numpy(s.gt_labels) for s in samples])
    return FrameBatch(inputs, [s.meta for s in samples])
