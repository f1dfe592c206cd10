"""Paired datasets on disk: the layout, reading and checking the pairs (the batches cut from them
are ``seghw.data.batches``).

Layout (the one handwriting-erasure datasets ship with)::

    DIR/images/NAME.jpg|jpeg|png   page with handwriting
    DIR/gts/NAME.jpg|jpeg|png      the same page without it (same size)
    DIR/masks/NAME.png             optional handwriting mask (white = handwriting)
    DIR/val/...                    optional validation set with the same layout

Loading decodes every image once and keeps uint8 arrays in memory (about 7 bytes per pixel per pair
for image + gt + mask: a 1240x1754 page costs ~15 MB, so ~1000 pages need ~15 GB). That suits the
small datasets this trainer is meant for and makes every epoch after the first free of decoding.
A missing mask is derived as ``max over channels |image - gt| > mask_threshold`` dilated by one
pixel (3x3), which catches faint anti-aliased ink edges the threshold alone misses.
Images smaller than ``min_size`` (the crop) are rejected rather than padded, naming the files:
padding would silently train on border pixels.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from seghw.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_MASK_THRESHOLD = 25
_LIST_FIRST = 5


@dataclass(frozen=True)
class Pair:
    name: str
    image: Path
    gt: Path
    mask: Path | None


@dataclass
class PairSet:
    """Decoded pairs: ``images``/``gts`` HxWx3 uint8 RGB, ``masks`` HxW uint8 0/255."""

    names: list[str] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    gts: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)

    def append(self, name: str, image: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> None:
        self.names.append(name)
        self.images.append(image)
        self.gts.append(gt)
        self.masks.append(mask)


@dataclass
class Split:
    train: PairSet
    val: PairSet
    skipped: list[str]  # unreadable files, relative to the data folder
    source: str  # where the validation pairs came from, for logs


def name_list(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_FIRST])
    more = len(items) - _LIST_FIRST
    return shown + (f" and {more} more" if more > 0 else "")


def _index(folder: Path, root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    clashes: list[str] = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        if p.stem in found:
            clashes.append(f"{found[p.stem].relative_to(root)} and {p.relative_to(root)}")
            continue
        found[p.stem] = p
    if clashes:
        raise DataError(f"in {root}: several files share one name: {name_list(clashes)}")
    return found


def scan_pairs(root: Path) -> list[Pair]:
    """Pairs of ``root`` sorted by name; unpaired files or a wrong layout raise :class:`DataError`."""
    root = Path(root)
    expected = (
        f"expected {root}/images/NAME.jpg (or .png) with {root}/gts/NAME.png (or .jpg), "
        f"optionally {root}/masks/NAME.png"
    )
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    for sub in ("images", "gts"):
        if not (root / sub).is_dir():
            raise DataError(f"no {sub}/ folder in {root}: {expected}")
    images = _index(root / "images", root)
    gts = _index(root / "gts", root)
    masks = _index(root / "masks", root) if (root / "masks").is_dir() else {}
    if not images and not gts:
        raise DataError(f"no .jpg/.jpeg/.png files in {root}/images and {root}/gts: {expected}")
    no_gt = [str(images[n].relative_to(root)) for n in images if n not in gts]
    no_image = [str(gts[n].relative_to(root)) for n in gts if n not in images]
    if no_gt or no_image:
        parts = []
        if no_gt:
            parts.append(f"{len(no_gt)} image(s) without a gt in gts/: {name_list(no_gt)}")
        if no_image:
            parts.append(f"{len(no_image)} gt(s) without an image in images/: {name_list(no_image)}")
        raise DataError(f"unpaired files in {root}: " + "; ".join(parts))
    return [Pair(n, images[n], gts[n], masks.get(n)) for n in sorted(images)]


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)  # phone photos: pixels as the user sees them
        return np.asarray(im.convert("RGB")).copy()


def read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return np.where(np.asarray(im.convert("L")) > 127, 255, 0).astype(np.uint8)


def derive_mask(image: np.ndarray, gt: np.ndarray, threshold: int = DEFAULT_MASK_THRESHOLD) -> np.ndarray:
    """Handwriting mask from where the image and its gt differ, dilated by one pixel."""
    diff = np.abs(image.astype(np.int16) - gt.astype(np.int16)).max(axis=2)
    mask = np.where(diff > threshold, 255, 0).astype(np.uint8)
    return cv2.dilate(mask, np.ones((3, 3), np.uint8))


def _decode(pair: Pair, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | tuple[Path, Exception]:
    current = pair.image
    try:
        image = _read_rgb(pair.image)
        current = pair.gt
        gt = _read_rgb(pair.gt)
        mask = None
        if pair.mask is not None:
            current = pair.mask
            mask = read_mask(pair.mask)
    except Exception as exc:  # decoders raise assorted types (OSError, SyntaxError, ValueError...)
        return current, exc
    if mask is None and image.shape == gt.shape:
        mask = derive_mask(image, gt, threshold)
    return image, gt, mask


def size_text(a: np.ndarray) -> str:
    return f"{a.shape[1]}x{a.shape[0]}"


def _load(pairs: list[Pair], root: Path, min_size: int, threshold: int, skipped: list[str]) -> PairSet:
    out = PairSet()
    small: list[str] = []
    # Decoding releases the GIL in Pillow's codecs: a few threads cut loading time on multi-core hosts.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda p: _decode(p, threshold), pairs))
    for pair, res in zip(pairs, results, strict=True):
        if isinstance(res[0], Path):
            bad, exc = res
            rel = str(Path(bad).relative_to(root))
            reason = " ".join(str(exc).split()) or type(exc).__name__
            warnings.warn(f"skipping unreadable {rel} ({reason}); its pair is left out", stacklevel=3)
            skipped.append(rel)
            continue
        image, gt, mask = res
        if image.shape != gt.shape:
            raise DataError(
                f"size mismatch: {pair.image.relative_to(root)} is {size_text(image)} "
                f"but {pair.gt.relative_to(root)} is {size_text(gt)}"
            )
        if mask.shape != image.shape[:2]:
            raise DataError(
                f"size mismatch: {pair.mask.relative_to(root)} is {size_text(mask)} "
                f"but {pair.image.relative_to(root)} is {size_text(image)}"
            )
        if min(image.shape[:2]) < min_size:
            small.append(f"{pair.image.relative_to(root)} ({size_text(image)})")
            continue
        out.append(pair.name, image, gt, mask)
    if small:
        raise DataError(
            f"{len(small)} image(s) in {root} smaller than the {min_size} px crop: {name_list(small)}; "
            "use a smaller crop size or remove them"
        )
    return out


def val_count(n: int, val_fraction: float) -> int:
    """Held-out pairs for a fraction: at least one when there are two or more pairs, never all."""
    if val_fraction <= 0 or n < 2:
        return 0
    return int(min(n - 1, max(1, round(n * val_fraction))))


def load_split(
    root: Path,
    val_fraction: float = 0.1,
    seed: int = 0,
    min_size: int = 1,
    mask_threshold: int = DEFAULT_MASK_THRESHOLD,
) -> Split:
    """Decode ``root`` into train and validation pairs (``root/val`` if present, else a seeded fraction).

    Unreadable files are skipped with a warning and listed in ``Split.skipped``; size mismatches,
    images smaller than ``min_size`` and a dataset with nothing usable raise :class:`DataError`.
    """
    root = Path(root)
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val fraction must be in [0, 1) (got {val_fraction})")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0 (got {seed})")
    pairs = scan_pairs(root)
    val_dir = root / "val"
    if val_dir.is_dir():
        train_pairs, val_pairs = pairs, scan_pairs(val_dir)
        source = f"{val_dir} ({len(val_pairs)} pairs)"
    else:
        n_val = val_count(len(pairs), val_fraction)
        held = set(np.random.default_rng(seed).permutation(len(pairs))[:n_val].tolist())
        train_pairs = [p for i, p in enumerate(pairs) if i not in held]
        val_pairs = [p for i, p in enumerate(pairs) if i in held]
        source = f"{n_val} of {len(pairs)} pairs held out (val fraction {val_fraction:g}, seed {seed})"
    skipped: list[str] = []
    train = _load(train_pairs, root, min_size, mask_threshold, skipped)
    val = _load(val_pairs, root, min_size, mask_threshold, skipped)
    if not len(train):
        raise DataError(
            f"no usable training pairs in {root}: all {len(train_pairs)} are unreadable ({name_list(skipped)})"
        )
    return Split(train, val, skipped, source)
