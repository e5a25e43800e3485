"""CenterHead outputs -> boxes, scores, labels: per-task top-k decoding and per-class NMS on the kernels.

What the PyTorch head's `predict` does (v2xfusion_tools/models/heads), with the manifest's settings:
per task, the best `pre_max_size` cells of all its classes above the score threshold are decoded
(x, y from the cell and `reg`, z from `height`, sizes exp(`dim`), yaw from (sin, cos)) and kept
inside `post_center_range`; task-local class indices map to the manifest's class list; then rotated
(or circle) NMS per class, at most `post_max_size` boxes per class and per frame, best first.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from v2xfusion_perception.manifest import Manifest, ManifestError

HEAD_FIELDS = ("heatmap", "reg", "height", "dim", "rot", "vel")


@dataclass(frozen=True)
class TaskOutputs:
    """The head's output names of one task and the global class index of each of its classes."""

    names: Mapping[str, str]
    class_ids: np.ndarray


class HeadDecoder:
    """Decoding + NMS settings from the manifest; call with the head's outputs of one frame.

    score_threshold: replaces the manifest's postprocess.score_threshold when given.
    """

    def __init__(self, manifest: Manifest, kernels: Any, score_threshold: float | None = None) -> None:
        head, post, geometry = manifest.head, manifest.postprocess, manifest.geometry
        if not head.get("norm_bbox", True):
            raise ManifestError(f"{manifest.path}: head.norm_bbox is false, but the runtime decodes log sizes "
                                f"(CenterHead norm_bbox: true)")
        if head.get("heatmap", "logits") not in ("logits", "probabilities"):
            raise ManifestError(f"{manifest.path}: head.heatmap must be logits or probabilities, got {head['heatmap']!r}")
        self.class_names = manifest.class_names
        outputs = list(manifest.value("head", "outputs"))
        tasks = manifest.value("head", "tasks")
        self.tasks = []
        for t, task in enumerate(tasks):
            suffix = "" if len(tasks) == 1 else str(t)
            names = {name: f"{name}{suffix}" for name in HEAD_FIELDS if f"{name}{suffix}" in outputs}
            missing = [name for name in HEAD_FIELDS[:5] if name not in names]
            if missing:
                raise ManifestError(f"{manifest.path}: head.outputs lacks {', '.join(missing)} of task {t}")
            unknown = [name for name in task if name not in self.class_names]
            if unknown:
                raise ManifestError(f"{manifest.path}: head.tasks[{t}] names {unknown}, not in class_names")
            self.tasks.append(TaskOutputs(names, np.array([self.class_names.index(n) for n in task], np.int32)))
        self.apply_sigmoid = head.get("heatmap", "logits") == "logits"
        self.pc_range = [float(v) for v in geometry["pc_range"]]
        self.voxel_size = [float(v) for v in geometry["voxel_size"]]
        self.out_size_factor = float(geometry["out_size_factor"])
        self.post_center_range = [float(v) for v in geometry["post_center_range"]]
        self.score_threshold = float(post["score_threshold"] if score_threshold is None else score_threshold)
        self.pre_max_size = int(post["pre_max_size"])
        self.post_max_size = int(post["post_max_size"])
        self.nms_type = post["nms_type"]
        if self.nms_type not in ("rotate", "circle"):
            raise ManifestError(f"{manifest.path}: postprocess.nms_type must be rotate or circle, got {self.nms_type!r}")
        self.nms_iou_threshold = float(post["nms_iou_threshold"])
        self.circle_radius = [float(v) for v in post.get("circle_radius", [])]
        if self.nms_type == "circle" and len(self.circle_radius) != len(self.class_names):
            raise ManifestError(f"{manifest.path}: postprocess.circle_radius needs one radius per class "
                                f"({len(self.class_names)})")
        self._kernels = kernels

    @property
    def output_names(self) -> list[str]:
        """Every head output this decoder reads."""
        return [name for task in self.tasks for name in task.names.values()]

    def decode(self, outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k candidates of every task. outputs: name -> (1, C, nx, ny) float32 (or (C, nx, ny)).
        Returns boxes (K, 7) float32, scores (K,) float32, labels (K,) int32 global class indices."""
        boxes, scores, labels = [], [], []
        for task in self.tasks:
            maps = {field: _frame(outputs[name]) for field, name in task.names.items()}
            found_boxes, found_scores, found_labels = self._kernels.centerhead_decode(
                maps["heatmap"], maps["reg"], maps["height"], maps["dim"], maps["rot"], None,
                pc_range=self.pc_range, voxel_size=self.voxel_size, out_size_factor=self.out_size_factor,
                post_center_range=self.post_center_range, score_threshold=self.score_threshold,
                max_num=self.pre_max_size, pool_size=1, apply_sigmoid=self.apply_sigmoid)
            boxes.append(found_boxes)
            scores.append(found_scores)
            labels.append(task.class_ids[found_labels])
        return (np.concatenate(boxes).astype(np.float32, copy=False), np.concatenate(scores),
                np.concatenate(labels).astype(np.int32, copy=False))

    def suppress(self, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Indices kept by per-class NMS, best first, at most post_max_size. Returns (n,) int64."""
        if not len(scores):
            return np.zeros(0, np.int64)
        boxes = np.ascontiguousarray(boxes)
        if self.nms_type == "rotate":
            keep = self._kernels.rotated_nms(boxes, scores, labels, self.nms_iou_threshold, self.pre_max_size,
                                             self.post_max_size)
        else:
            keep = self._kernels.circle_nms(boxes, scores, labels, self.circle_radius, self.pre_max_size,
                                            self.post_max_size)
        return np.asarray(keep, dtype=np.int64)[:self.post_max_size]


def _frame(array: np.ndarray) -> np.ndarray:
    """(1, C, nx, ny) or (C, nx, ny) -> (C, nx, ny) float32 C-contiguous."""
    array = array[0] if array.ndim == 4 else array
    return np.ascontiguousarray(array, dtype=np.float32)
