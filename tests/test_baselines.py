from __future__ import annotations

import cv2
import numpy as np
import pytest

from seghw import baselines
from seghw.metrics import psnr

BLUE = (30, 60, 200)  # RGB ballpoint blue
RED = (210, 30, 30)


def _printed_page() -> np.ndarray:
    rng = np.random.default_rng(0)
    page = np.clip(rng.normal(245, 3, (256, 320, 3)), 0, 255).astype(np.uint8)  # faint paper grain
    for y, text in ((60, "Printed 123 text"), (160, "Question 2: x+y")):
        cv2.putText(page, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (20, 20, 20), 2, cv2.LINE_AA)
    return page


def _with_strokes(clean: np.ndarray, colours) -> np.ndarray:
    page = clean.copy()
    lines = [((20, 40), (300, 200)), ((20, 220), (300, 90))]
    for colour, (p0, p1) in zip(colours, lines, strict=False):
        cv2.line(page, p0, p1, colour, 3, cv2.LINE_AA)
    return page


def test_identity_keeps_the_page_and_masks_nothing():
    page = _with_strokes(_printed_page(), [BLUE])
    clean, mask = baselines.identity(page)
    np.testing.assert_array_equal(clean, page)
    assert clean is not page
    assert mask.shape == page.shape[:2] and mask.dtype == np.uint8 and not mask.any()


@pytest.mark.parametrize("colours", [[BLUE], [RED], [BLUE, RED]])
def test_classical_removes_coloured_strokes(colours):
    clean_page = _printed_page()
    page = _with_strokes(clean_page, colours)
    base = psnr(baselines.identity(page)[0], clean_page)
    clean, mask = baselines.classical(page)
    gain = psnr(clean, clean_page) - base
    assert gain > 5.0, f"classical gained only {gain:.2f} dB over identity"
    stroke = np.abs(page.astype(int) - clean_page).max(axis=2) > 40
    assert (mask[stroke] == 255).mean() > 0.95
    assert set(np.unique(mask)) <= {0, 255}
    # Only masked pixels change.
    np.testing.assert_array_equal(clean[mask == 0], page[mask == 0])


def test_classical_leaves_print_and_paper_alone():
    page = _printed_page()
    clean, mask = baselines.classical(page)
    assert not mask.any()
    np.testing.assert_array_equal(clean, page)


def test_classical_keeps_print_away_from_the_strokes():
    clean_page = _printed_page()
    page = _with_strokes(clean_page, [BLUE, RED])
    _, mask = baselines.classical(page)
    near_stroke = (
        cv2.dilate(
            (np.abs(page.astype(int) - clean_page).max(axis=2) > 0).astype(np.uint8),
            np.ones((7, 7), np.uint8),
        )
        > 0
    )
    print_px = (clean_page.max(axis=2) < 128) & ~near_stroke
    assert print_px.sum() > 500
    assert not mask[print_px].any()


def test_bad_page_is_reported():
    with pytest.raises(ValueError, match="HxWx3 uint8 RGB"):
        baselines.classical(np.zeros((20, 20), np.uint8))
    with pytest.raises(ValueError, match="HxWx3 uint8 RGB"):
        baselines.identity(np.zeros((20, 20, 3), np.float32))
