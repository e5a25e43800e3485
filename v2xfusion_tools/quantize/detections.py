"""Decode raw CenterHead outputs of an artifact folder's models into boxes, from its manifest alone.

Quantization compares FP32 and INT8 models by the boxes they give (guide §5.2.6: FP32 decoded boxes
as pseudo ground truth), so decoding needs no checkpoint: tasks, output names, post-processing and
the BEV geometry all come from the manifest. The maths is the models' PyTorch reference
(v2xfusion_tools.models.heads.decode), the one CenterHead.predict uses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from v2xfusion_tools.models.heads.decode import PostProcess, decode_topk, select_detections
from v2xfusion_tools.models.heads.targets import BevGeometry


@dataclass(frozen=True)
class FrameBoxes:
    """One frame's detections: boxes (K, 7 or 9) float32, scores (K,) float32, labels (K,) int64
    indices into the manifest's class_names, highest score first."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


class HeadDecoder:
    """Callable: {output name: (1, C, nx, ny) array} -> FrameBoxes, per the manifest."""

    def __init__(self, manifest: Mapping[str, Any], score_threshold: float | None = None) -> None:
        geo, post, head = manifest["geometry"], manifest["postprocess"], manifest["head"]
        self.geometry = BevGeometry(tuple(geo["pc_range"]), (geo["voxel_size"][0], geo["voxel_size"][1]),
                                    int(geo["out_size_factor"]), tuple(geo["bev_size"]))
        threshold = post["score_threshold"] if score_threshold is None else score_threshold
        self.settings = PostProcess(float(threshold), int(post["pre_max_size"]), int(post["post_max_size"]),
                                    post["nms_type"], float(post["nms_iou_threshold"]),
                                    tuple(post["circle_radius"]), tuple(geo["post_center_range"]))
        names = list(manifest["class_names"])
        self.task_class_ids = [[names.index(name) for name in task] for task in head["tasks"]]
        self.norm_bbox = bool(head["norm_bbox"])
        order = [name.rstrip("0123456789") for name in head["outputs"]]
        per_task = len(order) // len(self.task_class_ids)
        self.task_outputs = [head["outputs"][t * per_task:(t + 1) * per_task] for t in range(len(self.task_class_ids))]
        self.kinds = order[:per_task]

    def __call__(self, outputs: Mapping[str, np.ndarray]) -> FrameBoxes:
        boxes, scores, labels = [], [], []
        for names, class_ids in zip(self.task_outputs, self.task_class_ids):
            maps = {kind: torch.from_numpy(np.asarray(outputs[name], dtype=np.float32))
                    for kind, name in zip(self.kinds, names)}
            task_boxes, task_scores, task_labels = decode_topk(
                maps["heatmap"].sigmoid(), maps["reg"], maps["height"], maps["dim"], maps["rot"], maps.get("vel"),
                self.geometry, self.settings.pre_max_size, self.norm_bbox)
            boxes.append(task_boxes[0])
            scores.append(task_scores[0])
            labels.append(torch.tensor(class_ids)[task_labels[0]])
        detections = select_detections(torch.cat(boxes), torch.cat(scores), torch.cat(labels), self.settings)
        return FrameBoxes(detections.boxes.numpy(), detections.scores.numpy(), detections.labels.numpy())
