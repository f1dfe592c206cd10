from __future__ import annotations

import math

import numpy as np
import pytest

from seghw import metrics as m

RNG_SEED = 1234


def _textured(shape: tuple[int, ...], seed: int = RNG_SEED) -> np.ndarray:
    """A smooth-plus-detail test image that stays inside 20-235, so offsets and noise do not clip."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    img = base[..., None] + rng.normal(0, 12, shape if len(shape) == 3 else shape + (1,))
    return np.clip(np.rint(img), 20, 235).astype(np.uint8).reshape(shape)


def _add_noise(img: np.ndarray, sigma: float, seed: int = 7) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, img.shape)
    return np.clip(np.rint(img + noise), 0, 255).astype(np.uint8)


# An independent SSIM: explicit windows and weights, no OpenCV filtering.
def _gauss_window() -> np.ndarray:
    r = np.arange(m.WINDOW) - m.WINDOW // 2
    g = np.exp(-(r**2) / (2 * m.SIGMA**2))
    g /= g.sum()
    return np.outer(g, g)


def _reference_terms(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    win = _gauss_window()
    xs = np.lib.stride_tricks.sliding_window_view(x, win.shape)
    ys = np.lib.stride_tricks.sliding_window_view(y, win.shape)
    mx = np.einsum("ijkl,kl->ij", xs, win)
    my = np.einsum("ijkl,kl->ij", ys, win)
    vx = np.einsum("ijkl,kl->ij", (xs - mx[..., None, None]) ** 2, win)
    vy = np.einsum("ijkl,kl->ij", (ys - my[..., None, None]) ** 2, win)
    cxy = np.einsum("ijkl,kl->ij", (xs - mx[..., None, None]) * (ys - my[..., None, None]), win)
    lum = (2 * mx * my + m.C1) / (mx**2 + my**2 + m.C1)
    cs = (2 * cxy + m.C2) / (vx + vy + m.C2)
    return float(np.mean(lum * cs)), float(np.mean(cs))


def _reference_luma(img: np.ndarray) -> np.ndarray:
    img = img.astype(np.float64)
    return 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]


def _reference_ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    x, y = _reference_luma(a), _reference_luma(b)
    value = 1.0
    for scale, weight in enumerate(m.MS_SSIM_WEIGHTS):
        full, cs = _reference_terms(x, y)
        value *= max(full if scale == 4 else cs, 0.0) ** weight
        h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
        x = x[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        y = y[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return value


def test_identical_images_hit_the_caps():
    img = _textured((192, 200, 3))
    assert m.psnr(img, img) == m.PSNR_CAP == 100.0
    assert m.ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert m.ms_ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert m.score(m.psnr(img, img), m.ms_ssim(img, img)) == pytest.approx(1.0)


def test_psnr_of_a_uniform_offset_is_exact():
    target = _textured((64, 80, 3))
    pred = (target.astype(np.int16) + 10).astype(np.uint8)
    assert m.psnr(pred, target) == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)
    assert m.psnr(target, pred) == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)


def test_psnr_is_capped_for_a_single_tiny_difference():
    target = np.full((512, 512, 3), 128, np.uint8)
    pred = target.copy()
    pred[0, 0, 0] = 129
    assert m.psnr(pred, target) == m.PSNR_CAP


@pytest.mark.parametrize("sigma", [3.0, 8.0, 20.0])
def test_psnr_of_gaussian_noise_matches_sigma(sigma):
    target = np.full((256, 256, 3), 128, np.uint8)
    pred = _add_noise(target, sigma)
    # Rounding to integers adds a variance of 1/12 on top of sigma^2.
    expected = 20 * math.log10(255 / math.sqrt(sigma**2 + 1 / 12))
    assert m.psnr(pred, target) == pytest.approx(expected, abs=0.05)


def test_ssim_and_ms_ssim_fall_as_noise_grows():
    target = _textured((192, 192, 3))
    ssims, ms_ssims = [], []
    for sigma in (1, 4, 10, 25, 50):
        pred = _add_noise(target, sigma)
        ssims.append(m.ssim(pred, target))
        ms_ssims.append(m.ms_ssim(pred, target))
    assert all(a > b for a, b in zip(ssims, ssims[1:], strict=False)), ssims
    assert all(a > b for a, b in zip(ms_ssims, ms_ssims[1:], strict=False)), ms_ssims
    assert 0 < ssims[-1] < ssims[0] < 1


def test_ssim_matches_an_explicit_window_implementation():
    target = _textured((40, 47, 3))
    pred = _add_noise(target, 15)
    expected = _reference_terms(_reference_luma(pred), _reference_luma(target))[0]
    assert m.ssim(pred, target) == pytest.approx(expected, abs=1e-10)


def test_ms_ssim_matches_an_explicit_window_implementation():
    target = _textured((181, 190, 3))  # odd side: a row/column is dropped while downsampling
    pred = _add_noise(target, 12)
    assert m.ms_ssim(pred, target) == pytest.approx(_reference_ms_ssim(pred, target), abs=1e-10)


def test_constant_images_give_the_analytic_luminance_term():
    a, b = 100.0, 110.0
    lum = (2 * a * b + m.C1) / (a * a + b * b + m.C1)
    pa = np.full((176, 176, 3), int(a), np.uint8)
    pb = np.full((176, 176, 3), int(b), np.uint8)
    assert m.ssim(pa, pb) == pytest.approx(lum, abs=1e-9)
    # Contrast-structure is exactly 1 at every scale, so only scale 5's luminance counts.
    assert m.ms_ssim(pa, pb) == pytest.approx(lum ** m.MS_SSIM_WEIGHTS[-1], abs=1e-9)


def test_ms_ssim_needs_176_px_on_both_sides():
    assert m.MS_SSIM_MIN_SIDE == 176
    big = _textured((176, 300, 3))
    assert m.ms_ssim(big, big) == pytest.approx(1.0)
    for shape in ((175, 300, 3), (300, 175, 3), (64, 64, 3)):
        small = _textured(shape)
        assert m.ms_ssim(small, small) is None
        assert m.score(m.psnr(small, small), m.ms_ssim(small, small)) is None


def test_score_formula():
    assert m.score(40.0, 0.9) == pytest.approx(0.5 * 0.4 + 0.5 * 0.9)
    assert m.score(38.7, 0.98) == pytest.approx(0.6835)
    assert m.score(40.0, None) is None
    assert m.score(None, 0.9) is None


def test_luma_is_used_for_ssim():
    target = _textured((64, 64, 3))
    gray = np.repeat(np.rint(_reference_luma(target)).astype(np.uint8)[..., None], 3, axis=2)
    single = gray[..., :1]
    assert m.ssim(gray, gray) == pytest.approx(m.ssim(single, single))
    # The same noise hurts far less in blue (weight 0.114) than in green (0.587).
    noise = _add_noise(gray, 25)
    blue_noisy, green_noisy = gray.copy(), gray.copy()
    blue_noisy[..., 2] = noise[..., 2]
    green_noisy[..., 1] = noise[..., 2]
    assert m.psnr(blue_noisy, gray) == pytest.approx(m.psnr(green_noisy, gray))
    assert m.ssim(blue_noisy, gray) > m.ssim(green_noisy, gray) + 0.1


def test_to_uint8_rounds_clips_and_drops_nan():
    x = np.array([-0.5, 0.0, 0.5 / 255, 1.6 / 255, 0.5, 1.0, 1.5, np.nan], dtype=np.float32)
    assert m.to_uint8(x).tolist() == [0, 0, 0, 2, 128, 255, 255, 0]
    assert m.to_uint8(x).dtype == np.uint8


def test_batch_quality_averages_per_image_values():
    rng = np.random.default_rng(3)
    target = rng.random((3, 3, 180, 184), dtype=np.float32)
    pred = np.clip(target + rng.normal(0, [[[[0.01]]], [[[0.05]]], [[[0.1]]]], target.shape), 0, 1)
    result = m.batch_quality(pred, target)
    p_u8 = m.to_uint8(pred).transpose(0, 2, 3, 1)
    t_u8 = m.to_uint8(target).transpose(0, 2, 3, 1)
    psnrs = [m.psnr(p, t) for p, t in zip(p_u8, t_u8, strict=True)]
    ms = [m.ms_ssim(p, t) for p, t in zip(p_u8, t_u8, strict=True)]
    assert result["psnr"] == pytest.approx(np.mean(psnrs))
    assert result["ssim"] == pytest.approx(np.mean([m.ssim(p, t) for p, t in zip(p_u8, t_u8, strict=True)]))
    assert result["ms_ssim"] == pytest.approx(np.mean(ms))
    assert result["score"] == pytest.approx(m.score(np.mean(psnrs), np.mean(ms)))
    # Mean of per-image PSNR, not PSNR of the pooled error.
    pooled = 10 * math.log10(255**2 / np.mean((p_u8.astype(float) - t_u8) ** 2))
    assert abs(result["psnr"] - pooled) > 0.5


def test_batch_quality_small_images_have_no_ms_ssim():
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    result = m.batch_quality(x, x)
    assert result == {"psnr": 100.0, "ssim": pytest.approx(1.0), "ms_ssim": None, "score": None}


def test_quality_meter_equals_one_big_batch():
    rng = np.random.default_rng(5)
    target = rng.random((5, 3, 176, 176), dtype=np.float32)
    pred = np.clip(target + rng.normal(0, 0.05, target.shape).astype(np.float32), 0, 1)
    meter = m.QualityMeter()
    assert meter.result()["psnr"] is None and meter.result()["count"] == 0
    meter.update(pred[:2], target[:2])
    meter.update(pred[2:], target[2:])
    got, whole = meter.result(), m.batch_quality(pred, target)
    assert got["count"] == 5 and got["ms_ssim_count"] == 5
    for key in ("psnr", "ssim", "ms_ssim", "score"):
        assert got[key] == pytest.approx(whole[key])


def test_quality_meter_with_mixed_sizes():
    rng = np.random.default_rng(6)
    meter = m.QualityMeter()
    big = rng.random((1, 3, 176, 176), dtype=np.float32)
    small = rng.random((2, 3, 40, 40), dtype=np.float32)
    meter.update(big, big)
    meter.update(small, np.clip(small + 0.1, 0, 1))
    got = meter.result()
    assert got["count"] == 3 and got["ms_ssim_count"] == 1
    assert got["ms_ssim"] == pytest.approx(1.0) and got["score"] == pytest.approx(1.0)
    assert got["psnr"] < 100.0


@pytest.mark.parametrize(
    ("pred", "target", "message"),
    [
        (np.zeros((20, 20, 3), np.float32), np.zeros((20, 20, 3), np.uint8), "uint8"),
        (np.zeros((20, 20, 3), np.uint8), np.zeros((20, 21, 3), np.uint8), "differ in shape"),
        (np.zeros((20, 20, 4), np.uint8), np.zeros((20, 20, 4), np.uint8), "HxW"),
    ],
)
def test_bad_inputs_name_the_problem(pred, target, message):
    with pytest.raises(ValueError, match=message):
        m.psnr(pred, target)


def test_bad_batches_name_the_problem():
    with pytest.raises(ValueError, match="NCHW"):
        m.batch_quality(np.zeros((2, 32, 32, 3)), np.zeros((2, 32, 32, 3)))
    with pytest.raises(ValueError, match="differ in shape"):
        m.batch_quality(np.zeros((2, 3, 32, 32)), np.zeros((2, 3, 32, 33)))
    with pytest.raises(ValueError, match=">= 11"):
        m.ssim(np.zeros((10, 30), np.uint8), np.zeros((10, 30), np.uint8))


# ------------------------------------------------------------------------------------------------
# Print kept and handwriting removed


def _printed_page() -> tuple[np.ndarray, np.ndarray]:
    """A 64x64 white page with a black printed bar (rows 10-19) and a blue stroke mask (rows 40-43)."""
    gt = np.full((64, 64, 3), 240, np.uint8)
    gt[10:20, 8:56] = 20
    mask = np.zeros((64, 64), np.uint8)
    mask[40:44, 8:56] = 255
    return gt, mask


def test_ink_counts_on_known_arrays():
    gt, mask = _printed_page()
    image = gt.copy()
    image[40:44, 8:56] = (40, 60, 200)  # blue handwriting over paper
    counts = m.ink_counts(image, image, gt, mask)  # the identity
    assert counts == {"print_pixels": 480, "print_kept": 480, "hw_pixels": 192, "hw_removed": 0,
                      "hw_over_print_pixels": 0, "hw_over_print_removed": 0, "colour_pixels": 0, "colour_kept": 0}
    erased = gt.copy()
    erased[10:20, 8:32] = 240  # half the print painted over as paper, every stroke removed
    counts = m.ink_counts(image, erased, gt, mask)
    assert counts == {"print_pixels": 480, "print_kept": 240, "hw_pixels": 192, "hw_removed": 192,
                      "hw_over_print_pixels": 0, "hw_over_print_removed": 0, "colour_pixels": 0, "colour_kept": 0}
    assert m.ink_shares(counts) == {"print_kept": 0.5, "colour_kept": None, "hw_removed": 1.0, "hw_over_print": 0.0,
                                    "hw_removed_over_print": None, "hw_removed_over_paper": 1.0}


def test_handwriting_over_print_is_removed_only_by_putting_the_print_back():
    gt = np.full((64, 64, 3), 240, np.uint8)
    gt[10:20, 8:56] = 150  # grey print: dark enough to count, light enough for ink to show on it
    mask = np.zeros((64, 64), np.uint8)
    mask[8:22, 20:28] = 255  # a stroke crossing the printed bar: 2 rows over paper on each side
    image = gt.copy()
    image[8:22, 20:28] = (gt[8:22, 20:28] * np.array([0.2, 0.3, 0.9])).astype(np.uint8)  # blue ink, multiplied
    painted = image.copy()
    painted[8:22, 20:28] = 240  # paper everywhere the mask is: right over paper, wrong over print
    counts = m.ink_counts(image, painted, gt, mask)
    assert counts["hw_pixels"] == 112 and counts["hw_over_print_pixels"] == 80
    assert counts["hw_removed"] == 32 and counts["hw_over_print_removed"] == 0
    shares = m.ink_shares(counts)
    assert shares["hw_over_print"] == 80 / 112
    assert shares["hw_removed_over_paper"] == 1.0 and shares["hw_removed_over_print"] == 0.0
    restored = painted.copy()
    restored[10:20, 20:28] = 150  # the print put back under the stroke
    counts = m.ink_counts(image, restored, gt, mask)
    assert counts["hw_removed"] == 112 and counts["hw_over_print_removed"] == 80


def test_print_kept_needs_half_the_darkness_and_ignores_the_strokes_rims():
    gt, mask = _printed_page()
    faded = gt.copy()
    faded[10:20, 8:56] = 240 - 0.4 * 220  # 40 % of the bar's darkness left
    assert m.ink_counts(gt, faded, gt, mask)["print_kept"] == 0
    faded[10:20, 8:56] = 240 - 0.6 * 220
    assert m.ink_counts(gt, faded, gt, mask)["print_kept"] == 480
    under = gt.copy()
    under[38:46, 8:56] = 20  # print within 2 px of the handwriting is not counted as print
    assert m.ink_counts(under, under, under, mask)["print_pixels"] == 480


def test_colour_print_is_kept_only_when_its_colour_comes_back():
    gt, mask = _printed_page()
    gt[24:34, 8:40] = (230, 170, 140)  # a light skin tone of a photograph: lighter than print ink
    gt[24:34, 40:56] = (60, 110, 200)  # a blue chart bar, as blue as a pen
    gt[38:46, 8:56] = (60, 110, 200)  # colour within 2 px of the handwriting is not counted
    counts = m.ink_counts(gt, gt, gt, mask)
    assert counts["print_pixels"] == 480 + 160  # the bar is dark enough for print, the face is not
    assert counts["colour_pixels"] == counts["colour_kept"] == 480
    painted = gt.copy()
    painted[24:34, 8:24] = 240  # half the face painted over as paper
    painted[24:34, 24:40] = (215, 160, 135)  # a slight shift (under 24 levels) is kept
    counts = m.ink_counts(gt, painted, gt, mask)
    assert (counts["colour_pixels"], counts["colour_kept"]) == (480, 320)
    assert m.ink_shares(counts)["colour_kept"] == 320 / 480
    assert counts["print_kept"] == counts["print_pixels"]  # the print count does not see the face


def test_ink_shares_without_ink_are_none():
    page = np.full((32, 32, 3), 230, np.uint8)
    counts = m.ink_counts(page, page, page, np.zeros((32, 32), np.uint8))
    assert counts["print_pixels"] == counts["hw_pixels"] == 0
    assert m.ink_shares(counts) == {"print_kept": None, "colour_kept": None, "hw_removed": None, "hw_over_print": None,
                                    "hw_removed_over_print": None, "hw_removed_over_paper": None}
    with pytest.raises(ValueError, match="mask"):
        m.ink_counts(page, page, page, np.zeros((16, 32), np.uint8))


def test_error_regions_split_the_squared_error_where_it_sits():
    gt, mask = _printed_page()
    out = gt.copy()
    out[40:44, 8:32] = (30, 30, 30)  # strokes left (10 levels off per channel), half of them unseen
    out[40:44, 32:56] = (250, 240, 240)  # the other half found and painted, 10 levels off in red
    out[44, 8:56] = 230  # the row just below the strokes: 10 levels off per channel
    out[10, 8:56] = 30  # the print's top row, 10 levels off per channel
    found = np.zeros((64, 64), np.uint8)
    found[40:44, 32:56] = 255
    e = m.error_regions(out, gt, mask, found)
    assert e["missed"] == 4 * 24 * 3 * 210.0**2
    assert e["unpainted"] == 4 * 24 * 10.0**2
    assert e["beside"] == 48 * 3 * 10.0**2
    assert e["away"] == 48 * 3 * 10.0**2
    shares = m.shares(e)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert m.shares(m.error_regions(gt, gt, mask, found)) == dict.fromkeys(m.ERROR_REGIONS)
    with pytest.raises(ValueError, match="masks"):
        m.error_regions(gt, gt, mask, found[:32])


def test_removal_by_label_splits_the_handwriting_counts():
    gt, mask = _printed_page()
    image = gt.copy()
    image[40:44, 8:56] = (40, 60, 200)
    out = image.copy()
    out[40:44, 8:20] = gt[40:44, 8:20]  # the first 12 columns removed
    label = np.zeros((64, 64), np.uint8)
    label[40:44, 8:32], label[40:44, 32:56] = 1, 3
    by = m.removal_by_label(image, out, gt, mask, label, ["mnist in blue", "lasa in blue", "dkg in red"])
    assert by == {"mnist in blue": {"hw_pixels": 96, "hw_removed": 48},
                  "dkg in red": {"hw_pixels": 96, "hw_removed": 0}}
    whole = m.ink_counts(image, out, gt, mask)
    assert sum(c["hw_pixels"] for c in by.values()) == whole["hw_pixels"]
    with pytest.raises(ValueError, match="no name"):
        m.removal_by_label(image, out, gt, mask, label, ["one"])
