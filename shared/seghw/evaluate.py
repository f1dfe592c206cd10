"""Evaluation tables and full-page inference over files, on top of tiling and metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from seghw.errors import DataError, UserError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def _save_png(path: Path, array: np.ndarray) -> None:
    import io

    from PIL import Image

    from seghw.atomic import write_bytes_atomic

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    write_bytes_atomic(path, buf.getvalue())


LABELS = "sources"  # optional DIR/sources/NAME.png (label per mask pixel) with DIR/sources/labels.json (names)


def read_labels(data: Path) -> tuple[list[str], Path] | None:
    """The names of ``data``'s stroke labels and their folder, when it has them (the real set does)."""
    import json

    folder = Path(data) / LABELS
    try:
        names = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [str(n) for n in names], folder


def read_label(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L")).copy()
    except Exception as exc:
        raise DataError(f"cannot read label image {path}: {exc}") from None


def evaluation_sets(data: Path) -> dict[str, Path]:
    """The sets ``seghw eval --data`` evaluates: ``data`` itself when it holds ``images/``, else each of
    its sub-folders that does, by name (``build/realset`` gives ``print`` and ``written``). A folder
    with neither is left to :func:`seghw.data.dataset.scan_pairs`, whose error names the layout."""
    data = Path(data)
    if (data / "images").is_dir() or not data.is_dir():
        return {data.name: data}
    sets = {sub.name: sub for sub in sorted(data.iterdir()) if sub.is_dir() and (sub / "images").is_dir()}
    return sets or {data.name: data}


def evaluate_dataset(data: Path, predict: Callable | None, window: int = 512, multiple: int = 16,
                     scale: float | None = None, progress: bool = False) -> list[dict]:
    """Quality of the model, the identity and the classical baseline on every pair of ``data``.

    Each row has the means per image of PSNR/SSIM/MS-SSIM/score against the truth, ``psnr_input``
    (PSNR of the output against the input: on print-only pages, where the truth is the input, the
    "no harm" figure) and the shares of printed ink and colour print kept and of handwriting ink
    removed, pooled over the pages (:func:`seghw.metrics.ink_counts`; the mask is ``masks/`` or
    derived from the pair).
    ``error_shares`` says where the squared error sits (:func:`seghw.metrics.error_regions`), and when
    ``data`` labels its strokes (``sources/``) ``hw_removed_by`` gives the removed share per label.
    ``predict=None`` leaves the model out. The model sees each page at ``scale``
    (:func:`seghw.page_scale.predict_page`; ``None``: the page's own print decides). ``progress``
    draws a bar of the pages on a terminal.
    """
    from seghw import baselines, metrics
    from seghw.data.dataset import derive_mask, read_mask, scan_pairs
    from seghw.page_scale import predict_page
    from seghw.progress import progress_bar
    from seghw.tiling import tile_predict

    pairs = scan_pairs(Path(data))
    labels = read_labels(Path(data))
    methods: dict[str, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] = {}
    if predict is not None:
        tile = partial(tile_predict, predict=predict, window=window, overlap=window // 8, multiple=multiple)
        methods["model"] = lambda img: predict_page(img, tile, scale)
    methods["identity"] = baselines.identity
    methods["classical (ink threshold + Telea)"] = baselines.classical
    scores: dict[str, list[dict]] = {name: [] for name in methods}
    counts: dict[str, dict[str, int]] = {name: {} for name in methods}
    errors: dict[str, dict[str, float]] = {name: {} for name in methods}
    by_label: dict[str, dict[str, dict[str, int]]] = {name: {} for name in methods}
    seconds = dict.fromkeys(methods, 0.0)
    with progress_bar(progress, f"eval {Path(data).name}", len(pairs)) as advance:
        for pair in pairs:
            image, gt = read_rgb(pair.image), read_rgb(pair.gt)
            if image.shape != gt.shape:
                raise DataError(f"{pair.image.name}: image {image.shape[:2]} and gt {gt.shape[:2]} differ in size")
            mask = read_mask(pair.mask) if pair.mask is not None else derive_mask(image, gt)
            label = read_label(labels[1] / f"{pair.name}.png") if labels else None
            for name, method in methods.items():
                t0 = time.perf_counter()
                clean, found = method(image)
                seconds[name] += time.perf_counter() - t0
                p = metrics.psnr(clean, gt)
                ms = metrics.ms_ssim(clean, gt)
                scores[name].append({"psnr": p, "ssim": metrics.ssim(clean, gt), "ms_ssim": ms,
                                     "score": metrics.score(p, ms), "psnr_input": metrics.psnr(clean, image)})
                for key, value in metrics.ink_counts(image, clean, gt, mask).items():
                    counts[name][key] = counts[name].get(key, 0) + value
                for key, value in metrics.error_regions(clean, gt, mask, found).items():
                    errors[name][key] = errors[name].get(key, 0.0) + value
                if label is not None:
                    for key, value in metrics.removal_by_label(image, clean, gt, mask, label, labels[0]).items():
                        got = by_label[name].setdefault(key, {"hw_pixels": 0, "hw_removed": 0})
                        got["hw_pixels"] += value["hw_pixels"]
                        got["hw_removed"] += value["hw_removed"]
            advance(1)
    rows = []
    for name, per_image in scores.items():
        def mean(key, per_image=per_image):
            vals = [s[key] for s in per_image if s[key] is not None]
            return float(np.mean(vals)) if vals and len(vals) == len(per_image) else None

        rows.append({"method": name, "images": len(per_image), "psnr": mean("psnr"), "ssim": mean("ssim"),
                     "ms_ssim": mean("ms_ssim"), "score": mean("score"), "psnr_input": mean("psnr_input"),
                     **metrics.ink_shares(counts[name]),
                     "seconds_per_image": seconds[name] / max(1, len(per_image)),
                     "error_shares": metrics.shares(errors[name])})
        if labels:
            rows[-1]["hw_removed_by"] = {key: {"pixels": c["hw_pixels"],
                                               "removed": c["hw_removed"] / c["hw_pixels"]}
                                         for key, c in by_label[name].items() if c["hw_pixels"]}
    return rows


def render_table(rows: list[dict], title: str = "") -> None:
    """The rows as a table that fits an 80-column terminal: each method by its short name, the rest
    of a name such as "classical (ink threshold + Telea)" said under the table."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    def fmt(v, spec):
        return "n/a" if v is None else format(v, spec)

    def percent(v):
        return "n/a" if v is None else f"{100 * v:.1f}%"

    names = [r["method"].partition(" (") for r in rows]
    notes = [f"{short}: {rest.removesuffix(')')}" for short, _, rest in names if rest]
    pages = f"{rows[0]['images']} pages" if rows else ""
    cells = [[short, fmt(r["psnr"], ".2f"), fmt(r["ssim"], ".4f"), fmt(r["ms_ssim"], ".4f"), fmt(r["score"], ".4f"),
              fmt(r.get("psnr_input"), ".2f"), percent(r.get("print_kept")), percent(r.get("colour_kept")),
              percent(r.get("hw_removed")), fmt(r["seconds_per_image"], ".3f")]
             for r, (short, _, _) in zip(rows, names, strict=True)]
    heading = ": ".join(t for t in (title, pages) if t)
    table = Table(caption="; ".join(notes) or None, box=box.SIMPLE_HEAD, header_style="bold", padding=0,
                  show_edge=False)
    headers = ("method", "PSNR dB", "SSIM", "MS-SSIM", "score", "PSNR vs input", "print kept", "colour kept",
               "handwriting removed", "s/page")
    console = Console()
    natural = [max([len(col)] + [len(row[i]) for row in cells]) for i, col in enumerate(headers)]
    narrow = sum(natural) + 2 * len(headers) > console.width
    for i, col in enumerate(headers):
        # On a narrow terminal the headers wrap at their spaces; the values are never cut.
        fixed = max([len(word) for word in col.split()] + [len(row[i]) for row in cells]) if narrow else None
        table.add_column(col, justify="left" if i == 0 else "right", width=fixed)
    for row in cells:
        table.add_row(*row)
    if heading:  # above the table, not as its title: a title wraps at the table's width
        console.print(heading, style="bold", highlight=False)
    console.print(table)


def infer_paths(input_path: Path, output: Path, predict: Callable, window: int = 512, overlap: int = 64,
                multiple: int = 16, scale: float | None = None,
                on_page: Callable[[str], None] | None = None) -> int:
    """Clean pages and masks of an image or a folder of them; ``on_page`` gets a line per page
    (its size and the scale the model saw it at)."""
    from seghw.page_scale import auto_scale, predict_page
    from seghw.tiling import tile_predict

    input_path = Path(input_path)
    if input_path.is_dir():
        files = sorted(p for p in input_path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise UserError(f"no images ({', '.join(IMAGE_EXTS)}) in {input_path}")
    elif input_path.is_file():
        files = [input_path]
    else:
        raise UserError(f"--input {input_path}: no such file or folder")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    tile = partial(tile_predict, predict=predict, window=window, overlap=overlap, multiple=multiple)
    for number, path in enumerate(files, 1):
        image = read_rgb(path)
        factor = auto_scale(image) if scale is None else scale
        clean, mask = predict_page(image, tile, factor)
        _save_png(output / f"{path.stem}.png", clean)
        _save_png(output / f"{path.stem}_mask.png", mask)
        if on_page is not None:
            at = "its own scale" if factor == 1 else f"{factor:.2f}x"
            on_page(f"[{number}/{len(files)}] {path.name}: {image.shape[1]}x{image.shape[0]} px, run at {at}")
    return len(files)
