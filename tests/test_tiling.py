from __future__ import annotations

import math

import numpy as np
import pytest

from seghw.metrics import to_uint8
from seghw.tiling import count_windows, tile_predict


def _page(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


class Recorder:
    """A predict that returns its input (clean) and its green channel (mask), and logs batch shapes."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert batch.dtype == np.float32 and batch.min() >= 0 and batch.max() <= 1
        self.shapes.append(batch.shape)
        return batch.copy(), batch[:, 1:2].copy()


@pytest.mark.parametrize("size", [(37, 53), (300, 517), (1240, 1754), (1, 1), (40, 700), (256, 257)])
def test_identity_predict_returns_the_page_exactly(size):
    page = _page(*size)
    clean, mask = tile_predict(page, Recorder(), window=256, overlap=64)
    assert clean.dtype == np.uint8 and clean.shape == page.shape
    assert mask.dtype == np.uint8 and mask.shape == page.shape[:2]
    np.testing.assert_array_equal(clean, page)
    np.testing.assert_array_equal(mask, page[..., 1])


def test_identity_with_default_window_on_a_full_page():
    page = _page(1240, 1754, seed=1)
    clean, mask = tile_predict(page, Recorder())
    np.testing.assert_array_equal(clean, page)
    np.testing.assert_array_equal(mask, page[..., 1])


def test_per_pixel_ops_match_the_whole_page_op():
    page = _page(300, 517, seed=2)

    def invert(batch):
        return 1.0 - batch, batch[:, 1:2] ** 2

    clean, mask = tile_predict(page, invert, window=128, overlap=32)
    np.testing.assert_array_equal(clean, 255 - page)
    np.testing.assert_array_equal(mask, to_uint8((page[..., 1].astype(np.float32) / 255) ** 2))


def _windows_along(length: int, window: int, overlap: int) -> int:
    padded = length + 2 * (overlap // 2)
    return 1 if length <= window else 1 + math.ceil((padded - window) / (window - overlap))


@pytest.mark.parametrize(
    ("size", "window", "overlap", "batch_size"),
    [
        ((300, 517), 256, 64, 4),
        ((1240, 1754), 512, 64, 4),
        ((1240, 1754), 256, 32, 5),
        ((37, 53), 256, 64, 4),
    ],
)
def test_windows_and_batches_are_counted(size, window, overlap, batch_size):
    rec = Recorder()
    tile_predict(_page(*size), rec, window=window, overlap=overlap, batch_size=batch_size)
    n = _windows_along(size[0], window, overlap) * _windows_along(size[1], window, overlap)
    assert count_windows(*size, window=window, overlap=overlap) == n
    assert len(rec.shapes) == math.ceil(n / batch_size)
    assert [s[0] for s in rec.shapes] == [min(batch_size, n - i) for i in range(0, n, batch_size)]
    if size == (37, 53):
        # One window: padded up to multiples of 16 with up to 32 px of context on each side.
        assert rec.shapes == [(1, 3, 112, 128)]
    else:
        assert {s[1:] for s in rec.shapes} == {(3, window, window)}


def test_expected_window_counts_for_known_pages():
    assert count_windows(300, 517, window=256, overlap=64) == 2 * 3
    assert count_windows(1240, 1754, window=512, overlap=64) == 3 * 4
    assert count_windows(512, 512, window=512, overlap=64) == 1


def _zero_border(width: int):
    def predict(batch):
        out = batch.copy()
        out[:, :, :width, :] = 0
        out[:, :, -width:, :] = 0
        out[:, :, :, :width] = 0
        out[:, :, :, -width:] = 0
        return out, out[:, 1:2]

    return predict


@pytest.mark.parametrize(("overlap", "feather"), [(16, 0), (32, None), (64, None), (64, 48)])
def test_window_border_artefacts_never_reach_the_page(overlap, feather):
    page = _page(300, 517, seed=3)
    clean, mask = tile_predict(page, _zero_border(8), window=128, overlap=overlap, feather=feather)
    np.testing.assert_array_equal(clean, page)
    np.testing.assert_array_equal(mask, page[..., 1])


def test_a_too_wide_feather_lets_artefacts_through():
    # Control for the test above: with 16 px of overlap and an 8 px cross-fade only 4 px are discarded.
    page = _page(300, 517, seed=3)
    clean, _ = tile_predict(page, _zero_border(8), window=128, overlap=16, feather=8)
    assert (clean != page).any(axis=2).mean() > 0.01


def test_cross_fade_has_no_seams():
    # Each window predicts a flat value of its own: the only structure in the output is the blend.
    counter = iter(range(10_000))

    def flat(batch):
        out = np.empty_like(batch)
        for i in range(len(batch)):
            out[i] = 0.2 if next(counter) % 2 else 0.8
        return out, out[:, :1]

    page = np.full((400, 600, 3), 128, np.uint8)
    smooth, _ = tile_predict(page, flat, window=128, overlap=64)
    steps = np.abs(np.diff(smooth[..., 0].astype(int), axis=1)).max()
    # A 153-level jump spread over a 32 px raised-cosine ramp: at most ~153*pi/64 per pixel.
    assert steps <= 10
    hard, _ = tile_predict(page, flat, window=128, overlap=64, feather=0)
    assert np.abs(np.diff(hard[..., 0].astype(int), axis=1)).max() >= 150


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 500}, "multiple"),
        ({"window": 128, "overlap": 65}, "overlap"),
        ({"overlap": -1}, "overlap"),
        ({"overlap": 32, "feather": 40}, "feather"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_parameters_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tile_predict(_page(20, 20), Recorder(), **kwargs)


def test_bad_image_or_predict_output_is_reported():
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        tile_predict(np.zeros((20, 20), np.uint8), Recorder())
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        tile_predict(np.zeros((20, 20, 3), np.float32), Recorder())
    with pytest.raises(ValueError, match="predict returned"):
        tile_predict(_page(20, 20), lambda b: (b[:, :, :-1], b[:, :1]))
