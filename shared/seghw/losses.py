"""EraseNet-style loss: L1 inside the handwriting, L1 on the rest, and mask BCE + Dice."""

from __future__ import annotations

from dataclasses import dataclass

import paddle
from paddle.nn import functional as F

_EPS = 1e-6


@dataclass(frozen=True)
class LossWeights:
    hole: float = 6.0
    valid: float = 1.0
    mask_bce: float = 1.0
    mask_dice: float = 1.0


def erase_loss(out, mask_logits, gt, mask, weights: LossWeights):
    """Return (total, parts) where parts holds each unweighted term as a scalar tensor."""
    err = paddle.abs(out - gt)
    channels = out.shape[1]
    hole = (err * mask).sum() / (mask.sum() * channels + _EPS)
    valid = (err * (1.0 - mask)).sum() / ((1.0 - mask).sum() * channels + _EPS)
    bce = F.binary_cross_entropy_with_logits(mask_logits, mask)
    prob = F.sigmoid(mask_logits)
    inter = (prob * mask).sum()
    dice = 1.0 - (2.0 * inter + 1.0) / (prob.sum() + mask.sum() + 1.0)
    total = weights.hole * hole + weights.valid * valid + weights.mask_bce * bce + weights.mask_dice * dice
    return total, {"l1_hole": hole, "l1_valid": valid, "mask_bce": bce, "mask_dice": dice}
