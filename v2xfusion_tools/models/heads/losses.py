"""CenterHead losses: Gaussian focal loss on heatmaps (CornerNet / CenterNet) and weighted L1."""
from __future__ import annotations

from torch import Tensor


def gaussian_focal_loss_sum(pred: Tensor, target: Tensor, alpha: float = 2.0, gamma: float = 4.0,
                            eps: float = 1e-12) -> Tensor:
    """Summed focal loss of probabilities pred against a Gaussian heatmap target (same shapes).

    Peaks (target == 1) are positives weighted by (1 - pred)^alpha; every other cell is a negative
    weighted by pred^alpha and down-weighted near a peak by (1 - target)^gamma. mmdet's
    GaussianFocalLoss, before its division by the number of positives.
    """
    positive = target.eq(1).to(pred.dtype)
    negative_weight = (1 - target).pow(gamma)
    pos_loss = -(pred + eps).log() * (1 - pred).pow(alpha) * positive
    neg_loss = -(1 - pred + eps).log() * pred.pow(alpha) * negative_weight * (1 - positive)
    return (pos_loss + neg_loss).sum()


def weighted_l1_sum(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """sum(|pred - target| * weight); all three the same shape."""
    return ((pred - target).abs() * weight).sum()
