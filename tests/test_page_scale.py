"""Print size measured on rendered text, and pages run at the model's scale, composited at their own."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from seghw.data.fonts import available_fonts, load_font
from seghw.errors import UserError
from seghw.page_scale import MAX_MARK_HEIGHT, auto_scale, mark_height, parse_scale, predict_page

WORDS = "the quick brown fox jumps over a lazy dog while seven wizards quietly box many jugs"


def _printed_page(type_px: int, lines: int, side: int = 900) -> np.ndarray:
    """A white page of body text ``type_px`` px high, ``lines`` lines of it."""
    page = Image.new("RGB", (side, side), (246, 244, 238))
    draw = ImageDraw.Draw(page)
    font = load_font(available_fonts()[0] if available_fonts() else None, type_px)
    for i in range(lines):
        draw.text((20, 20 + int(i * type_px * 1.6)), WORDS, fill=(25, 25, 25), font=font)
    return np.asarray(page)


def test_the_mark_height_follows_the_type_size():
    small, large = mark_height(_printed_page(20, 12)), mark_height(_printed_page(40, 12))
    assert small is not None and large is not None
    assert 0.3 * 20 <= small <= 0.8 * 20  # about half the type size: most letters have no ascender
    assert large / small == pytest.approx(2.0, rel=0.2)


def test_a_page_with_too_little_print_keeps_its_scale():
    page = _printed_page(44, 1)  # one line: fewer marks than page_scale.MIN_MARKS
    assert mark_height(page) is None
    assert auto_scale(page) == 1.0
    blank = np.full((400, 400, 3), 240, np.uint8)
    assert mark_height(blank) is None and auto_scale(blank) == 1.0


def test_large_print_is_brought_down_to_the_training_pages_largest_and_small_print_is_left():
    large = _printed_page(60, 10, side=1800)
    height = mark_height(large)
    assert height is not None and height > MAX_MARK_HEIGHT
    assert auto_scale(large) == pytest.approx(MAX_MARK_HEIGHT / height)
    assert auto_scale(_printed_page(20, 14)) == 1.0  # never enlarged


def test_handwriting_among_the_print_moves_the_measure_little():
    page = _printed_page(24, 14).copy()
    before = mark_height(page)
    strokes = Image.fromarray(page)
    draw = ImageDraw.Draw(strokes)
    for k in range(6):  # a few long pen strokes across the text
        draw.line([(40 + 120 * k, 60), (110 + 120 * k, 300), (60 + 120 * k, 420)], fill=(20, 30, 120), width=4)
    assert mark_height(np.asarray(strokes)) == pytest.approx(before, abs=1.0)


@pytest.mark.parametrize("text, value", [("auto", None), ("AUTO", None), ("0.5", 0.5), ("1", 1.0), ("4", 4.0)])
def test_scale_values(text, value):
    assert parse_scale(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "4.5", "half", ""])
def test_bad_scales_are_named_in_one_line(text):
    with pytest.raises(UserError) as err:
        parse_scale(text)
    assert f"--scale {text!r}" in str(err.value) and "\n" not in str(err.value)


class Tiler:
    """``tile(page)`` as ``tile_predict`` bound to a model would be; records the page sizes it sees."""

    def __init__(self, erase: bool) -> None:
        self.erase, self.sizes = erase, []

    def __call__(self, page: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.sizes.append(page.shape[:2])
        if self.erase:  # white paper painted everywhere
            return np.full_like(page, 255), np.full(page.shape[:2], 255, np.uint8)
        return page.copy(), np.zeros(page.shape[:2], np.uint8)


@pytest.mark.parametrize("scale", [0.5, 0.37, 2.0])
def test_where_the_mask_says_no_ink_the_page_comes_back_exactly(scale):
    page = np.random.default_rng(3).integers(0, 256, (123, 211, 3), dtype=np.uint8)
    tile = Tiler(erase=False)
    clean, mask = predict_page(page, tile, scale)
    assert tile.sizes == [(round(123 * scale), round(211 * scale))]
    np.testing.assert_array_equal(clean, page)  # the print keeps the input's own pixels
    assert mask.shape == page.shape[:2] and mask.max() == 0


def test_what_the_model_paints_at_its_scale_reaches_the_whole_page():
    page = np.random.default_rng(4).integers(0, 200, (160, 240, 3), dtype=np.uint8)
    tile = Tiler(erase=True)
    clean, mask = predict_page(page, tile, 0.5)
    assert tile.sizes == [(80, 120)]
    assert clean.shape == page.shape and clean.min() == 255 and mask.min() == 255


def test_auto_runs_large_print_smaller_and_ordinary_print_as_it_is():
    large, ordinary = _printed_page(60, 10, side=1800), _printed_page(20, 14)
    tile = Tiler(erase=False)
    predict_page(large, tile)
    predict_page(ordinary, tile)
    factor = auto_scale(large)
    assert tile.sizes == [(round(1800 * factor), round(1800 * factor)), ordinary.shape[:2]]
    assert tile.sizes[0][0] < 1800
