"""Pillow drawing primitives shared by the report's plots: fonts, a canvas, vertical text, round
tick values, colour look-up tables.

Why Pillow and these few helpers rather than matplotlib figures: the report's three plots are a
raster with a frame, a bar chart and a colour bar, and matplotlib's fixed cost per figure (axes,
tick and text layout) was ~0.4-0.8 s of CPU each, most of a capture's whole overhead. Drawn with
Pillow they cost a few tens of milliseconds. Matplotlib still supplies the colour maps (its
look-up tables) and the font (the DejaVu Sans it ships), so the plots look like its plots.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from matplotlib import colormaps, get_data_path
from PIL import Image, ImageDraw, ImageFont

BLACK, WHITE, GREY, TEXT = (0, 0, 0), (255, 255, 255), (166, 166, 166), (30, 30, 30)
PNG = {"format": "png", "compress_level": 4}  # the default level 6 costs ~2x for ~5% size

RGB = tuple[int, int, int]


@lru_cache(maxsize=None)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(Path(get_data_path()) / "fonts" / "ttf" / name), size)


def hex_rgb(colour: str) -> RGB:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


@lru_cache(maxsize=None)
def lut(name: str) -> np.ndarray:
    """A matplotlib colour map as a 256 × 3 uint8 table."""
    return colormaps[name](np.linspace(0.0, 1.0, 256), bytes=True)[:, :3].copy()


@lru_cache(maxsize=None)
def palette(name: str, bad: RGB) -> bytes:
    """A Pillow palette: 255 evenly spaced entries of a colour map, then ``bad`` as entry 255."""
    table = lut(name)[np.round(np.linspace(0, 255, 255)).astype(np.intp)]
    return np.vstack([table, np.array([bad], np.uint8)]).tobytes()


def canvas(width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (int(width), int(height)), WHITE)
    return image, ImageDraw.Draw(image)


def vertical_text(image: Image.Image, text: str, center: tuple[float, float], size: int,
                  fill: RGB = TEXT, bold: bool = False, anchor_top: bool = False) -> None:
    """Text turned 90° (read bottom to top), centred on ``center``; with ``anchor_top`` its end
    (right, after turning: top) sits at center's y instead."""
    f = font(size, bold)
    w = int(math.ceil(f.getlength(text))) + 4
    strip = Image.new("RGB", (w, size + 8), WHITE)
    ImageDraw.Draw(strip).text((w / 2, (size + 8) / 2), text, font=f, fill=fill, anchor="mm")
    strip = strip.rotate(90, expand=True)
    top = center[1] if anchor_top else center[1] - strip.height / 2
    image.paste(strip, (int(center[0] - strip.width / 2), int(top)))


def nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 × 10^k apart) within [lo, hi], at most ``most`` of them."""
    span = hi - lo
    if not math.isfinite(span) or span <= 0:
        return [lo]
    for exp in range(math.floor(math.log10(span / most)) - 1, 400):
        for mult in (1, 2, 5):
            step = mult * 10.0 ** exp
            first = math.ceil(lo / step - 1e-9)
            ticks = [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]
            if len(ticks) <= most:
                return [0.0 if abs(t) < step * 1e-9 else t for t in ticks]
    return [lo, hi]
