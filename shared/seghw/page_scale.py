"""Pages whose print is larger than the training pages' are brought down to their scale first.

The model learns print and handwriting at the sizes its training pages hold: body text up to about
30 px high, the print of a 150-to-200-dpi scan. On a 300-dpi scan the letters are larger than
anything it saw, and it takes more of them for handwriting (docs/BENCHMARKS.md, section 7). So
``predict_page`` measures the print (:func:`mark_height`), runs the model on the page scaled down to
the training pages' largest print, and composites the result back at the page's own resolution: the
input's pixels wherever the mask says "no ink", so the print keeps its full detail.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from seghw.errors import UserError
from seghw.metrics import to_uint8

MARK_INK_DELTA = 60  # grey levels darker than the lightest pixel within 15 px: ink, not paper texture
PAPER_WINDOW = 31
MIN_MARKS = 60  # fewer printed marks than this is too little print to measure: the page keeps its scale
MAX_MARK_HEIGHT = 15.0  # px; the median mark of the training pages' largest body text (about 30-px type)
SCALES = "auto, or a factor in (0, 4]"


def mark_height(image_u8: np.ndarray) -> float | None:
    """The median height in px of the page's printed marks (letters, digits: connected dark ink
    shaped like a glyph), about half the type size; ``None`` when there are fewer than
    :data:`MIN_MARKS`. Handwriting is a few groups of strokes among hundreds of letters, so it moves
    the median little."""
    gray = cv2.cvtColor(np.ascontiguousarray(image_u8), cv2.COLOR_RGB2GRAY)
    paper = cv2.dilate(gray, np.ones((PAPER_WINDOW, PAPER_WINDOW), np.uint8))
    ink = ((paper.astype(np.int16) - gray) > MARK_INK_DELTA).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    w, h, area = stats[1:, 2], stats[1:, 3], stats[1:, 4]
    # Glyph-like: at least 4 px high, not a rule or a long line, not a figure's frame, not a speck.
    glyph = (h >= 4) & (w >= 2) & (w <= 4 * h) & (h <= image_u8.shape[0] / 4) & (area >= 0.15 * w * h)
    if int(glyph.sum()) < MIN_MARKS:
        return None
    return float(np.median(h[glyph]))


def auto_scale(image_u8: np.ndarray, max_height: float = MAX_MARK_HEIGHT) -> float:
    """The factor that brings the page's print down to ``max_height`` marks; 1 when it is no larger
    or cannot be measured. Never above 1: small print is within what the model learned."""
    height = mark_height(image_u8)
    return 1.0 if height is None or height <= max_height else max_height / height


def parse_scale(text: str) -> float | None:
    """``--scale``: ``None`` for ``auto``, else the factor; a one-line error for anything else."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 4:  # also refuses nan
        raise UserError(f"invalid --scale {text!r}: use {SCALES}")
    return value


Tiler = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def predict_page(image_u8: np.ndarray, tile: Tiler, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``tile(page) -> (clean_u8, mask_u8)`` (``tiling.tile_predict`` bound to a model) run on the page
    at ``scale`` (``None``: :func:`auto_scale`), the result at the page's own size.

    At a scale other than 1 the model's painted ink (``mask * fill``, from its clean page and mask) and
    its mask are resized to the page, and the page is composited there:
    ``out = painted + (1 - mask) * input``. The fill is the paper's level, smooth, so resizing it loses
    nothing, and the print stays the input's own pixels.
    """
    factor = auto_scale(image_u8) if scale is None else scale
    height, width = image_u8.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    if factor == 1 or size == (width, height):
        return tile(image_u8)
    shrink = factor < 1
    small = cv2.resize(image_u8, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    clean_s, mask_s = tile(small)
    m_s = mask_s.astype(np.float32) / 255.0
    painted_s = clean_s.astype(np.float32) / 255.0 - (1.0 - m_s)[..., None] * (small.astype(np.float32) / 255.0)
    mask = np.clip(cv2.resize(m_s, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    painted = cv2.resize(painted_s, (width, height), interpolation=cv2.INTER_LINEAR)
    out = painted + (1.0 - mask)[..., None] * (image_u8.astype(np.float32) / 255.0)
    return to_uint8(out), to_uint8(mask)
