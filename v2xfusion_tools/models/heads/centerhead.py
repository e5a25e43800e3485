"""CenterHead (CenterPoint): shared conv + per-task SeparateHeads, its loss and its box decoding.

Names as mmdet3d / BEVFusion (`shared_conv.conv`, `task_heads.{t}.heatmap.1.weight`, ...). The forward
is the head ONNX of Pipeline A (guide §4.1): no decoding inside. Targets, losses and decoding use
the head's X-major BEV map (heads/targets.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from v2xfusion_tools.models.conv_module import ConvModule
from v2xfusion_tools.models.heads.decode import Detections, PostProcess, decode_topk, select_detections
from v2xfusion_tools.models.heads.losses import gaussian_focal_loss_sum, weighted_l1_sum
from v2xfusion_tools.models.heads.targets import BevGeometry, center_targets, task_objects

# regression heads the targets know, with their channel counts, in the target code's order
REGRESSION_HEADS = {"reg": 2, "height": 1, "dim": 3, "rot": 2, "vel": 2}
REQUIRED_HEADS = ("reg", "height", "dim", "rot")


@dataclass(frozen=True)
class TaskSpec:
    """One task of the head: the classes sharing one heatmap."""

    num_class: int
    class_names: Sequence[str]


class SeparateHead(nn.Module):
    """One conv branch per output: (num_conv - 1) x [conv, BN, ReLU] then a conv with bias."""

    def __init__(self, in_channels: int, heads: Mapping[str, tuple[int, int]], head_conv: int,
                 final_kernel: int, init_bias: float) -> None:
        super().__init__()
        self.heads = dict(heads)
        for name, (channels, num_conv) in self.heads.items():
            layers: list[nn.Module] = []
            c_in = in_channels
            for _ in range(num_conv - 1):
                layers.append(ConvModule(c_in, head_conv, final_kernel, padding=final_kernel // 2))
                c_in = head_conv
            layers.append(nn.Conv2d(c_in, channels, final_kernel, padding=final_kernel // 2, bias=True))
            branch = nn.Sequential(*layers)
            for module in branch.modules():
                if isinstance(module, nn.Conv2d):  # mmcv's Kaiming init of SeparateHead
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
            if name == "heatmap":  # start at sigmoid(init_bias) ~ 0.1 everywhere (CenterNet)
                nn.init.constant_(branch[-1].bias, init_bias)
            self.add_module(name, branch)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """x: (B, C, nx, ny) -> {name: (B, channels, nx, ny)}."""
        return {name: getattr(self, name)(x) for name in self.heads}


class CenterHead(nn.Module):
    """Class heatmaps and box regressions on the BEV map, one SeparateHead per task.

    tasks: the class groups (each class of class_names in exactly one task); common_heads:
    {name: (channels, num_conv)} over reg (2), height (1), dim (3), rot (2) and optional vel (2).
    geometry / postprocess / class_names come from the preset; the rest is the model config.
    """

    def __init__(self, in_channels: int, tasks: Sequence[TaskSpec], class_names: Sequence[str],
                 geometry: BevGeometry, postprocess: PostProcess,
                 common_heads: Mapping[str, Sequence[int]] | None = None, share_conv_channel: int = 64,
                 num_heatmap_convs: int = 2, head_conv: int = 64, final_kernel: int = 3,
                 init_bias: float = -2.19, norm_bbox: bool = True,
                 code_weights: Sequence[float] | None = None, loss_heatmap_weight: float = 1.0,
                 loss_bbox_weight: float = 0.25, gaussian_overlap: float = 0.1,
                 min_radius: int = 2, max_objs: int = 500, focal_alpha: float = 2.0,
                 focal_gamma: float = 4.0) -> None:
        super().__init__()
        common_heads = dict(common_heads or {"reg": (2, 2), "height": (1, 2), "dim": (3, 2), "rot": (2, 2)})
        self._check_heads(common_heads)
        self.class_names = list(class_names)
        self.task_class_ids = self._task_class_ids(tasks, self.class_names)
        self.geometry = geometry
        self.postprocess = postprocess
        self.with_velocity = "vel" in common_heads
        self.head_order = [name for name in REGRESSION_HEADS if name in common_heads]
        code_size = sum(REGRESSION_HEADS[name] for name in self.head_order)
        if code_weights is None:
            code_weights = [1.0] * code_size
        if len(code_weights) != code_size:
            raise ValueError(f"code_weights: needs {code_size} weights ({', '.join(self.head_order)}), "
                             f"got {len(code_weights)}")
        self.register_buffer("code_weights", torch.tensor(list(code_weights), dtype=torch.float32),
                             persistent=False)
        self.norm_bbox = norm_bbox
        self.loss_heatmap_weight, self.loss_bbox_weight = loss_heatmap_weight, loss_bbox_weight
        self.gaussian_overlap, self.min_radius, self.max_objs = gaussian_overlap, min_radius, max_objs
        self.focal_alpha, self.focal_gamma = focal_alpha, focal_gamma
        self.shared_conv = ConvModule(in_channels, share_conv_channel, 3, padding=1)
        self.task_heads = nn.ModuleList()
        for class_ids in self.task_class_ids:
            heads = {name: (int(spec[0]), int(spec[1])) for name, spec in common_heads.items()}
            heads["heatmap"] = (len(class_ids), num_heatmap_convs)
            self.task_heads.append(
                SeparateHead(share_conv_channel, heads, head_conv, final_kernel, init_bias))

    @staticmethod
    def _check_heads(common_heads: Mapping[str, Sequence[int]]) -> None:
        for name, spec in common_heads.items():
            if name not in REGRESSION_HEADS:
                raise ValueError(f"common_heads: unknown head {name!r}; known: {', '.join(REGRESSION_HEADS)}")
            if len(spec) != 2 or int(spec[0]) != REGRESSION_HEADS[name] or int(spec[1]) < 1:
                raise ValueError(f"common_heads.{name}: expected [{REGRESSION_HEADS[name]}, num_conv >= 1], "
                                 f"got {list(spec)}")
        missing = [name for name in REQUIRED_HEADS if name not in common_heads]
        if missing:
            raise ValueError(f"common_heads: missing {', '.join(missing)}")

    @staticmethod
    def _task_class_ids(tasks: Sequence[TaskSpec], class_names: list[str]) -> list[list[int]]:
        ids, seen = [], set()
        for t, task in enumerate(tasks):
            if task.num_class != len(task.class_names):
                raise ValueError(f"tasks[{t}].num_class: {task.num_class} but {len(task.class_names)} "
                                 f"class_names")
            for name in task.class_names:
                if name not in class_names:
                    raise ValueError(f"tasks[{t}].class_names: {name!r} is not one of class_names "
                                     f"{class_names}")
                if name in seen:
                    raise ValueError(f"tasks[{t}].class_names: {name!r} is already in another task")
                seen.add(name)
            ids.append([class_names.index(name) for name in task.class_names])
        if not ids:
            raise ValueError("tasks: at least one task is needed")
        unused = [name for name in class_names if name not in seen]
        if unused:
            raise ValueError(f"tasks: classes {unused} belong to no task")
        return ids

    @property
    def output_names(self) -> list[str]:
        """Names of the flat outputs of `forward_flat`: heatmap, reg, height, dim, rot[, vel] per task
        (suffixed with the task index when there are several tasks)."""
        names = ["heatmap", *self.head_order]
        if len(self.task_heads) == 1:
            return names
        return [f"{name}{t}" for t in range(len(self.task_heads)) for name in names]

    def forward(self, x: Tensor) -> list[dict[str, Tensor]]:
        """x: (B, in_channels, nx, ny) -> per task {heatmap: (B, num_class, nx, ny) logits, reg, height,
        dim, rot[, vel]: (B, channels, nx, ny)}."""
        x = self.shared_conv(x)
        return [head(x) for head in self.task_heads]

    def forward_flat(self, x: Tensor) -> tuple[Tensor, ...]:
        """The forward as a flat tuple in `output_names` order (the head ONNX's outputs)."""
        return tuple(out[name] for out in self.forward(x) for name in ["heatmap", *self.head_order])

    def loss(self, preds: list[dict[str, Tensor]], gt_boxes: Sequence[Tensor], gt_labels: Sequence[Tensor]
             ) -> dict[str, Tensor]:
        """Per task `heatmap/task{t}` (focal loss / positives) and `bbox/task{t}` (weighted L1 / objects).

        gt_boxes: per frame (M, 7) or (M, 9) with velocity; gt_labels: per frame (M,) int64 class index.
        """
        losses = {}
        for t, (pred, class_ids) in enumerate(zip(preds, self.task_class_ids)):
            targets = [center_targets(*task_objects(boxes, labels, class_ids), len(class_ids), self.geometry,
                                      self.gaussian_overlap, self.min_radius, self.max_objs, self.norm_bbox,
                                      self.with_velocity)
                       for boxes, labels in zip(gt_boxes, gt_labels)]
            heatmap = torch.stack([target.heatmap for target in targets])
            probability = pred["heatmap"].sigmoid().clamp(1e-4, 1 - 1e-4)
            num_pos = heatmap.eq(1).sum().clamp(min=1)
            losses[f"heatmap/task{t}"] = self.loss_heatmap_weight * gaussian_focal_loss_sum(
                probability, heatmap, self.focal_alpha, self.focal_gamma) / num_pos
            boxes = torch.stack([target.boxes for target in targets])
            ind = torch.stack([target.ind for target in targets])
            mask = torch.stack([target.mask for target in targets]).to(boxes.dtype)
            regression = torch.cat([pred[name] for name in self.head_order], dim=1)
            batch, code_size = regression.shape[:2]
            regression = regression.reshape(batch, code_size, -1).gather(
                2, ind.unsqueeze(1).expand(-1, code_size, -1)).transpose(1, 2)
            weight = mask.unsqueeze(-1) * self.code_weights
            losses[f"bbox/task{t}"] = self.loss_bbox_weight * weighted_l1_sum(regression, boxes, weight) / \
                (mask.sum() + 1e-4)
        return losses

    @torch.no_grad()
    def predict(self, preds: list[dict[str, Tensor]]) -> list[Detections]:
        """Decode, threshold and NMS every frame; labels index class_names."""
        per_task = []
        for pred, class_ids in zip(preds, self.task_class_ids):
            boxes, scores, labels = decode_topk(pred["heatmap"].sigmoid(), pred["reg"], pred["height"],
                                                pred["dim"], pred["rot"], pred.get("vel"), self.geometry,
                                                self.postprocess.pre_max_size, self.norm_bbox)
            per_task.append((boxes, scores, labels.new_tensor(class_ids)[labels]))
        detections = []
        for b in range(per_task[0][0].shape[0]):
            boxes = torch.cat([task[0][b] for task in per_task])
            scores = torch.cat([task[1][b] for task in per_task])
            labels = torch.cat([task[2][b] for task in per_task])
            detections.append(select_detections(boxes, scores, labels, self.postprocess))
        return detections
