"""How far a quantized model's boxes are from the FP32 model's: matched share and BEV AP against them.

Guide §5.2.6 validates INT8 by self-distillation: the FP32 model's decoded boxes are the pseudo ground
truth. A reference box is matched when a box of the same class overlaps it with BEV IoU >= the
threshold (greedy, highest score first, one-to-one); the AP treats the reference boxes as ground
truth (R40 interpolation, mean over the classes that have reference boxes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from v2xfusion_tools.models.heads.decode import rotated_iou_bev
from v2xfusion_tools.quantize.detections import FrameBoxes

MATCH_IOU = 0.7


@dataclass(frozen=True)
class Agreement:
    """frames; reference / candidate box counts; matched reference boxes; match_rate = matched /
    reference (1.0 when there are none); ap: BEV AP (percent) of the candidates against the reference."""

    frames: int
    reference_boxes: int
    candidate_boxes: int
    matched: int
    match_rate: float
    ap: float

    def as_dict(self) -> dict[str, float | int]:
        return {"frames": self.frames, "reference_boxes": self.reference_boxes, "candidate_boxes": self.candidate_boxes,
                "matched": self.matched, "match_rate": self.match_rate, "bev_ap_vs_reference": self.ap}


def _true_positives(reference: FrameBoxes, candidate: FrameBoxes, iou_threshold: float) -> np.ndarray:
    """Per candidate (in its score order): 1 if it matches a still-unmatched reference box of its class."""
    hits = np.zeros(len(candidate.scores), dtype=bool)
    if len(reference.scores) == 0 or len(candidate.scores) == 0:
        return hits
    iou = rotated_iou_bev(torch.from_numpy(candidate.boxes[:, :7]).double(),
                          torch.from_numpy(reference.boxes[:, :7]).double()).numpy()
    iou[candidate.labels[:, None] != reference.labels[None, :]] = 0.0
    taken = np.zeros(len(reference.scores), dtype=bool)
    for i in np.argsort(-candidate.scores, kind="stable"):
        overlaps = np.where(taken, -1.0, iou[i])
        j = int(np.argmax(overlaps))
        if overlaps[j] >= iou_threshold:
            taken[j] = hits[i] = True
    return hits


def average_precision(scores: np.ndarray, hits: np.ndarray, num_reference: int) -> float:
    """R40 AP (percent): precision interpolated at recall 1/40 .. 1, averaged."""
    if num_reference == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(hits[order])
    precision = tp / np.arange(1, len(order) + 1)
    recall = tp / num_reference
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    points = np.linspace(1 / 40, 1.0, 40)
    sampled = [envelope[recall >= r - 1e-12].max() if np.any(recall >= r - 1e-12) else 0.0 for r in points]
    return float(np.mean(sampled) * 100.0)


def agreement(references: Sequence[FrameBoxes], candidates: Sequence[FrameBoxes], num_classes: int,
              iou_threshold: float = MATCH_IOU) -> Agreement:
    """Compare candidate detections with reference detections frame by frame (same order)."""
    if len(references) != len(candidates):
        raise ValueError(f"{len(references)} reference frames, {len(candidates)} candidate frames")
    hits = [_true_positives(r, c, iou_threshold) for r, c in zip(references, candidates)]
    matched = int(sum(h.sum() for h in hits))
    num_reference = sum(len(r.scores) for r in references)
    scores = np.concatenate([c.scores for c in candidates]) if candidates else np.zeros(0)
    labels = np.concatenate([c.labels for c in candidates]) if candidates else np.zeros(0, dtype=np.int64)
    all_hits = np.concatenate(hits) if hits else np.zeros(0, dtype=bool)
    reference_labels = np.concatenate([r.labels for r in references]) if references else np.zeros(0, dtype=np.int64)
    per_class = [average_precision(scores[labels == c], all_hits[labels == c], int((reference_labels == c).sum()))
                 for c in range(num_classes)]
    valid = [ap for ap in per_class if not np.isnan(ap)]
    return Agreement(frames=len(references), reference_boxes=num_reference,
                     candidate_boxes=int(sum(len(c.scores) for c in candidates)), matched=matched,
                     match_rate=matched / num_reference if num_reference else 1.0,
                     ap=float(np.mean(valid)) if valid else 100.0)
