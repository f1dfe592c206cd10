"""Fonts for the printed part of synthetic pages: whatever the system has (CJK faces included),
else Pillow's bundled font, so generation works on a bare container."""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont

_PACKAGE_FONTS = Path(__file__).resolve().parent.parent / "fonts"
FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.fonts",
    "~/.local/share/fonts",
    str(_PACKAGE_FONTS),
)
_SUFFIXES = (".ttf", ".ttc", ".otf")
# Symbol, emoji and math faces render boxes or pictographs instead of text.
_SKIP_WORDS = ("emoji", "symbol", "math", "dingbat", "wingding", "icon", "awesome")
_CJK_PROBE = "的中国学"
_LATIN_PROBE = "Aag5"


@dataclass(frozen=True)
class FontFace:
    path: str
    index: int
    cjk: bool


def _font_dirs() -> list[Path]:
    # SEGHW_FONT_DIRS (os.pathsep-separated) replaces the defaults; empty means "no system fonts".
    env = os.environ.get("SEGHW_FONT_DIRS")
    dirs = env.split(os.pathsep) if env is not None else list(FONT_DIRS)
    return [Path(d).expanduser() for d in dirs if d]


def _has_glyphs(font: ImageFont.FreeTypeFont, text: str) -> bool:
    # A missing glyph renders as .notdef; compare against a private-use code point nobody maps.
    missing = font.getmask("\U0010fffd")
    missing_key = (missing.size, bytes(missing))
    for ch in text:
        m = font.getmask(ch)
        if m.size[0] == 0 or (m.size, bytes(m)) == missing_key:
            return False
    return True


def _probe(path: Path) -> FontFace | None:
    lowered = path.name.lower()
    if any(w in lowered for w in _SKIP_WORDS):
        return None
    faces: list[tuple[int, str]] = []
    for index in range(10 if path.suffix.lower() == ".ttc" else 1):
        try:
            font = ImageFont.truetype(str(path), 20, index=index, layout_engine=ImageFont.Layout.BASIC)
        except (OSError, ValueError):
            break
        faces.append((index, " ".join(font.getname())))
    if not faces:
        return None
    # Collections hold one face per region; the Simplified Chinese one suits exam sheets best.
    index = next((i for i, name in faces if " SC" in name or "GB" in name), faces[0][0])
    try:
        font = ImageFont.truetype(str(path), 20, index=index, layout_engine=ImageFont.Layout.BASIC)
        if not _has_glyphs(font, _LATIN_PROBE):
            return None
        return FontFace(str(path), index, _has_glyphs(font, _CJK_PROBE))
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=4)
def _discover(dirs: tuple[Path, ...]) -> tuple[FontFace, ...]:
    found: list[FontFace] = []
    seen: set[str] = set()
    for d in dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*")):
            if p.suffix.lower() not in _SUFFIXES or not p.is_file():
                continue
            real = str(p.resolve())
            if real in seen:
                continue
            seen.add(real)
            face = _probe(p)
            if face is not None:
                found.append(face)
    return tuple(found)


def available_fonts() -> tuple[FontFace, ...]:
    """Usable faces in a stable order (sorted paths), probed once per process."""
    return _discover(tuple(_font_dirs()))


def fonts_fingerprint(fonts: tuple[FontFace, ...]) -> str:
    """Short hash of the font set: the same seed draws different pages with different fonts."""
    h = hashlib.sha1()
    for f in fonts:
        try:
            size = os.path.getsize(f.path)
        except OSError:
            size = -1
        h.update(f"{Path(f.path).name}:{f.index}:{size}:{int(f.cjk)}\n".encode())
    return h.hexdigest()[:12]


@functools.lru_cache(maxsize=512)
def load_font(face: FontFace | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if face is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(face.path, size, index=face.index, layout_engine=ImageFont.Layout.BASIC)
