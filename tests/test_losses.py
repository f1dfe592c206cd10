"""The training loss on hand-made tensors: per-pixel weights, mask target dilation."""

from __future__ import annotations

import numpy as np
import pytest

from seghw.device import import_paddle

paddle = import_paddle()

from seghw.losses import LossWeights, erase_loss  # noqa: E402


def _t(a):
    return paddle.to_tensor(np.asarray(a, np.float32))


def _page(ink_pixels: int, size: int = 10):
    gt = np.ones((1, 3, size, size), np.float32)
    mask = np.zeros((1, 1, size, size), np.float32)
    mask.reshape(-1)[:ink_pixels] = 1.0
    return gt, mask


def test_l1_terms_are_per_pixel_shares_of_the_page():
    gt, mask = _page(ink_pixels=5)
    out = gt.copy()
    out[:, :, 0, :5] = 0.0  # the 5 ink pixels left black: error 1 on 5 of 100 pixels
    _, parts = erase_loss(_t(out), _t(np.full_like(mask, -9)), _t(gt), _t(mask), LossWeights())
    assert float(parts["l1_hole"]) == pytest.approx(0.05)
    assert float(parts["l1_valid"]) == pytest.approx(0.0)
    out = gt.copy()
    out[:, :, 9, :5] = 0.0  # the same error on 5 print/paper pixels weighs the same per pixel
    _, parts = erase_loss(_t(out), _t(np.full_like(mask, -9)), _t(gt), _t(mask), LossWeights())
    assert float(parts["l1_valid"]) == pytest.approx(0.05)


def test_total_weights_the_regions():
    gt, mask = _page(ink_pixels=50)
    out = np.zeros_like(gt)  # error 1 everywhere
    logits = _t(np.where(mask > 0, 9.0, -9.0))
    total, parts = erase_loss(_t(out), logits, _t(gt), _t(mask), LossWeights(hole=2, valid=1, mask_bce=0, mask_dice=0))
    assert float(parts["l1_hole"]) == pytest.approx(0.5) and float(parts["l1_valid"]) == pytest.approx(0.5)
    assert float(total) == pytest.approx(2 * 0.5 + 1 * 0.5)


def test_dilation_grows_the_mask_target():
    gt = np.ones((1, 3, 9, 9), np.float32)
    mask = np.zeros((1, 1, 9, 9), np.float32)
    mask[0, 0, 4, 4] = 1.0
    grown = np.zeros_like(mask)
    grown[0, 0, 3:6, 3:6] = 1.0
    exact = _t(np.where(grown > 0, 30.0, -30.0))  # logits that match the 3x3 square
    plain = erase_loss(_t(gt), exact, _t(gt), _t(mask), LossWeights(mask_dilation=0))[1]
    dilated = erase_loss(_t(gt), exact, _t(gt), _t(mask), LossWeights(mask_dilation=1))[1]
    assert float(dilated["mask_bce"]) < 1e-6 and float(dilated["mask_dice"]) < 0.01
    assert float(plain["mask_bce"]) > 1.0  # 8 of 81 pixels wrong by 30 nats
