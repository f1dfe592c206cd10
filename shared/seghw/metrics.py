"""Image-quality metrics with the handwriting-erasure competition's conventions (pure numpy + OpenCV).

Conventions (every function here follows them):

- Images are uint8 on 0-255, ``HxWx3`` (RGB) or ``HxW``. Float model outputs in [0, 1] go through
  :func:`to_uint8` first, so a metric sees what a saved PNG would hold.
- **PSNR** is over all channels of one image with peak 255; a batch value is the mean of the
  per-image PSNRs (not the PSNR of the pooled MSE). Identical images have no finite PSNR, so every
  value is capped at :data:`PSNR_CAP` = 100 dB.
- **SSIM** is single-scale Wang et al. on luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (float, not
  rounded), 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, data range 255; the map is
  averaged over the positions where the window fits inside the image (``valid`` filtering), which
  equals ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)``.
- **MS-SSIM** is Wang et al.'s five-scale index on the same luma with weights
  (.0448, .2856, .3001, .2363, .1333): contrast-structure at scales 1-4, luminance x contrast-structure
  at scale 5, 2x2 average downsampling between scales (an odd row/column is dropped). The 11x11
  window must fit at the fifth scale, so both sides must be at least :data:`MS_SSIM_MIN_SIDE` = 176;
  for a smaller image :func:`ms_ssim` returns ``None``. Negative per-scale terms are clipped to 0
  before the fractional powers (otherwise the product is NaN for anti-correlated images).
- **Score** (competition): ``0.5 * PSNR / 100 + 0.5 * MS-SSIM``; ``None`` when MS-SSIM is ``None``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

PSNR_CAP = 100.0
WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0
C1 = (K1 * DATA_RANGE) ** 2
C2 = (K2 * DATA_RANGE) ** 2
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_MIN_SIDE = WINDOW * 2 ** (len(MS_SSIM_WEIGHTS) - 1)  # 176

_KERNEL = cv2.getGaussianKernel(WINDOW, SIGMA, cv2.CV_64F)
_HALF = WINDOW // 2
_LUMA = np.array([0.299, 0.587, 0.114])


def _check_pair(pred: np.ndarray, target: np.ndarray) -> None:
    for name, arr in (("pred", pred), ("target", target)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8:
            kind = getattr(arr, "dtype", type(arr).__name__)
            raise ValueError(f"{name} must be a uint8 numpy array on 0-255, got {kind}")
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3)):
            raise ValueError(f"{name} must be HxW or HxWx3 (or HxWx1), got shape {arr.shape}")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target differ in shape: {pred.shape} vs {target.shape}")


def _luma(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return img.astype(np.float64)
    if img.shape[2] == 1:
        return img[..., 0].astype(np.float64)
    return img.astype(np.float64) @ _LUMA


def _ssim_terms(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure of two float luma images.

    The five local moments are filtered in one float64 buffer and combined in place: a fresh
    array per step costs more in page faults than the arithmetic does (about 2x on 512x512).
    """
    h, w = x.shape
    moments = np.empty((5, h, w))
    moments[0], moments[1] = x, y
    np.multiply(x, x, out=moments[2])
    np.multiply(y, y, out=moments[3])
    np.multiply(x, y, out=moments[4])
    for plane in moments:
        cv2.sepFilter2D(plane, cv2.CV_64F, _KERNEL, _KERNEL, dst=plane, borderType=cv2.BORDER_REFLECT_101)
    # Keep only the positions where the whole window lies inside the image ("valid").
    mu_x, mu_y, e_xx, e_yy, e_xy = moments[:, _HALF : h - _HALF, _HALF : w - _HALF]
    mu_xy = mu_x * mu_y
    cs = np.subtract(e_xy, mu_xy, out=e_xy)  # covariance
    cs *= 2.0
    cs += C2
    mu_xx = np.multiply(mu_x, mu_x, out=mu_x)
    mu_yy = np.multiply(mu_y, mu_y, out=mu_y)
    den = np.subtract(e_xx, mu_xx, out=e_xx)  # var_x
    den += e_yy
    den -= mu_yy  # + var_y
    den += C2
    cs /= den
    lum_den = np.add(mu_xx, mu_yy, out=mu_xx)
    lum_den += C1
    full = mu_xy
    full *= 2.0
    full += C1
    full /= lum_den
    full *= cs
    return float(np.mean(full)), float(np.mean(cs))


def psnr(pred_u8: np.ndarray, target_u8: np.ndarray) -> float:
    """PSNR in dB of one uint8 image against its target, over all channels, capped at 100 dB.

    Identical images give exactly :data:`PSNR_CAP` (100.0).
    """
    _check_pair(pred_u8, target_u8)
    diff = pred_u8.astype(np.float64) - target_u8.astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(DATA_RANGE * DATA_RANGE / mse))


