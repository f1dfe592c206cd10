"""Tiled inference of full pages of any size (model-agnostic, pure numpy).

A page is reflect-padded by ``overlap // 2`` on every side, so that even the page's own border
pixels sit away from a window's border (where convolutions see zero padding and predict worst).
Windows of ``window`` px step by ``window - overlap``; the last one along each axis is aligned to the
padded page's end instead of padding further. Overlapping predictions are blended with weights that
keep each window's centre: the outer ``overlap // 2 - feather // 2`` px of a window get weight 0 (the
artefact-prone border never reaches the output), then a raised-cosine ramp ``feather`` px wide rises to
1, so neighbouring windows cross-fade without seams. ``feather`` defaults to ``overlap // 2`` (with the
default overlap of 64: 16 px discarded, 32 px cross-fade); ``feather=0`` is a hard cut in the middle
of each overlap. Along an axis no longer than ``window``, the page gets a single window instead: it is
padded (reflect, up to ``overlap // 2`` px of context on each side where the window has room) to a
multiple of ``multiple`` and the whole window is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from seghw.metrics import to_uint8

Predict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _axis_plan(length: int, window: int, overlap: int, multiple: int) -> tuple[int, int, list[int], int]:
    """Padding before/after, window starts (in padded coordinates) and window size along one axis."""
    margin = overlap // 2
    if length <= window:
        tile = min(window, math.ceil((length + 2 * margin) / multiple) * multiple)
        before = min(margin, (tile - length) // 2)
        return before, tile - length - before, [0], tile
    padded = length + 2 * margin
    stride = window - overlap
    starts = list(range(0, padded - window, stride)) + [padded - window]
    return margin, margin, starts, window


def _axis_weight(tile: int, overlap: int, feather: int, single: bool) -> np.ndarray:
    weight = np.ones(tile, dtype=np.float32)
    if single or overlap == 0:
        return weight
    dead = overlap // 2 - feather // 2
    ramp_len = overlap - 2 * dead
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_len) + 0.5) / ramp_len)
    weight[:dead] = 0.0
    weight[dead : dead + ramp_len] = ramp
    weight[tile - dead :] = 0.0
    weight[tile - dead - ramp_len : tile - dead] = ramp[::-1]
    return weight


def count_windows(height: int, width: int, window: int = 512, overlap: int = 64, multiple: int = 16) -> int:
    """How many windows :func:`tile_predict` runs for a ``height`` x ``width`` page."""
    _check_params(window, overlap, 1, multiple, 0)
    rows = _axis_plan(height, window, overlap, multiple)[2]
    cols = _axis_plan(width, window, overlap, multiple)[2]
    return len(rows) * len(cols)


def _check_params(window: int, overlap: int, batch_size: int, multiple: int, feather: int) -> None:
    if multiple < 1 or window < multiple or window % multiple:
        raise ValueError(f"window ({window}) must be a positive multiple of multiple ({multiple})")
    if not 0 <= overlap <= window // 2:
        raise ValueError(f"overlap ({overlap}) must be between 0 and half the window ({window})")
    if not 0 <= feather <= overlap:
        raise ValueError(f"feather ({feather}) must be between 0 and overlap ({overlap})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def tile_predict(
    image_u8: np.ndarray,
    predict: Predict,
    window: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
    multiple: int = 16,
    feather: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``predict`` over overlapping windows of a page and blend the results.

    ``image_u8`` is ``HxWx3`` uint8 (any H, W >= 1). ``predict`` receives a float32 NCHW batch in
    [0, 1] (at most ``batch_size`` windows, all of the same size) and returns ``(clean, mask)`` as
    NCHW (N x 3 x h x w) and N x 1 x h x w floats in [0, 1]. Returns ``(clean_u8 HxWx3, mask_u8 HxW)``,
    the mask scaled to 0-255. A ``predict`` that returns its input gives back the page exactly.
    ``feather`` is the cross-fade width (default ``overlap // 2``, see the module docstring): a
    window's outer ``overlap // 2 - feather // 2`` px never reach the output.
    """
    feather = overlap // 2 if feather is None else feather
    _check_params(window, overlap, batch_size, multiple, feather)
    image_u8 = np.asarray(image_u8)
    if image_u8.dtype != np.uint8 or image_u8.ndim != 3 or image_u8.shape[2] != 3 or 0 in image_u8.shape:
        raise ValueError(f"image must be an HxWx3 uint8 array, got {image_u8.dtype} {image_u8.shape}")
    height, width = image_u8.shape[:2]
    top, bottom, rows, tile_h = _axis_plan(height, window, overlap, multiple)
    left, right, cols, tile_w = _axis_plan(width, window, overlap, multiple)
    page = np.pad(image_u8, ((top, bottom), (left, right), (0, 0)), mode="reflect")
    page = page.transpose(2, 0, 1).astype(np.float32) / 255.0
    weight = np.outer(
        _axis_weight(tile_h, overlap, feather, len(rows) == 1),
        _axis_weight(tile_w, overlap, feather, len(cols) == 1),
    )
    acc = np.zeros((4,) + page.shape[1:], dtype=np.float32)
    norm = np.zeros(page.shape[1:], dtype=np.float32)
    positions = [(r, c) for r in rows for c in cols]
    for first in range(0, len(positions), batch_size):
        chunk = positions[first : first + batch_size]
        batch = np.stack([page[:, r : r + tile_h, c : c + tile_w] for r, c in chunk])
        clean, mask = predict(batch)
        clean, mask = np.asarray(clean), np.asarray(mask)
        n = len(chunk)
        if clean.shape != (n, 3, tile_h, tile_w) or mask.shape != (n, 1, tile_h, tile_w):
            raise ValueError(
                f"predict returned clean {clean.shape} and mask {mask.shape} for a batch of "
                f"{batch.shape}; expected ({n}, 3, {tile_h}, {tile_w}) and ({n}, 1, {tile_h}, {tile_w})"
            )
        for (r, c), out_clean, out_mask in zip(chunk, clean, mask, strict=True):
            acc[:3, r : r + tile_h, c : c + tile_w] += out_clean * weight
            acc[3, r : r + tile_h, c : c + tile_w] += out_mask[0] * weight
            norm[r : r + tile_h, c : c + tile_w] += weight
    crop = (slice(top, top + height), slice(left, left + width))
    norm = norm[crop]
    # The weight plan guarantees cover; a zero here would mean a planning bug, not bad input.
    assert norm.min() > 0, "tiling left page pixels without weight"
    blended = acc[(slice(None),) + crop] / norm
    return to_uint8(blended[:3].transpose(1, 2, 0)), to_uint8(blended[3])
