"""Synthetic handwriting-erasure pairs: a printed page (paper, text, tables) with pen strokes on it.

Each pair is a pure function of its seed (on one machine with the same library versions and fonts):
the page is drawn, ink is composited multiplicatively over it, and both the inked and the clean
page then go through the *same* scan effects (lighting, blur, contrast, noise, JPEG), so the gt
is exactly what the scanner would have produced without the handwriting.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from seghw.atomic import write_atomic, write_json_atomic
from seghw.data.fonts import FontFace, available_fonts, fonts_fingerprint
from seghw.data.handwriting import plan_handwriting, render_ink
from seghw.data.printed import Page, draw_paper, draw_printed
from seghw.errors import ConfigError
from seghw.progress import progress_bar

# Bump whenever the pictures a seed produces change: cached datasets are keyed on it.
# v7: pages above 256 px get the body text sizes of 256-px pages (v5, v6: reverted trials); v11: colour
# photographs and colour diagrams in the print (v8-v10: reverted trials)
GENERATOR_VERSION = 11
MANIFEST = "dataset.json"
MASK_ALPHA_THRESHOLD = 0.08
MIN_SIZE = 16
SCAN_SCALE_SIDE = 256  # px; from this side on, pages hold text at the sizes of 100-300-dpi scans


def body_text_px(rng: np.random.Generator, h: int, w: int) -> int:
    """Body text height: about 13 to 36 px (100-300 dpi) on pages of ``SCAN_SCALE_SIDE`` px and more,
    so that large pages (the ``gpu`` preset's 768 px) show more of a page, not larger letters; smaller
    pages show a fragment at a proportionally smaller scale."""
    side = min(h, w, SCAN_SCALE_SIDE)
    return int(np.clip(side / 12.0 * rng.uniform(0.6, 1.7), 7, 40))


def _size_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """``size`` is one side (square) or ``(height, width)``."""
    if isinstance(size, int | np.integer):
        h = w = int(size)
    else:
        h, w = (int(v) for v in size)
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ConfigError(f"synthetic image size {h}x{w} is too small (at least {MIN_SIZE} px per side)")
    return h, w


def pair_seed(seed: int, index: int) -> int:
    """Seed of pair ``index`` of a dataset: independent of how many pairs the dataset has."""
    if seed < 0 or index < 0:
        raise ConfigError(f"seed and index must be >= 0 (got seed {seed}, index {index})")
    ss = np.random.SeedSequence(seed, spawn_key=(index,))
    return int(ss.generate_state(1, dtype=np.uint64)[0])


# ---------------------------------------------------------------------------------------------
# Scan effects, applied identically to the inked and the clean page


def _scan(rng: np.random.Generator, pages: np.ndarray, text_px: int) -> np.ndarray:
    """``pages``: (2, H, W, 3) float32 in [0, 1] -> (2, H, W, 3) uint8."""
    _, h, w, _ = pages.shape
    if rng.random() < 0.5:  # uneven lighting, as from a phone photo or a scanner lid
        field_ = rng.normal(0, 1, (3, 4)).astype(np.float32)
        field_ = cv2.resize(field_, (w, h), interpolation=cv2.INTER_CUBIC)
        field_ = 1.0 - rng.uniform(0.02, 0.12) * (field_ - field_.min()) / (np.ptp(field_) + 1e-6)
        pages *= field_[None, ..., None]
    if rng.random() < 0.8:
        sigma = rng.uniform(0.25, 0.9) * float(np.clip(text_px / 20.0, 0.35, 1.0))
        for i in range(2):
            pages[i] = cv2.GaussianBlur(pages[i], (0, 0), sigma)
    contrast = rng.uniform(0.88, 1.1)
    bright = rng.uniform(-0.05, 0.04)
    gain = rng.uniform(0.97, 1.03, 3)
    sigma_n = rng.uniform(0.002, 0.022)
    # One noise field for both pages: outside the ink the gt must equal the image pixel for pixel.
    noise = rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(sigma_n * 255)
    noise = noise + rng.standard_normal((h, w, 3), dtype=np.float32) * np.float32(sigma_n * 0.3 * 255)
    noise += ((0.5 - 0.5 * contrast + bright) * gain * 255 + 0.5).astype(np.float32)
    pages *= (contrast * gain * 255).astype(np.float32)
    pages += noise[None]
    out = np.clip(pages, 0, 255, out=pages).astype(np.uint8)
    if rng.random() < 0.75:
        quality = int(rng.integers(55, 96))
        for i in range(2):
            ok, buf = cv2.imencode(".jpg", out[i][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return out


def generate_pair(
    seed: int, size: int | tuple[int, int], *, fonts: Sequence[FontFace] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic pair: ``(image, gt, mask)``.

    ``size`` is the side of a square or ``(height, width)``. ``image`` and ``gt`` are HxWx3 uint8 RGB
    (the same page and scan effects, with and without handwriting); ``mask`` is HxW uint8, 255 where
    handwriting ink has alpha above ``MASK_ALPHA_THRESHOLD``. ``fonts`` defaults to the system's
    fonts (``()`` forces Pillow's bundled font). Small sizes show a fragment of a page at a legible
    scale; large sizes a whole page.
    """
    if seed < 0:
        raise ConfigError(f"seed must be >= 0 (got {seed})")
    h, w = _size_hw(size)
    fonts = available_fonts() if fonts is None else tuple(fonts)
    rng = np.random.default_rng(seed)
    text_px = body_text_px(rng, h, w)
    page = Page(h, w, text_px)
    paper = draw_paper(rng, h, w)
    cov, colour_cov, colour_print = draw_printed(rng, page, fonts)
    print_color = np.full(3, rng.uniform(0.02, 0.25), np.float32) + rng.normal(0, 0.015, 3).astype(np.float32)
    clean = paper * (1.0 - cov[..., None] * (1.0 - np.clip(print_color, 0, 1)))
    # Coloured print (stamps, logos): red, blue or green, the colours of ink too.
    stamp = np.asarray([(0.85, 0.15, 0.15), (0.15, 0.25, 0.75), (0.15, 0.55, 0.25)][int(rng.integers(3))], np.float32)
    clean = clean * (1.0 - colour_cov[..., None] * (1.0 - stamp)) * colour_print
    trans, alpha = render_ink(rng, plan_handwriting(rng, page), h, w)
    for _ in range(5):
        # Small crops may miss every blank and mark: write inside the canvas, a pair needs a mask.
        if np.count_nonzero(alpha > MASK_ALPHA_THRESHOLD) >= 0.002 * h * w:
            break
        more_trans, more_alpha = render_ink(rng, plan_handwriting(rng, page, fallback=True), h, w)
        trans *= more_trans
        np.maximum(alpha, more_alpha, out=alpha)
    pages = np.stack([clean * trans, clean]).astype(np.float32)
    if rng.random() < 0.3:  # a slightly skewed scan: page, its truth and the ink turn together
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-1.5, 1.5), 1.0)
        for i in range(2):
            pages[i] = cv2.warpAffine(pages[i], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        alpha = cv2.warpAffine(alpha, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    image, gt = _scan(rng, pages, text_px)
    mask = np.where(alpha > MASK_ALPHA_THRESHOLD, 255, 0).astype(np.uint8)
    mode = rng.random()
    if mode < 0.15:  # a grey-level scan
        image, gt = (np.repeat(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2) for a in (image, gt))
    elif mode < 0.22:  # binarized, as a fax or a photocopier's text mode
        level = rng.uniform(110, 170)
        image, gt = (np.repeat(np.where(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) > level, 255, 0)
                               .astype(np.uint8)[..., None], 3, axis=2) for a in (image, gt))
        # Ink that the threshold dropped is no longer handwriting to remove.
        changed = cv2.dilate((image[..., 0] != gt[..., 0]).astype(np.uint8), np.ones((3, 3), np.uint8))
        mask = np.where(changed > 0, mask, 0).astype(np.uint8)
    return image, gt, mask


# ---------------------------------------------------------------------------------------------
# Datasets on disk


def _manifest(count: int, size: int, seed: int) -> dict:
    return {
        "kind": "seghw-synthetic",
        "generator_version": GENERATOR_VERSION,
        "count": count,
        "size": size,
        "seed": seed,
        "fonts": fonts_fingerprint(available_fonts()),
    }


def _save(path: Path, array: np.ndarray, fmt: str) -> None:
    img = Image.fromarray(array)
    # Fixed parameters and no metadata: the same seed gives the same bytes. Noisy scans barely
    # compress: zlib level 1 is ~6x faster than the default 6 for ~6% larger files.
    params = {"quality": 90, "subsampling": 2, "optimize": False} if fmt == "JPEG" else {"compress_level": 1}
    write_atomic(path, lambda fh: img.save(fh, format=fmt, **params))


def _write_pair(out: Path, index: int, size: int | tuple[int, int], seed: int) -> None:
    image, gt, mask = generate_pair(pair_seed(seed, index), size)
    name = f"syn_{index:06d}"
    _save(out / "images" / f"{name}.jpg", image, "JPEG")
    _save(out / "gts" / f"{name}.png", gt, "PNG")
    _save(out / "masks" / f"{name}.png", mask, "PNG")


def _write_pairs(out: Path, indices: range, size: int | tuple[int, int], seed: int) -> int:
    for i in indices:
        _write_pair(out, i, size, seed)
    return len(indices)


# Below this many pairs a worker's start-up (importing numpy, OpenCV, PIL, loading fonts: ~1 s)
# costs more than it saves.
PARALLEL_MIN_PAIRS = 256
_CHUNK = 32


def default_workers(count: int) -> int:
    """One process per usable core for large sets, else 1."""
    if count < PARALLEL_MIN_PAIRS:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, count // _CHUNK))


def write_dataset(out: Path, count: int, size: int, seed: int, progress: bool = True,
                  workers: int | None = None) -> Path:
    """Write ``count`` pairs as ``out/images/syn_NNNNNN.jpg``, ``out/gts/*.png``, ``out/masks/*.png``,
    then ``out/dataset.json`` last (a folder without it is incomplete).

    ``workers`` processes share the pairs (default: a process per core for large sets); each pair
    depends only on ``seed`` and its index, so the files are the same bytes however many there are.
    """
    if count < 1:
        raise ConfigError(f"synthetic dataset count must be >= 1 (got {count})")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0 (got {seed})")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1 (got {workers})")
    _size_hw(size)
    out = Path(out)
    (out / MANIFEST).unlink(missing_ok=True)
    for sub in ("images", "gts", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    workers = default_workers(count) if workers is None else workers
    with progress_bar(progress and count >= 20, f"synthetic {_size_label(size)}px", count) as advance:
        if workers == 1:
            for i in range(count):
                _write_pair(out, i, size, seed)
                advance(1)
        else:
            _write_in_processes(out, count, size, seed, workers, advance)
    write_json_atomic(out / MANIFEST, _manifest(count, size, seed))
    return out


def _write_in_processes(out: Path, count: int, size, seed: int, workers: int, advance) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    chunks = [range(start, min(count, start + _CHUNK)) for start in range(0, count, _CHUNK)]

    # spawn, not fork: the caller may have Paddle's threads running, and a forked child would
    # inherit their locks.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_write_pairs, out, chunk, size, seed) for chunk in chunks]
        try:
            for future in as_completed(futures):
                advance(future.result())
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _size_label(size: int | tuple[int, int]) -> str:
    h, w = _size_hw(size)
    return str(h) if h == w else f"{h}x{w}"


def cached_dataset(cache_root: Path, count: int, size: int, seed: int, progress: bool = True) -> Path:
    """``cache_root/synthetic_<count>_<size>_<seed>_v<GENERATOR_VERSION>/``, generated when its manifest
    is missing or differs (an interrupted or stale cache is rewritten)."""
    import json

    out = Path(cache_root) / f"synthetic_{count}_{size}_{seed}_v{GENERATOR_VERSION}"
    try:
        found = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        found = None
    if found == _manifest(count, size, seed):
        return out
    return write_dataset(out, count, size, seed, progress=progress)
