"""The handwriting of a synthetic pair: pen strokes planned on the page (answers in the blanks,
cursive words, digits, CJK-like characters, ticks, crosses, circles, underlines, scribbles) and
rendered as ink that is multiplied over it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from seghw.data.printed import Page

SUPERSAMPLE = 4

# Multiplicative transmission of each ink per RGB channel (1 = no effect) and its opacity range.
INKS: dict[str, tuple[tuple[float, float, float], tuple[float, float]]] = {
    "blue": ((0.12, 0.22, 0.62), (0.75, 0.97)),
    "black": ((0.10, 0.10, 0.12), (0.85, 1.0)),
    "red": ((0.88, 0.12, 0.14), (0.75, 0.95)),
    "pencil": ((0.38, 0.38, 0.41), (0.35, 0.6)),
}
_PRIMARY_INKS = ("blue", "black", "pencil", "red")
_PRIMARY_WEIGHTS = (0.35, 0.42, 0.13, 0.10)

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
class Stroke:
    points: np.ndarray  # (N, 2) x, y in pixels
    width: float
    ink: str




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


def plan_handwriting(rng: np.random.Generator, page: Page, fallback: bool = False) -> list[Stroke]:
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
    strokes: list[Stroke] = []

    def add(paths: list[np.ndarray], ink: str, width: float) -> None:
        strokes.extend(Stroke(p, min(8.0, width * rng.uniform(0.85, 1.15)), ink) for p in paths if len(p) >= 2)

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


def render_ink(
    rng: np.random.Generator, strokes: Sequence[Stroke], h: int, w: int
) -> tuple[np.ndarray, np.ndarray]:
    """Transmission (H,W,3; 1 = no ink) and ink alpha (H,W), drawn per stroke in its own bounding box
    at 4x resolution and area-downsampled: anti-aliased edges and sub-pixel widths for free."""
    trans = np.ones((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    ss = SUPERSAMPLE
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


