"""EraseNet-style loss: L1 inside the handwriting, L1 on the rest, and mask BCE + Dice.

The L1 weights are per pixel, so with equal weights the image term is the plain L1 of the page,
as PSNR counts it. Weighting the two regions' *means* instead (EraseNet's form) made handwriting
pixels ~100x heavier than printed ones at a few % ink cover, and the model learnt to erase print.
"""

from __future__ import annotations

from dataclasses import dataclass

import paddle
from paddle.nn import functional as F

_EPS = 1e-6


@dataclass(frozen=True)
class LossWeights:
    hole: float = 4.0
    valid: float = 1.0
    mask_bce: float = 1.0
    mask_dice: float = 1.0
    mask_dilation: int = 1


def erase_loss(out, mask_logits, gt, mask, weights: LossWeights):
    """Return (total, parts) where parts holds each unweighted term as a scalar tensor.

    With ``mask_dilation`` d > 0 the mask head learns the handwriting mask grown by d px, so the
    composite also replaces the faint, blurred rims of strokes that a tight mask leaves behind.
    """
    err = paddle.abs(out - gt)
    hole = (err * mask).mean()
    valid = (err * (1.0 - mask)).mean()
    d = weights.mask_dilation
    target = F.max_pool2d(mask, kernel_size=2 * d + 1, stride=1, padding=d) if d > 0 else mask
    bce = F.binary_cross_entropy_with_logits(mask_logits, target)
    prob = F.sigmoid(mask_logits)
    inter = (prob * target).sum()
    dice = 1.0 - (2.0 * inter + 1.0) / (prob.sum() + target.sum() + 1.0)
    total = weights.hole * hole + weights.valid * valid + weights.mask_bce * bce + weights.mask_dice * dice
    return total, {"l1_hole": hole, "l1_valid": valid, "mask_bce": bce, "mask_dice": dice}
