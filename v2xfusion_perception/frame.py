"""The typed hand-offs between the runtime pipelines and their callers (offline runner, ROS node).

A pipeline takes one synchronized camera image + LiDAR cloud with their `Calibration` and returns
`Detections` in the LiDAR frame (design.md §2 boxes) with per-stage `timings`. Both callers build
these from their inputs (files or ROS messages) and never reach inside a pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """Camera intrinsics and the LiDAR -> camera extrinsic of one sensor pair.

    intrinsics: (3, 3) float64 pinhole matrix of the image as given (before the network's resize);
    lidar2cam: (4, 4) float64 rigid transform LiDAR frame -> camera frame (x right, y down, z forward);
    image_size: (width, height) of the image as given, pixels.
    """

    intrinsics: np.ndarray
    lidar2cam: np.ndarray
    image_size: tuple[int, int]

    @property
    def lidar2img(self) -> np.ndarray:
        """(4, 4) LiDAR -> pixel projection (homogeneous)."""
        projection = np.eye(4)
        projection[:3, :3] = self.intrinsics
        return projection @ self.lidar2cam

    def key(self) -> bytes:
        """Bytes that change whenever the calibration does (caches of derived geometry use it)."""
        return (np.asarray(self.intrinsics, np.float64).tobytes() + np.asarray(self.lidar2cam, np.float64).tobytes()
                + np.asarray(self.image_size, np.int64).tobytes())


@dataclass(frozen=True)
class Detections:
    """3-D detections of one frame, in the LiDAR frame.

    boxes: (N, 7) float32 (x, y, z, dx, dy, dz, yaw), geometric centre (design.md §2);
    scores: (N,) float32 in [0, 1]; labels: (N,) int32 indices into class_names;
    timings: milliseconds per stage, in the order the stages ran (voxelize, camera, ..., nms).
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls, class_names: tuple[str, ...], timings: dict[str, float] | None = None) -> Detections:
        """No detections (an empty cloud, or nothing above the score threshold)."""
        return cls(np.zeros((0, 7), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32),
                   tuple(class_names), dict(timings or {}))


class Pipeline(Protocol):
    """What the runner and the node call: one synchronized frame in, detections out."""

    class_names: tuple[str, ...]

    def infer(self, image: np.ndarray, points: np.ndarray, calibration: Calibration) -> Detections:
        """image: (H, W, 3) uint8 RGB; points: (N, 4) float32 x, y, z, intensity in 0-1 (LiDAR frame)."""
        ...
