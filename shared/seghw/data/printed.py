"""The printed page of a synthetic pair: paper, text in many faces and sizes, tables, rules,
figures, stamps and dark blocks (``seghw.data.synth`` puts handwriting over it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageDraw

from seghw.data.fonts import FontFace, load_font

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


@dataclass
class Page:
    h: int
    w: int
    text_px: int
    text_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    blanks: list[tuple[int, int, int, int]] = field(default_factory=list)  # places meant for answers




def draw_paper(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
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


def draw_printed(
    rng: np.random.Generator, page: Page, fonts: Sequence[FontFace]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coverage (0..1) of printed ink, of a second (coloured) print, and the RGB transmission (1 = none)
    of colour figures and diagrams: text lines, option rows, tables, fill-in rules; bold
    headings up to ~5x the body size, white-on-black bars, dense columns, diagrams, grey, halftone and
    colour figures, logos and stamps. Dark and coloured print of every kind is there so a model learns
    that neither darkness nor colour alone makes handwriting."""
    h, w, t = page.h, page.w, page.text_px
    cov = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(cov)
    colour_cov = Image.new("L", (w, h), 0)
    tint = np.ones((h, w, 3), np.float32)
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
            y = _draw_special(rng, page, draw, cov, colour_cov, tint, fonts, cjk, face, bold, margin_x, right, y,
                              size)
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
    return np.asarray(cov, dtype=np.float32) / 255.0, np.asarray(colour_cov, dtype=np.float32) / 255.0, tint


def _print_colour(rng: np.random.Generator) -> np.ndarray:
    """A printer's colour, saturated or muted, any hue (blue and red, the pens' colours, included)."""
    hsv = np.uint8([[[int(rng.integers(0, 180)), int(rng.uniform(90, 255)), int(rng.uniform(120, 255))]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


def _colour_photo(rng: np.random.Generator, shade: np.ndarray) -> np.ndarray:
    """RGB reflectance of a colour photograph over ``shade`` (0..1 darkness): regions of a few colours
    (skin, sky, foliage, saturated objects) with soft edges, shaded by it."""
    fh, fw = shade.shape
    k = int(rng.integers(2, 6))
    cell = rng.uniform(8, 30)
    fields = [cv2.resize(rng.normal(0, 1, (max(2, int(fh / cell)), max(2, int(fw / cell)))).astype(np.float32),
                         (fw, fh), interpolation=cv2.INTER_CUBIC) for _ in range(k)]
    weights = np.exp(3.0 * np.stack(fields))
    weights /= weights.sum(axis=0, keepdims=True)
    colours = np.stack([_print_colour(rng) for _ in range(k)])
    if rng.random() < 0.5:  # a skin tone among them
        colours[0] = np.asarray([rng.uniform(0.75, 0.95), rng.uniform(0.55, 0.75), rng.uniform(0.45, 0.65)])
    base = np.tensordot(weights.transpose(1, 2, 0), colours, axes=1)
    return np.clip(base * (1.0 - 0.85 * shade[..., None]), 0.0, 1.0).astype(np.float32)


def _apply_tint(tint: np.ndarray, layer: Image.Image, colour: np.ndarray) -> None:
    """Print ``layer``'s coverage (an L image of the page) in ``colour`` over ``tint``."""
    box = layer.getbbox()  # one shape: only its box of the page is touched
    if box is None:
        return
    x0, y0, x1, y1 = box
    m = np.asarray(layer.crop(box), dtype=np.float32)[..., None] / 255.0
    tint[y0:y1, x0:x1] *= 1.0 - m * (1.0 - colour)


def _draw_special(rng, page: Page, draw: ImageDraw.ImageDraw, cov: Image.Image, colour_cov: Image.Image,
                  tint: np.ndarray, fonts, cjk: bool, face, bold, margin_x: int, right: int, y: int,
                  size: int) -> int:
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
    if kind < 0.7:  # a figure: a photo-like field, in colour or grey, halftoned or continuous, with a frame
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
        region = (x0, y, x0 + fw, y + fh)
        if rng.random() < 0.5:  # a colour photograph
            photo = _colour_photo(rng, field_)
            top, left = max(0, y), max(0, x0)  # small pages start above and left of the canvas
            bottom, right_ = min(page.h, y + fh), min(page.w, x0 + fw)
            if bottom > top and right_ > left:
                tint[top:bottom, left:right_] *= photo[top - y:bottom - y, left - x0:right_ - x0]
            if rng.random() < 0.6:
                draw.rectangle(region, outline=230, width=max(1, size // 14))
            page.text_boxes.append(region)
            return y + fh + int(size * rng.uniform(0.8, 1.5))
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
        coloured = rng.random() < 0.5  # charts and schematics in colour, filled shapes among them
        for _ in range(int(rng.integers(2, 7))):
            x0 = margin_x + int(rng.uniform(0, 0.8) * width)
            y0 = y + int(rng.uniform(0, 0.7) * dh)
            bw, bh = int(rng.uniform(1.5, 5) * size), int(rng.uniform(1, 2.5) * size)
            shape = rng.random()
            layer = Image.new("L", (page.w, page.h), 0) if coloured else None
            pen = ImageDraw.Draw(layer) if layer is not None else draw
            filled = rng.random() < (0.5 if coloured else 0.2)
            if shape < 0.35:
                pen.rectangle([x0, y0, x0 + bw, y0 + bh], outline=235, width=lw, fill=235 if filled else None)
            elif shape < 0.6:
                pen.ellipse([x0, y0, x0 + bh, y0 + bh], outline=235, width=lw, fill=235 if filled else None)
            elif shape < 0.8:
                x1 = x0 + bw
                if filled:  # a triangle, as charts mark points
                    pen.polygon([(x0, y0 + bh), (x0 + bh // 2, y0), (x0 + bh, y0 + bh)], fill=235)
                else:
                    pen.line([(x0, y0), (x1, y0)], fill=235, width=lw)
                    pen.polygon([(x1, y0 - lw * 2), (x1 + lw * 4, y0), (x1, y0 + lw * 2)], fill=235)
            else:
                draw.line([(x0, y0), (x0, y0 + bh * 2), (x0 + bw * 2, y0 + bh * 2)], fill=235, width=lw)
                xs = np.linspace(x0, x0 + bw * 2, 24)
                ys = y0 + bh * 2 - (np.sin(np.linspace(0, rng.uniform(2, 7), 24)) * 0.4 + 0.5) * bh * 1.8
                pen.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=235, width=lw)
            if layer is not None:
                _apply_tint(tint, layer, _print_colour(rng))
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




