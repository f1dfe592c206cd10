"""Synthetic handwriting-erasure pairs: a printed page (paper, text, tables) with pen strokes on it.

Each pair is a pure function of its seed (on one machine with the same library versions and fonts):
the page is drawn, ink is composited multiplicatively over it, and both the inked and the clean
page then go through the *same* scan effects (lighting, blur, contrast, noise, JPEG), so the gt
is exactly what the scanner would have produced without the handwriting.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from seghw.atomic import write_atomic, write_json_atomic
from seghw.data.fonts import FontFace, available_fonts, fonts_fingerprint, load_font
from seghw.errors import ConfigError

# Bump whenever the pictures a seed produces change: cached datasets are keyed on it.
GENERATOR_VERSION = 4
MANIFEST = "dataset.json"
MASK_ALPHA_THRESHOLD = 0.08
MIN_SIZE = 16
_SUPERSAMPLE = 4

# Multiplicative transmission of each ink per RGB channel (1 = no effect) and its opacity range.
INKS: dict[str, tuple[tuple[float, float, float], tuple[float, float]]] = {
    "blue": ((0.12, 0.22, 0.62), (0.75, 0.97)),
    "black": ((0.10, 0.10, 0.12), (0.85, 1.0)),
    "red": ((0.88, 0.12, 0.14), (0.75, 0.95)),
    "pencil": ((0.38, 0.38, 0.41), (0.35, 0.6)),
}
_PRIMARY_INKS = ("blue", "black", "pencil", "red")
_PRIMARY_WEIGHTS = (0.35, 0.42, 0.13, 0.10)

_CJK_CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产"
    "种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业"
    "本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利"
    "比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题程展五果料象员位入常文总次"
    "品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必"
)
_CJK_PHRASES = (
    "一、选择题",
    "二、填空题",
    "三、解答题",
    "姓名",
    "班级",
    "学号",
    "得分",
    "考号",
    "（本题满分10分）",
    "下列说法正确的是",
    "计算：",
    "解：",
    "已知",
    "求证：",
    "阅读下面的材料，回答问题。",
    "（  ）",
)
_LATIN_WORDS = (
    "the of and to in is that for it as with was on be by this are from at or an which name class "
    "score question answer total date page section part exercise find solve calculate explain write "
    "read check true false given show prove value result following correct each number below above"
).split()
_MATH = ("3x + 5 = 20", "a² + b² = c²", "f(x) = 2x - 1", "( )", "S = πr²", "y = kx + b", "1/2 + 1/3 =")

# Rough handwritten digit skeletons in a 0.6 x 1 box (y down); Catmull-Rom smooths the corners.
_DIGITS: dict[str, list[list[tuple[float, float]]]] = {
    "1": [[(0.12, 0.22), (0.34, 0.0), (0.34, 1.0)]],
    "2": [[(0.05, 0.25), (0.2, 0.02), (0.45, 0.05), (0.55, 0.3), (0.3, 0.65), (0.02, 1.0), (0.6, 0.97)]],
    "3": [[(0.05, 0.1), (0.35, 0.0), (0.55, 0.2), (0.3, 0.45), (0.55, 0.7), (0.4, 0.98), (0.05, 0.9)]],
    "4": [[(0.42, 1.0), (0.42, 0.0), (0.02, 0.68), (0.6, 0.68)]],
    "5": [[(0.55, 0.0), (0.1, 0.02), (0.05, 0.45), (0.35, 0.38), (0.58, 0.65), (0.4, 0.98), (0.02, 0.9)]],
    "6": [[(0.5, 0.02), (0.15, 0.35), (0.05, 0.75), (0.3, 1.0), (0.55, 0.75), (0.35, 0.5), (0.08, 0.65)]],
    "7": [[(0.02, 0.02), (0.58, 0.02), (0.25, 1.0)]],
    "8": [
        [
            (0.5, 0.12),
            (0.3, 0.0),
            (0.08, 0.15),
            (0.3, 0.45),
            (0.55, 0.72),
            (0.3, 1.0),
            (0.05, 0.75),
            (0.3, 0.45),
            (0.5, 0.2),
        ]
    ],
    "9": [[(0.55, 0.3), (0.3, 0.48), (0.05, 0.3), (0.25, 0.02), (0.55, 0.2), (0.5, 0.6), (0.4, 1.0)]],
    "0": [[(0.3, 0.0), (0.05, 0.3), (0.08, 0.8), (0.32, 1.0), (0.55, 0.7), (0.52, 0.2), (0.28, 0.02)]],
}


@dataclass
class _Stroke:
    points: np.ndarray  # (N, 2) x, y in pixels
    width: float
    ink: str


@dataclass
class _Page:
    h: int
    w: int
    text_px: int
    text_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    blanks: list[tuple[int, int, int, int]] = field(default_factory=list)  # places meant for answers


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
# Page: paper, printed text, tables


def _paper(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.uniform(0.9, 0.99)
    tint = np.array([1.0, rng.uniform(0.985, 1.0), rng.uniform(0.94, 1.0)], np.float32)
    if rng.random() < 0.3:  # cool grey/blueish copy paper instead of warm
        tint = tint[::-1].copy()
    low = rng.normal(0.0, 1.0, (h // 48 + 3, w // 48 + 3)).astype(np.float32)
    low = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC) * rng.uniform(0.003, 0.013)
    grain = rng.standard_normal((h, w), dtype=np.float32) * np.float32(rng.uniform(0.002, 0.012))
    paper = (base + low + grain)[..., None] * tint
    n_specks = rng.poisson(h * w / 60000.0)
    for _ in range(n_specks):  # dust and fibres belong to the paper: they stay in the gt
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        r = max(1, int(rng.integers(1, 3)))
        cv2.circle(paper, (x, y), r, tuple(float(v) for v in paper[y, x] * rng.uniform(0.6, 0.9)), -1)
    return np.clip(paper, 0.0, 1.0)


def _pick_face(rng: np.random.Generator, fonts: Sequence[FontFace], cjk: bool) -> FontFace | None:
    pool = [f for f in fonts if f.cjk == cjk] or list(fonts)
    return pool[int(rng.integers(len(pool)))] if pool else None


def _text_line(rng: np.random.Generator, cjk: bool, n_chars: int) -> str:
    kind = rng.random()
    if cjk:
        if kind < 0.25:
            return str(rng.choice(_CJK_PHRASES))
        prefix = f"{int(rng.integers(1, 30))}. " if rng.random() < 0.4 else ""
        chars = rng.choice(list(_CJK_CHARS), size=max(2, n_chars))
        body = "".join(chars)
        for punct in ("，", "。", "；", "："):
            if len(body) > 6 and rng.random() < 0.5:
                k = int(rng.integers(2, len(body) - 2))
                body = body[:k] + punct + body[k + 1 :]
        return prefix + body
    if kind < 0.15:
        return str(rng.choice(_MATH))
    prefix = f"{int(rng.integers(1, 30))}. " if rng.random() < 0.4 else ""
    words: list[str] = []
    while sum(len(x) + 1 for x in words) < n_chars:
        words.append(str(rng.choice(_LATIN_WORDS)))
    if words:
        words[0] = words[0].capitalize()
    return prefix + " ".join(words)


def _draw_printed(rng: np.random.Generator, page: _Page, fonts: Sequence[FontFace]) -> tuple[np.ndarray, np.ndarray]:
    """Coverage (0..1) of printed ink, and of a second (coloured) print: text lines, option rows,
    tables, fill-in rules; bold headings up to ~5x the body size, white-on-black bars, dense columns,
    diagrams, grey and halftone figures, logos and stamps. Dark print of every kind is there so a
    model learns that darkness alone does not make handwriting."""
    h, w, t = page.h, page.w, page.text_px
    cov = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(cov)
    colour_cov = Image.new("L", (w, h), 0)
    cjk = bool(fonts) and any(f.cjk for f in fonts) and rng.random() < 0.6
    face = _pick_face(rng, fonts, cjk)
    bold = _pick_face(rng, fonts, cjk)
    line_w = max(1, round(t / 14))
    small = min(h, w) < 160
    margin_x = int(rng.uniform(-1.5, 0.5) * t) if small else int(rng.uniform(0.04, 0.09) * w)
    y = int(rng.uniform(-0.8, 0.3) * t) if small else int(rng.uniform(0.03, 0.07) * h)
    right = w - (0 if small else margin_x)
    while y < h:
        size = max(6, int(t * rng.uniform(0.85, 1.15)))
        font = load_font(face, size)
        block = rng.random()
        special = rng.random()
        if special < 0.3:
            y = _draw_special(rng, page, draw, cov, colour_cov, fonts, cjk, face, bold, margin_x, right, y, size)
            continue
        if block < 0.45:  # a paragraph line
            n_chars = int((right - margin_x) / (size * (1.0 if cjk else 0.55)) * rng.uniform(0.4, 1.0))
            text = _text_line(rng, cjk, n_chars)
            x0 = margin_x + (int(rng.uniform(0, 2) * size) if rng.random() < 0.3 else 0)
            heavy_line = rng.random() < 0.15  # bold runs in the body
            ink_draw = ImageDraw.Draw(colour_cov) if rng.random() < 0.06 else draw  # links, coloured headings
            ink_draw.text((x0, y), text, fill=int(rng.integers(200, 256)), font=font,
                          stroke_width=max(1, size // 18) if heavy_line else 0)
            x1 = min(w, x0 + int(draw.textlength(text, font=font)))
            page.text_boxes.append((x0, y, x1, y + size))
            if rng.random() < 0.3 and x1 < right - 3 * size:  # fill-in blank after the text
                bx1 = int(rng.uniform(x1 + 3 * size, right))
                by = y + size + line_w
                draw.line([(x1 + size // 2, by), (bx1, by)], fill=230, width=line_w)
                page.blanks.append((x1 + size // 2, y - size // 3, bx1, by))
            y += int(size * rng.uniform(1.5, 2.2))
        elif block < 0.6:  # multiple choice options
            x = margin_x + size
            for letter in "ABCD":
                opt = f"{letter}. " + _text_line(rng, cjk, int(rng.integers(2, 7)))
                draw.text((x, y), opt, fill=235, font=font)
                x1 = x + int(draw.textlength(opt, font=font))
                page.text_boxes.append((x, y, min(w, x1), y + size))
                x = x1 + int(size * rng.uniform(1.5, 3.0))
                if x > right:
                    break
            y += int(size * rng.uniform(1.6, 2.2))
        elif block < 0.75:  # table / header grid
            rows, cols = int(rng.integers(1, 5)), int(rng.integers(2, 7))
            cell_h = int(size * rng.uniform(1.7, 2.6))
            x_edges = np.sort(rng.uniform(margin_x, right, cols - 1))
            xs = [margin_x, *[int(v) for v in x_edges], right]
            heavy = load_font(bold, size)
            for r in range(rows + 1):
                draw.line([(xs[0], y + r * cell_h), (xs[-1], y + r * cell_h)], fill=220, width=line_w)
            for x in xs:
                draw.line([(x, y), (x, y + rows * cell_h)], fill=220, width=line_w)
            for r in range(rows):
                for c in range(cols):
                    cx0, cx1 = xs[c], xs[c + 1]
                    cy0 = y + r * cell_h
                    if cx1 - cx0 < size:
                        continue
                    if r == 0 and rng.random() < 0.6:
                        n = max(1, int((cx1 - cx0) / (size * (1.0 if cjk else 0.6))) - 1)
                        label = _text_line(rng, cjk, min(n, 4))[: max(1, n)]
                        draw.text((cx0 + line_w + 2, cy0 + (cell_h - size) // 2), label, fill=240, font=heavy)
                        page.text_boxes.append((cx0, cy0, cx1, cy0 + cell_h))
                    else:
                        page.blanks.append((cx0 + line_w, cy0 + line_w, cx1 - line_w, cy0 + cell_h - line_w))
            y += rows * cell_h + int(size * rng.uniform(0.8, 1.6))
        else:  # empty answer area (optionally ruled)
            area_h = int(size * rng.uniform(2.5, 7.0))
            if rng.random() < 0.4:
                for ry in range(y + int(size * 1.6), y + area_h, int(size * 1.6)):
                    draw.line([(margin_x, ry), (right, ry)], fill=int(rng.integers(90, 200)), width=line_w)
            page.blanks.append((margin_x, y, right, y + area_h))
            y += area_h
    return np.asarray(cov, dtype=np.float32) / 255.0, np.asarray(colour_cov, dtype=np.float32) / 255.0


def _draw_special(rng, page: _Page, draw: ImageDraw.ImageDraw, cov: Image.Image, colour_cov: Image.Image,
                  fonts, cjk: bool, face, bold, margin_x: int, right: int, y: int, size: int) -> int:
    """One block of dark print that is not body text; returns the next line's y."""
    w = page.w
    kind = rng.random()
    width = max(8, right - margin_x)
    if kind < 0.3:  # a heading: large, bold, sometimes white on a black bar, sometimes centred
        hs = max(8, int(size * rng.uniform(1.5, 5.0)))
        font = load_font(bold, hs)
        n = max(2, int(width / (hs * (1.0 if cjk else 0.6)) * rng.uniform(0.3, 0.9)))
        text = _text_line(rng, cjk, n)
        tw = int(draw.textlength(text, font=font))
        x0 = margin_x + (max(0, (width - tw) // 2) if rng.random() < 0.4 else 0)
        stroke = max(1, hs // 16) if rng.random() < 0.7 else 0
        if rng.random() < 0.3:
            pad = int(hs * rng.uniform(0.15, 0.5))
            draw.rectangle([margin_x - pad, y - pad, right + pad, y + hs + pad], fill=int(rng.integers(215, 256)))
            draw.text((x0, y), text, fill=0, font=font, stroke_width=stroke)
            y += pad
        else:
            draw.text((x0, y), text, fill=int(rng.integers(225, 256)), font=font, stroke_width=stroke)
        page.text_boxes.append((x0, y, min(w, x0 + tw), y + hs))
        return y + int(hs * rng.uniform(1.3, 1.8))
    if kind < 0.5:  # dense columns of small text
        cols = int(rng.integers(1, 4))
        gap = max(4, size)
        cw = max(8, (width - gap * (cols - 1)) // cols)
        ss = max(6, int(size * rng.uniform(0.55, 0.8)))
        font = load_font(face, ss)
        rows = int(rng.integers(3, 9))
        for c in range(cols):
            cx = margin_x + c * (cw + gap)
            for r in range(rows):
                n = max(2, int(cw / (ss * (1.0 if cjk else 0.5))))
                ry = y + int(r * ss * 1.25)
                draw.text((cx, ry), _text_line(rng, cjk, n), fill=int(rng.integers(215, 256)), font=font)
                page.text_boxes.append((cx, ry, cx + cw, ry + ss))
        return y + int(rows * ss * 1.25 + size)
    if kind < 0.7:  # a figure: a grey photo-like field, halftoned or continuous, with a frame
        fh = int(size * rng.uniform(3, 9))
        fw = int(width * rng.uniform(0.3, 1.0))
        x0 = margin_x + int(rng.uniform(0, max(1, width - fw)))
        field_ = np.zeros((max(1, fh), max(1, fw)), np.float32)
        for cell, weight in ((12, 1.0), (4, rng.uniform(0.2, 0.6)), (1.5, rng.uniform(0.0, 0.3))):
            octave = rng.normal(0, 1, (max(2, int(fh / cell)), max(2, int(fw / cell)))).astype(np.float32)
            field_ += weight * cv2.resize(octave, (max(1, fw), max(1, fh)), interpolation=cv2.INTER_CUBIC)
        for _ in range(int(rng.integers(0, 6))):  # objects with edges, as in a photograph
            centre = (int(rng.uniform(0, fw)), int(rng.uniform(0, fh)))
            axes = (int(rng.uniform(2, max(3, fw / 3))), int(rng.uniform(2, max(3, fh / 3))))
            cv2.ellipse(field_, centre, axes, rng.uniform(0, 180), 0, 360, float(rng.normal(0, 2)), -1)
        field_ = (field_ - field_.min()) / (np.ptp(field_) + 1e-6)
        field_ = np.clip(field_ * rng.uniform(0.6, 1.3) + rng.uniform(-0.2, 0.3), 0, 1)
        if rng.random() < 0.5:  # halftone dots on a grid
            cell = int(rng.integers(3, 7))
            yy, xx = np.mgrid[0:fh, 0:fw]
            dist = np.hypot((yy % cell) - cell / 2 + 0.5, (xx % cell) - cell / 2 + 0.5) / (cell * 0.7071)
            field_ = (dist < np.sqrt(field_)).astype(np.float32)
        tile = Image.fromarray((field_ * 255).astype(np.uint8))
        region = (x0, y, x0 + tile.width, y + tile.height)
        cov.paste(Image.fromarray(np.maximum(np.asarray(cov.crop(region)), np.asarray(tile))), region[:2])
        if rng.random() < 0.6:
            draw.rectangle(region, outline=230, width=max(1, size // 14))
        page.text_boxes.append(region)
        return y + fh + int(size * rng.uniform(0.8, 1.5))
    if kind < 0.85:  # a diagram: boxes, circles, arrows, axes with a curve
        dh = int(size * rng.uniform(3, 8))
        lw = max(1, int(size / rng.uniform(8, 16)))
        for _ in range(int(rng.integers(2, 7))):
            x0 = margin_x + int(rng.uniform(0, 0.8) * width)
            y0 = y + int(rng.uniform(0, 0.7) * dh)
            bw, bh = int(rng.uniform(1.5, 5) * size), int(rng.uniform(1, 2.5) * size)
            shape = rng.random()
            if shape < 0.35:
                draw.rectangle([x0, y0, x0 + bw, y0 + bh], outline=235, width=lw,
                               fill=235 if rng.random() < 0.2 else None)
            elif shape < 0.6:
                draw.ellipse([x0, y0, x0 + bh, y0 + bh], outline=235, width=lw)
            elif shape < 0.8:
                x1 = x0 + bw
                draw.line([(x0, y0), (x1, y0)], fill=235, width=lw)
                draw.polygon([(x1, y0 - lw * 2), (x1 + lw * 4, y0), (x1, y0 + lw * 2)], fill=235)
            else:
                draw.line([(x0, y0), (x0, y0 + bh * 2), (x0 + bw * 2, y0 + bh * 2)], fill=235, width=lw)
                xs = np.linspace(x0, x0 + bw * 2, 24)
                ys = y0 + bh * 2 - (np.sin(np.linspace(0, rng.uniform(2, 7), 24)) * 0.4 + 0.5) * bh * 1.8
                draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=235, width=lw)
        page.text_boxes.append((margin_x, y, right, y + dh))
        return y + dh + size
    # a logo or a stamp: a filled mark with lettering, black or coloured
    s = int(size * rng.uniform(2, 5))
    x0 = margin_x + int(rng.uniform(0, max(1, width - s)))
    target = ImageDraw.Draw(colour_cov) if rng.random() < 0.5 else draw
    if rng.random() < 0.5:
        target.ellipse([x0, y, x0 + s, y + s], outline=240, width=max(1, s // 14))
        target.ellipse([x0 + s // 6, y + s // 6, x0 + s - s // 6, y + s - s // 6], outline=240,
                       width=max(1, s // 24))
    else:
        target.rectangle([x0, y, x0 + s, y + s], fill=240)
    font = load_font(bold, max(6, s // 4))
    target.text((x0 + s // 5, y + s // 3), _text_line(rng, cjk, 2)[:3], fill=0 if rng.random() < 0.5 else 240,
                font=font)
    page.text_boxes.append((x0, y, x0 + s, y + s))
    return y + s + size




# ---------------------------------------------------------------------------------------------
# Handwriting strokes


def _catmull_rom(ctrl: np.ndarray, step: float) -> np.ndarray:
    """Smooth curve through the control points, sampled about every ``step`` pixels."""
    if len(ctrl) < 2:
        return ctrl.astype(np.float32)
    p = np.vstack([ctrl[:1], ctrl, ctrl[-1:]]).astype(np.float64)
    p0, p1, p2, p3 = p[:-3], p[1:-2], p[2:-1], p[3:]
    # Sub-pixel sampling buys nothing once the stroke is drawn at 4x: keep at least ~0.75 px apart.
    n = np.clip(np.linalg.norm(p2 - p1, axis=1) / max(step, 0.75), 2, 64).astype(np.int64)
    seg = np.repeat(np.arange(len(n)), n)
    starts = np.repeat(np.cumsum(n) - n, n)
    t = ((np.arange(seg.size) - starts) / np.repeat(n, n))[:, None]
    a, b, c, d = p0[seg], p1[seg], p2[seg], p3[seg]
    curve = 0.5 * (2 * b + (c - a) * t + (2 * a - 5 * b + 4 * c - d) * t**2 + (3 * b - a - 3 * c + d) * t**3)
    return np.vstack([curve, p[-2:-1]]).astype(np.float32)


def _place(
    unit: np.ndarray, x: float, y: float, sx: float, sy: float, slant: float, angle: float
) -> np.ndarray:
    u = unit.astype(np.float64).copy()
    u[:, 0] -= slant * (u[:, 1] - 1.0)  # lean the tops to the right
    ca, sa = math.cos(angle), math.sin(angle)
    rx = u[:, 0] * sx * ca - u[:, 1] * sy * sa
    ry = u[:, 0] * sx * sa + u[:, 1] * sy * ca
    return np.stack([rx + x, ry + y], axis=1)


def _cursive_word(rng: np.random.Generator, x: float, y: float, xh: float, max_w: float) -> list[np.ndarray]:
    """Connected cursive: points bounce between baseline and x-height with loops, ascenders, descenders."""
    pts = [(0.0, 1.0)]
    cx = 0.0
    limit = max_w / xh
    while cx < limit:
        r = rng.random()
        adv = rng.uniform(0.55, 1.0)
        if r < 0.2:  # ascender loop
            pts += [(cx + adv * 0.6, -0.9), (cx + adv * 0.2, -0.6), (cx + adv * 0.5, 1.0)]
        elif r < 0.32:  # descender loop
            pts += [(cx + adv * 0.5, 0.0), (cx + adv * 0.6, 1.8), (cx + adv * 0.3, 1.4), (cx + adv, 0.9)]
        elif r < 0.5:  # round letter
            pts += [(cx + adv, 0.05), (cx + adv * 0.3, 0.2), (cx + adv * 0.4, 1.0), (cx + adv * 1.1, 0.6)]
        else:  # arches and hooks
            pts += [(cx + adv * 0.5, rng.uniform(-0.05, 0.2)), (cx + adv, rng.uniform(0.85, 1.05))]
        cx += adv
    unit = np.asarray(pts) + rng.normal(0, 0.05, (len(pts), 2))
    placed = _place(unit, x, y, xh, xh, rng.uniform(-0.1, 0.45), rng.normal(0, 0.03))
    return [_catmull_rom(placed, xh / 12)]


def _cjk_char(rng: np.random.Generator, x: float, y: float, s: float) -> list[np.ndarray]:
    """A pseudo Chinese character: a few horizontal, vertical, falling strokes, dots and hooks."""
    strokes = []
    n = int(rng.integers(4, 11))
    split = rng.random()
    for _ in range(n):
        # Components: strokes cluster on the left/right or top/bottom part, as radicals do.
        if split < 0.35:
            bx0, bx1, by0, by1 = (0.0, 0.45, 0.0, 1.0) if rng.random() < 0.4 else (0.45, 1.0, 0.0, 1.0)
        elif split < 0.6:
            bx0, bx1, by0, by1 = (0.0, 1.0, 0.0, 0.45) if rng.random() < 0.4 else (0.0, 1.0, 0.45, 1.0)
        else:
            bx0, bx1, by0, by1 = 0.0, 1.0, 0.0, 1.0
        u0 = rng.uniform(bx0, bx0 + 0.6 * (bx1 - bx0))
        v0 = rng.uniform(by0, by0 + 0.7 * (by1 - by0))
        k = rng.random()
        if k < 0.3:  # heng
            ln = rng.uniform(0.5, 1.0) * (bx1 - u0)
            pts = [(u0, v0), (u0 + ln * 0.5, v0 - 0.02), (u0 + ln, v0 - rng.uniform(0, 0.06))]
        elif k < 0.55:  # shu, sometimes with a hook
            ln = rng.uniform(0.5, 1.0) * (by1 - v0)
            pts = [(u0, v0), (u0, v0 + ln * 0.6), (u0 + rng.normal(0, 0.02), v0 + ln)]
            if rng.random() < 0.3:
                pts.append((u0 - 0.08, v0 + ln - 0.08))
        elif k < 0.7:  # pie
            pts = [(u0 + 0.25, v0), (u0 + 0.15, v0 + 0.25), (u0 - 0.05, v0 + rng.uniform(0.4, 0.6))]
        elif k < 0.8:  # na
            pts = [(u0, v0), (u0 + 0.18, v0 + 0.25), (u0 + rng.uniform(0.35, 0.5), v0 + 0.45)]
        elif k < 0.9:  # dian
            pts = [(u0, v0), (u0 + 0.06, v0 + 0.08)]
        else:  # heng-zhe
            pts = [(u0, v0), (u0 + 0.35, v0 - 0.02), (u0 + 0.33, v0 + 0.3)]
        unit = np.asarray(pts) + rng.normal(0, 0.015, (len(pts), 2))
        placed = _place(unit, x, y, s, s, rng.uniform(-0.05, 0.15), 0.0)
        strokes.append(_catmull_rom(placed, s / 25))
    return strokes


def _digit_run(rng: np.random.Generator, x: float, y: float, h: float, text: str) -> list[np.ndarray]:
    strokes = []
    slant = rng.uniform(0.0, 0.3)
    for ch in text:
        for skel in _DIGITS.get(ch, []):
            unit = np.asarray(skel) + rng.normal(0, 0.04, (len(skel), 2))
            strokes.append(_catmull_rom(_place(unit, x, y, h, h, slant, rng.normal(0, 0.05)), h / 20))
        x += h * rng.uniform(0.6, 0.85)
    return strokes


def _tick(rng: np.random.Generator, x: float, y: float, s: float) -> list[np.ndarray]:
    unit = np.array([(0.0, 0.55), (0.3, 1.0), (1.0 + rng.uniform(-0.1, 0.3), -0.1)])
    unit += rng.normal(0, 0.04, unit.shape)
    return [_catmull_rom(_place(unit, x, y, s, s, 0.0, rng.normal(0, 0.1)), s / 20)]


def _cross(rng: np.random.Generator, x: float, y: float, s: float) -> list[np.ndarray]:
    a = np.array([(0.0, 0.0), (1.0, 1.0)]) + rng.normal(0, 0.06, (2, 2))
    b = np.array([(1.0, 0.0), (0.0, 1.0)]) + rng.normal(0, 0.06, (2, 2))
    return [_catmull_rom(_place(u, x, y, s, s, 0.0, 0.0), s / 20) for u in (a, b)]


def _ellipse(rng: np.random.Generator, box: tuple[float, float, float, float]) -> list[np.ndarray]:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rx, ry = (x1 - x0) / 2 * rng.uniform(1.05, 1.3) + 2, (y1 - y0) / 2 * rng.uniform(1.2, 1.7) + 2
    start = rng.uniform(0, 2 * math.pi)
    ang = start + np.linspace(0, rng.uniform(2.0, 2.35) * math.pi, 14)
    wob = 1 + rng.normal(0, 0.05, ang.shape)
    ctrl = np.stack([cx + rx * wob * np.cos(ang), cy + ry * wob * np.sin(ang)], axis=1)
    return [_catmull_rom(ctrl, max(1.0, min(rx, ry) / 10))]


def _underline(rng: np.random.Generator, x0: float, x1: float, y: float, amp: float) -> list[np.ndarray]:
    n = max(3, int((x1 - x0) / max(amp * 4, 1)))
    xs = np.linspace(x0, x1, n)
    wavy = rng.random() < 0.3
    ys = y + (amp * np.sin(np.arange(n) * 1.4) if wavy else rng.normal(0, amp * 0.15, n)).astype(np.float64)
    return [_catmull_rom(np.stack([xs, ys], axis=1), max(1.0, amp / 2))]


def _scribble(rng: np.random.Generator, box: tuple[float, float, float, float]) -> list[np.ndarray]:
    x0, y0, x1, y1 = box
    n = int(rng.integers(6, 18))
    xs = np.linspace(x0, x1, n) + rng.normal(0, (x1 - x0) / n / 2, n)
    ys = np.where(np.arange(n) % 2 == 0, y0, y1) + rng.normal(0, (y1 - y0) * 0.1, n)
    return [_catmull_rom(np.stack([xs, ys], axis=1), max(1.0, (y1 - y0) / 12))]


def _plan_handwriting(rng: np.random.Generator, page: _Page, fallback: bool = False) -> list[_Stroke]:
    """Pen strokes for the page: answers in blanks, marks on printed text, grades anywhere.
    ``fallback`` writes one line of answer inside the canvas instead (for crops that got no ink)."""
    h, w, t = page.h, page.w, page.text_px
    weights = np.asarray(_PRIMARY_WEIGHTS)
    primary = str(rng.choice(_PRIMARY_INKS, p=weights / weights.sum()))
    marker = "red" if rng.random() < 0.55 else primary  # teachers grade in red
    hand_h = t * rng.uniform(0.9, 2.0)
    # Ballpoints and fine pens mostly; a quarter of the pages in felt-tip or marker, up to 8 px wide
    # (the paper estimate's 9-px closing still lifts them).
    wide = rng.random() < 0.25
    pen = float(np.clip(hand_h * (rng.uniform(0.11, 0.2) if wide else rng.uniform(0.05, 0.11)), 0.55, 8.0))
    if primary == "pencil":
        pen *= 1.2
    cjk_hand = rng.random() < 0.5
    strokes: list[_Stroke] = []

    def add(paths: list[np.ndarray], ink: str, width: float) -> None:
        strokes.extend(_Stroke(p, min(8.0, width * rng.uniform(0.85, 1.15)), ink) for p in paths if len(p) >= 2)

    def write_line(x0: float, y0: float, x1: float, ink: str, hh: float) -> None:
        x = x0
        while x < x1 - hh * 0.8:
            kind = rng.random()
            if kind < 0.15:
                n = int(rng.integers(1, 4))
                digits = "".join(str(d) for d in rng.integers(0, 10, n))
                add(_digit_run(rng, x, y0, hh, digits), ink, pen)
                x += hh * 0.75 * n + hh * 0.6
            elif cjk_hand:
                s = hh * rng.uniform(0.85, 1.1)
                add(_cjk_char(rng, x, y0, s), ink, pen)
                x += s * rng.uniform(1.05, 1.3)
            else:
                ww = min(x1 - x, hh * rng.uniform(1.5, 5.0))
                add(_cursive_word(rng, x, y0 + hh * 0.35, hh * 0.5, ww), ink, pen)
                x += ww + hh * rng.uniform(0.4, 0.9)

    if fallback:
        y0 = rng.uniform(0, max(1.0, h - hand_h))
        write_line(rng.uniform(0, w * 0.3), y0, w, primary, min(hand_h, h * 0.8))
        return strokes

    for box in page.blanks:
        if rng.random() > 0.75:
            continue
        bx0, by0, bx1, by1 = box
        hh = min(hand_h, max(4.0, (by1 - by0) * 0.8))
        line_y = by0 + rng.uniform(0.05, 0.3) * (by1 - by0)
        while line_y + hh <= by1 + hh * 0.3:
            stop = bx0 + (bx1 - bx0) * rng.uniform(0.3, 1.0)
            write_line(bx0 + rng.uniform(0, 1.5) * hh, line_y, stop, primary, hh)
            line_y += hh * rng.uniform(1.4, 2.0)
            if rng.random() < 0.3:
                break

    for box in page.text_boxes:
        r = rng.random()
        if r < 0.06 and box[2] - box[0] < 12 * t:
            add(_ellipse(rng, box), marker, pen * 1.1)
        elif r < 0.12:
            add(_underline(rng, box[0], box[2], box[3] + t * 0.2, t * 0.15), primary, pen)
        elif r < 0.15:
            add(_scribble(rng, box), primary, pen)
        elif r < 0.2 and box[2] + t * 1.5 < w:
            s = t * rng.uniform(1.0, 2.0)
            mark = _tick if rng.random() < 0.65 else _cross
            add(mark(rng, box[2] + t * 0.5, box[1] - s * 0.3, s), marker, pen * 1.3)

    n_grades = rng.poisson(max(0.5, h * w / (t * t * 400)))
    for _ in range(n_grades):
        s = t * rng.uniform(1.2, 3.0)
        x, y = rng.uniform(0, max(1.0, w - s)), rng.uniform(0, max(1.0, h - s))
        g = rng.random()
        if g < 0.4:
            add(_tick(rng, x, y, s), marker, pen * 1.4)
        elif g < 0.6:
            add(_cross(rng, x, y, s * 0.7), marker, pen * 1.3)
        else:
            score = str(int(rng.integers(0, 101)) if rng.random() < 0.5 else int(rng.integers(1, 20)))
            add(_digit_run(rng, x, y, s, score), marker, pen * 1.4)

    if rng.random() < 0.25:  # a signature: a large fast cursive name with a flourish under it
        s = t * rng.uniform(1.2, 2.5)
        x, y = rng.uniform(0, max(1.0, w - 3 * s)), rng.uniform(0, max(1.0, h - s))
        length = s * rng.uniform(2.5, 6.0)
        add(_cursive_word(rng, x, y + s * 0.4, s * 0.6, length), primary, pen * 1.1)
        add(_underline(rng, x - s * 0.3, x + length, y + s * 1.1, s * 0.25), primary, pen)

    return strokes


def _render_ink(
    rng: np.random.Generator, strokes: Sequence[_Stroke], h: int, w: int
) -> tuple[np.ndarray, np.ndarray]:
    """Transmission (H,W,3; 1 = no ink) and ink alpha (H,W), drawn per stroke in its own bounding box
    at 4x resolution and area-downsampled: anti-aliased edges and sub-pixel widths for free."""
    trans = np.ones((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    ss = _SUPERSAMPLE
    ink_colors = {
        name: np.clip(np.asarray(c) + rng.normal(0, 0.03, 3), 0.02, 1.0).astype(np.float32)
        for name, (c, _) in INKS.items()
    }
    ink_opacity = {name: rng.uniform(*op) for name, (_, op) in INKS.items()}
    for st in strokes:
        pts = st.points
        pad = st.width + 2
        x0 = max(0, int(math.floor(pts[:, 0].min() - pad)))
        y0 = max(0, int(math.floor(pts[:, 1].min() - pad)))
        x1 = min(w, int(math.ceil(pts[:, 0].max() + pad)))
        y1 = min(h, int(math.ceil(pts[:, 1].max() + pad)))
        if x1 <= x0 or y1 <= y0:
            continue
        n = len(pts)
        # Pressure: pen lands and lifts lighter, and wanders slowly along the stroke.
        t = np.linspace(0.0, 1.0, n)
        taper = np.minimum(1.0, np.minimum(0.55 + t * 6.0, 0.45 + (1.0 - t) * 5.0))
        wander = 1.0 + 0.12 * np.sin(t * rng.uniform(2, 9) + rng.uniform(0, 6.3))
        pressure = np.clip(taper * wander, 0.2, 1.0)
        patch = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss), np.uint8)
        q = np.round((pts - (x0, y0)) * ss * 4).astype(np.int32).tolist()  # 2 fractional bits (shift=2)
        thick = np.maximum(1, np.round(st.width * ss * (0.7 + 0.3 * pressure))).astype(int).tolist()
        val = (255 * pressure).astype(int).tolist()
        for i in range(n - 1):
            cv2.line(patch, q[i], q[i + 1], val[i], thick[i], cv2.LINE_8, 2)
        a = cv2.resize(patch, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32)
        a *= ink_opacity[st.ink] / 255.0
        if st.ink == "pencil":  # graphite catches only the paper's peaks
            a *= rng.uniform(0.55, 1.0, a.shape).astype(np.float32)
        region = trans[y0:y1, x0:x1]
        region *= 1.0 - a[..., None] * (1.0 - ink_colors[st.ink])
        np.maximum(alpha[y0:y1, x0:x1], a, out=alpha[y0:y1, x0:x1])
    return trans, alpha


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
    # 100-300 dpi: body text from about 13 to 40 px high at 256-px pages.
    text_px = int(np.clip(min(h, w) / 12.0 * rng.uniform(0.6, 1.7), 7, 40))
    page = _Page(h, w, text_px)
    paper = _paper(rng, h, w)
    cov, colour_cov = _draw_printed(rng, page, fonts)
    print_color = np.full(3, rng.uniform(0.02, 0.25), np.float32) + rng.normal(0, 0.015, 3).astype(np.float32)
    clean = paper * (1.0 - cov[..., None] * (1.0 - np.clip(print_color, 0, 1)))
    # Coloured print (stamps, logos): red, blue or green, the colours of ink too.
    stamp = np.asarray([(0.85, 0.15, 0.15), (0.15, 0.25, 0.75), (0.15, 0.55, 0.25)][int(rng.integers(3))], np.float32)
    clean = clean * (1.0 - colour_cov[..., None] * (1.0 - stamp))
    trans, alpha = _render_ink(rng, _plan_handwriting(rng, page), h, w)
    for _ in range(5):
        # Small crops may miss every blank and mark: write inside the canvas, a pair needs a mask.
        if np.count_nonzero(alpha > MASK_ALPHA_THRESHOLD) >= 0.002 * h * w:
            break
        more_trans, more_alpha = _render_ink(rng, _plan_handwriting(rng, page, fallback=True), h, w)
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
    with _progress(progress and count >= 20, f"synthetic {_size_label(size)}px", count) as advance:
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


@contextlib.contextmanager
def _progress(show: bool, description: str, total: int):
    """Yields ``advance(n)``; a transient progress bar when ``show``."""
    if not show:
        yield lambda n: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


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