def ssim(pred_u8: np.ndarray, target_u8: np.ndarray) -> float:
    """Single-scale SSIM on luma (see the module docstring); both sides must be at least 11 px."""
    _check_pair(pred_u8, target_u8)
    if min(pred_u8.shape[:2]) < WINDOW:
        raise ValueError(f"SSIM needs both sides >= {WINDOW} px, got {pred_u8.shape[:2]}")
    return _ssim_terms(_luma(pred_u8), _luma(target_u8))[0]


def _downsample(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    x = x[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def _ms_ssim_luma(x: np.ndarray, y: np.ndarray) -> float | None:
    if min(x.shape) < MS_SSIM_MIN_SIDE:
        return None
    value = 1.0
    last = len(MS_SSIM_WEIGHTS) - 1
    for scale, weight in enumerate(MS_SSIM_WEIGHTS):
        full, cs = _ssim_terms(x, y)
        term = full if scale == last else cs
        value *= max(term, 0.0) ** weight
        if scale != last:
            x, y = _downsample(x), _downsample(y)
    return value


def ms_ssim(pred_u8: np.ndarray, target_u8: np.ndarray) -> float | None:
    """Five-scale MS-SSIM on luma, or ``None`` when a side is below 176 px (see the module docstring)."""
    _check_pair(pred_u8, target_u8)
    return _ms_ssim_luma(_luma(pred_u8), _luma(target_u8))


def score(psnr: float | None, ms_ssim: float | None) -> float | None:
    """Competition score ``0.5 * psnr / 100 + 0.5 * ms_ssim``; ``None`` if either input is ``None``."""
    if psnr is None or ms_ssim is None:
        return None
    return 0.5 * psnr / 100.0 + 0.5 * ms_ssim


def to_uint8(x_float01: np.ndarray) -> np.ndarray:
    """Float image(s) in [0, 1] to uint8: scale by 255, round half to even, clip; NaN becomes 0."""
    x = np.nan_to_num(np.asarray(x_float01, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _batch_to_hwc_u8(batch: np.ndarray, name: str) -> np.ndarray:
    batch = np.asarray(batch)
    if batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise ValueError(f"{name} must be an NCHW float batch with C = 1 or 3, got shape {batch.shape}")
    return to_uint8(batch).transpose(0, 2, 3, 1)


def per_image_quality(pred: np.ndarray, target: np.ndarray) -> list[dict[str, float | None]]:
    """Per-image psnr/ssim/ms_ssim/score for NCHW float batches in [0, 1] (see :func:`batch_quality`)."""
    p, t = _batch_to_hwc_u8(pred, "pred"), _batch_to_hwc_u8(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target differ in shape: {pred.shape} vs {target.shape}")
    rows: list[dict[str, float | None]] = []
    for pi, ti in zip(p, t, strict=True):
        value_psnr = psnr(pi, ti)
        py, ty = _luma(pi), _luma(ti)
        value_ms = _ms_ssim_luma(py, ty)
        rows.append(
            {
                "psnr": value_psnr,
                "ssim": _ssim_terms(py, ty)[0],
                "ms_ssim": value_ms,
                "score": score(value_psnr, value_ms),
            }
        )
    return rows


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def batch_quality(pred: np.ndarray, target: np.ndarray) -> dict[str, float | None]:
    """Mean per-image quality of a batch.

    ``pred`` and ``target`` are NCHW float arrays in [0, 1] (C = 3 RGB, or 1); each image is
    converted with :func:`to_uint8` and measured. Returns ``{"psnr", "ssim", "ms_ssim", "score"}``;
    ``ms_ssim`` and ``score`` are ``None`` when the images are smaller than 176 px.
    """
    rows = per_image_quality(pred, target)
    return {key: _mean([row[key] for row in rows]) for key in ("psnr", "ssim", "ms_ssim", "score")}


class QualityMeter:
    """Running means of per-image quality over an evaluation loop.

    ``update(pred, target)`` takes NCHW float batches in [0, 1] like :func:`batch_quality`.
    ``result()`` gives ``{"psnr", "ssim", "ms_ssim", "score", "count", "ms_ssim_count"}``: means over
    all images seen (``count``); ``ms_ssim`` and ``score`` average only the ``ms_ssim_count`` images big
    enough for MS-SSIM and are ``None`` when there were none. All means are ``None`` before any update.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._sums = {"psnr": 0.0, "ssim": 0.0, "ms_ssim": 0.0, "score": 0.0}
        self.count = 0
        self.ms_ssim_count = 0

    def update(self, pred: np.ndarray, target: np.ndarray) -> dict[str, float | None]:
        """Add a batch; returns that batch's own means (as :func:`batch_quality`)."""
        rows = per_image_quality(pred, target)
        for row in rows:
            self._sums["psnr"] += row["psnr"]
            self._sums["ssim"] += row["ssim"]
            if row["ms_ssim"] is not None:
                self._sums["ms_ssim"] += row["ms_ssim"]
                self._sums["score"] += row["score"]
                self.ms_ssim_count += 1
        self.count += len(rows)
        return {key: _mean([row[key] for row in rows]) for key in ("psnr", "ssim", "ms_ssim", "score")}

    def result(self) -> dict[str, float | int | None]:
        n, n_ms = self.count, self.ms_ssim_count
        return {
            "psnr": self._sums["psnr"] / n if n else None,
            "ssim": self._sums["ssim"] / n if n else None,
            "ms_ssim": self._sums["ms_ssim"] / n_ms if n_ms else None,
            "score": self._sums["score"] / n_ms if n_ms else None,
            "count": n,
            "ms_ssim_count": n_ms,
        }


# ---------------------------------------------------------------------------------------------
# Harm and removal: what happened to the print and to the handwriting, from the truth's ink masks

PRINT_INK_DELTA = 60.0  # a truth pixel this many grey levels darker than the paper is printed ink
HW_INK_DELTA = 24.0  # a handwriting pixel whose input differs this much from the truth carries ink
PAPER_PERCENTILE = 95.0
HW_MARGIN = 2  # px around the handwriting mask left out of the print count (stroke rims, blur)
# Colour print (photographs, charts, stamps): truth pixels this saturated and this bright (HSV, 0-255).
# Photographs are mostly lighter than print ink, so the print count misses their harm.
COLOUR_SATURATION = 64
COLOUR_VALUE = 64


def ink_counts(image_u8: np.ndarray, out_u8: np.ndarray, gt_u8: np.ndarray, mask_u8: np.ndarray) -> dict[str, int]:
    """Pixel counts behind :func:`ink_shares` for one page (they add up over a dataset).

    - **Print ink**: truth pixels at least :data:`PRINT_INK_DELTA` grey levels (luma) darker than the
      paper (the truth's 95th-percentile luma), more than :data:`HW_MARGIN` px away from the
      handwriting mask. One *survives* when the output keeps at least half of its darkness.
    - **Handwriting ink**: mask pixels where the input differs from the truth by at least
      :data:`HW_INK_DELTA` (largest channel difference). One is *removed* when the output's
      difference from the truth is under half of the input's.
    - **Handwriting over print** (``hw_over_print_*``): those of them whose truth is printed ink
      (as dark as print ink, wherever it is). Removing one means putting the print back, not paper.
    - **Colour print** (``colour_*``): truth pixels of at least :data:`COLOUR_SATURATION` and
      :data:`COLOUR_VALUE` (HSV), as far from the handwriting as print ink. One is *kept* when every
      channel of the output stays within :data:`HW_INK_DELTA` of the truth.
    """
    _check_pair(image_u8, gt_u8)
    _check_pair(out_u8, gt_u8)
    mask = np.asarray(mask_u8) > 127
    if mask.shape != gt_u8.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match the page {gt_u8.shape[:2]}")
    gt_l, out_l = _luma(gt_u8), _luma(out_u8)
    paper = float(np.percentile(gt_l, PAPER_PERCENTILE))
    dark = paper - gt_l
    near_hw = cv2.dilate(mask.astype(np.uint8), np.ones((2 * HW_MARGIN + 1,) * 2, np.uint8)) > 0
    printed = (dark >= PRINT_INK_DELTA) & ~near_hw
    kept = printed & (paper - out_l >= 0.5 * dark)
    gt_i = gt_u8.astype(np.int16)
    e_in = np.abs(image_u8.astype(np.int16) - gt_i).reshape(*mask.shape, -1).max(axis=-1)
    e_out = np.abs(out_u8.astype(np.int16) - gt_i).reshape(*mask.shape, -1).max(axis=-1)
    inked = mask & (e_in >= HW_INK_DELTA)
    removed = inked & (2 * e_out < e_in)
    over_print = inked & (dark >= PRINT_INK_DELTA)
    hsv = cv2.cvtColor(gt_u8, cv2.COLOR_RGB2HSV)
    colour = (hsv[..., 1] >= COLOUR_SATURATION) & (hsv[..., 2] >= COLOUR_VALUE) & ~near_hw
    colour_kept = colour & (e_out < HW_INK_DELTA)
    return {"print_pixels": int(printed.sum()), "print_kept": int(kept.sum()),
            "hw_pixels": int(inked.sum()), "hw_removed": int(removed.sum()),
            "hw_over_print_pixels": int(over_print.sum()), "hw_over_print_removed": int((over_print & removed).sum()),
            "colour_pixels": int(colour.sum()), "colour_kept": int(colour_kept.sum())}


def ink_shares(counts: dict[str, int]) -> dict[str, float | None]:
    """``{"print_kept", "colour_kept", "hw_removed"}`` as shares (0-1) of counts from :func:`ink_counts`
    (summed over pages, so large pages weigh more), and the handwriting split by what lies under it:
    ``hw_over_print`` (the share of its ink over print), ``hw_removed_over_print``,
    ``hw_removed_over_paper``; ``None`` where there was no such ink."""
    def share(part: float, whole: float) -> float | None:
        return part / whole if whole else None

    c = {k: counts.get(k, 0) for k in ("print_pixels", "print_kept", "hw_pixels", "hw_removed",
                                       "hw_over_print_pixels", "hw_over_print_removed", "colour_pixels",
                                       "colour_kept")}
    over, over_removed = c["hw_over_print_pixels"], c["hw_over_print_removed"]
    return {"print_kept": share(c["print_kept"], c["print_pixels"]),
            "colour_kept": share(c["colour_kept"], c["colour_pixels"]),
            "hw_removed": share(c["hw_removed"], c["hw_pixels"]),
            "hw_over_print": share(over, c["hw_pixels"]),
            "hw_removed_over_print": share(over_removed, over),
            "hw_removed_over_paper": share(c["hw_removed"] - over_removed, c["hw_pixels"] - over)}


ERROR_REGIONS = ("missed", "unpainted", "beside", "away")


def error_regions(out_u8: np.ndarray, gt_u8: np.ndarray, mask_u8: np.ndarray, found_u8: np.ndarray) -> dict[str, float]:
    """Where the squared error of ``out`` against the truth sits on one page (sums over pixels and
    channels, so they add up over a dataset and to the page's total):

    - ``missed``: handwriting (``mask``) where the predicted mask ``found`` is under half;
    - ``unpainted``: handwriting the predicted mask found, not painted back to the truth;
    - ``beside``: within :data:`HW_MARGIN` px of the handwriting (stroke rims, blur);
    - ``away``: everything else: print and paper changed where there was no handwriting.
    """
    _check_pair(out_u8, gt_u8)
    mask = np.asarray(mask_u8) > 127
    found = np.asarray(found_u8) >= 128
    if mask.shape != gt_u8.shape[:2] or found.shape != mask.shape:
        raise ValueError(f"masks {mask.shape} and {found.shape} do not match the page {gt_u8.shape[:2]}")
    sq = np.square(out_u8.astype(np.float64) - gt_u8.astype(np.float64))
    sq = sq.reshape(*mask.shape, -1).sum(axis=-1)
    near = cv2.dilate(mask.astype(np.uint8), np.ones((2 * HW_MARGIN + 1,) * 2, np.uint8)) > 0
    return {"missed": float(sq[mask & ~found].sum()), "unpainted": float(sq[mask & found].sum()),
            "beside": float(sq[near & ~mask].sum()), "away": float(sq[~near].sum())}


def shares(sums: dict[str, float]) -> dict[str, float | None]:
    """Each sum as a share of their total (``None`` each when the total is 0)."""
    total = sum(sums.values())
    return {k: (v / total if total > 0 else None) for k, v in sums.items()}


def removal_by_label(image_u8: np.ndarray, out_u8: np.ndarray, gt_u8: np.ndarray, mask_u8: np.ndarray,
                     label: np.ndarray, names: list[str]) -> dict[str, dict[str, int]]:
    """:func:`ink_counts`'s handwriting counts split by a label image (value ``i + 1`` = ``names[i]``,
    0 = none): ``{name: {"hw_pixels", "hw_removed"}}`` for the labels present on the page."""
    label = np.asarray(label)
    if label.shape != gt_u8.shape[:2]:
        raise ValueError(f"label {label.shape} does not match the page {gt_u8.shape[:2]}")
    out = {}
    for value in np.unique(label[label > 0]):
        if value > len(names):
            raise ValueError(f"label value {value} has no name ({len(names)} names)")
        part = np.where(label == value, np.asarray(mask_u8), 0).astype(np.uint8)
        c = ink_counts(image_u8, out_u8, gt_u8, part)
        out[names[int(value) - 1]] = {"hw_pixels": c["hw_pixels"], "hw_removed": c["hw_removed"]}
    return out
