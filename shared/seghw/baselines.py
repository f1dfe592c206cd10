"""Reference methods for evaluation tables: what a trained model has to beat.

Both take an ``HxWx3`` uint8 **RGB** page and return ``(clean_u8 HxWx3, mask_u8 HxW)`` with the mask
0 or 255, like :func:`seghw.tiling.tile_predict`.

- :func:`identity` leaves the page as it is (the "do nothing" floor of every metric).
- :func:`classical` erases coloured ink only: pixels whose HSV colour is saturated enough and has a
  blue or red hue become the mask (dilated a little to take the anti-aliased stroke rims), and
  OpenCV's Telea inpainting (radius 3) fills them from the surrounding paper. Dark (black/pencil)
  handwriting is left alone on purpose: on a printed page it cannot be told from the print by
  colour, and a wrong guess would erase the print.
"""

from __future__ import annotations

import cv2
import numpy as np

# OpenCV 8-bit HSV: hue is 0-179 (degrees / 2), saturation and value 0-255.
BLUE_HUE = (90, 140)  # cyan-blue through violet-blue ballpoint and fountain-pen inks
RED_HUES = ((0, 12), (160, 179))  # red wraps around hue 0
MIN_SATURATION = 60  # grey print, paper and its texture stay well below this
MIN_VALUE = 40  # nearly black pixels have a meaningless hue
INPAINT_RADIUS = 3


def _check_page(image_u8: np.ndarray) -> np.ndarray:
    image_u8 = np.asarray(image_u8)
    if image_u8.dtype != np.uint8 or image_u8.ndim != 3 or image_u8.shape[2] != 3 or 0 in image_u8.shape:
        raise ValueError(f"page must be an HxWx3 uint8 RGB array, got {image_u8.dtype} {image_u8.shape}")
    return image_u8


def identity(image_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The page unchanged and an empty mask."""
    image_u8 = _check_page(image_u8)
    return image_u8.copy(), np.zeros(image_u8.shape[:2], dtype=np.uint8)


def ink_mask(image_u8: np.ndarray, dilate: int = 1) -> np.ndarray:
    """0/255 mask of blue and red ink pixels, grown by ``dilate`` px (3x3 steps)."""
    hsv = cv2.cvtColor(_check_page(image_u8), cv2.COLOR_RGB2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    hue_ok = (hue >= BLUE_HUE[0]) & (hue <= BLUE_HUE[1])
    for low, high in RED_HUES:
        hue_ok |= (hue >= low) & (hue <= high)
    mask = (hue_ok & (sat >= MIN_SATURATION) & (val >= MIN_VALUE)).astype(np.uint8) * 255
    if dilate > 0:
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=dilate)
    return mask


def classical(image_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blue/red ink found by colour (see :func:`ink_mask`) and inpainted with Telea, radius 3."""
    mask = ink_mask(image_u8)
    if not mask.any():
        return image_u8.copy(), mask
    # cv2.inpaint treats the three channels alike, so RGB order needs no conversion.
    clean = cv2.inpaint(np.ascontiguousarray(image_u8), mask, INPAINT_RADIUS, cv2.INPAINT_TELEA)
    return clean, mask
