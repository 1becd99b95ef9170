"""The report's image plots: the two images on one shared log colour scale, and log10(cand/ref)
over the bright pixels, drawn with Pillow (bundle.present.drawing says why).

A full detector (2527 × 2463) is *displayed* block-max-pooled so that no panel side exceeds
``PANEL_MAX`` pixels; each pooled pixel is drawn as at least one screen pixel (never resampled
down), so a bright one-pixel peak always survives. The data are never modified.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bundle.analysis.pooling import display_block, pool_max
from bundle.present.drawing import (BLACK, GREY, PNG, TEXT, WHITE, canvas, font, nice_ticks, palette,
                            vertical_text)

PANEL_MIN = 360  # small images are enlarged (nearest neighbour) to about this
BRIGHT_FRACTION = 1e-3  # a pixel is bright when >= this fraction of its own image's max
LOG_DECADES = 6  # the shared log colour scale spans this many decades below the brightest pixel


# --------------------------------------------------------------------------- pure helpers


def _nanmax(a: np.ndarray) -> float:
    """The largest non-NaN value; NaN, without numpy's all-NaN warning, when there is none."""
    return float(np.fmax.reduce(a, axis=None)) if np.size(a) else math.nan


def bright_mask(ref: np.ndarray, cand: np.ndarray, fraction: float = BRIGHT_FRACTION,
                maxima: tuple[float, float] | None = None) -> np.ndarray:
    """Pixels where either image is >= ``fraction`` of its own (finite) maximum. ``maxima``: the
    images' NaN-ignoring maxima, when the caller has them."""
    bright = np.zeros(np.shape(ref), dtype=bool)
    for k, img in enumerate((ref, cand)):
        if not np.size(img):
            continue
        top = maxima[k] if maxima is not None else _nanmax(img)
        if not math.isfinite(top):  # an inf pixel: scale to the largest finite one
            top = _nanmax(np.where(np.isfinite(img), img, np.nan))
        if top > 0:
            bright |= img >= top * fraction
    return bright


def _log_ratio_at(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    r = r.astype(np.float64)
    c = c.astype(np.float64)
    out = np.full(r.shape, np.nan)
    both = (r > 0) & (c > 0)
    with np.errstate(divide="ignore", invalid="ignore"):  # an inf pixel: ±inf or nan is the finding
        out[both] = np.log10(c[both] / r[both])
    out[(r <= 0) & (c > 0)] = np.inf
    out[(c <= 0) & (r > 0)] = -np.inf
    return out


def log_ratio(ref: np.ndarray, cand: np.ndarray, fraction: float = BRIGHT_FRACTION) -> np.ndarray:
    """log10(cand/ref) at full resolution where either image is bright (>= fraction of its own
    max), NaN elsewhere; ±inf where one side is bright and the other <= 0."""
    bright = bright_mask(ref, cand, fraction)
    out = np.full(np.shape(ref), np.nan)
    idx = np.flatnonzero(bright)
    out.flat[idx] = _log_ratio_at(np.asarray(ref).ravel()[idx], np.asarray(cand).ravel()[idx])
    return out


def pooled_log_ratio(ref: np.ndarray, cand: np.ndarray, block: int,
                     fraction: float = BRIGHT_FRACTION,
                     maxima: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """log10(cand/ref) over the bright pixels, pooled for display: each block × block cell shows
    the value of largest magnitude among its bright pixels (sign kept), NaN where it has none.

    Returns (pooled map, the bright pixels' full-resolution values). Only the bright pixels are
    touched, so a full detector costs a few mask passes.
    """
    h, w = np.shape(ref)
    f = block
    idx = np.flatnonzero(bright_mask(ref, cand, fraction, maxima))
    vals = _log_ratio_at(np.asarray(ref).ravel()[idx], np.asarray(cand).ravel()[idx])
    bh, bw = math.ceil(h / f), math.ceil(w / f)
    pooled = np.full((bh, bw), np.nan)
    if idx.size:
        ys, xs = np.divmod(idx, w)
        cell = (ys // f) * bw + xs // f
        mag = np.where(np.isnan(vals), -1.0, np.abs(vals))
        order = np.lexsort((mag, cell))  # by cell, then by magnitude: the last one wins
        c_sorted = cell[order]
        last = np.flatnonzero(np.append(c_sorted[1:] != c_sorted[:-1], True))
        pooled.flat[c_sorted[last]] = vals[order][last]
    return pooled, vals


def log_scale(pooled: list[np.ndarray]) -> tuple[float, float]:
    """(vmin, vmax) of the shared log scale: the brightest positive pixel, down LOG_DECADES
    decades or to the dimmest positive pixel, whichever is higher."""
    vals = [p[np.isfinite(p) & (p > 0)] for p in pooled]
    vals = np.concatenate(vals) if vals else np.empty(0)
    vmax = float(vals.max()) if vals.size else 1.0
    vmin = max(float(vals.min()) if vals.size else vmax * 1e-6, vmax * 10.0 ** -LOG_DECADES)
    if vmin >= vmax:
        vmin = vmax / 10.0
    return vmin, vmax


# --------------------------------------------------------------------------- colour


def _colorize(t: np.ndarray, ok: np.ndarray, cmap: str, bad: tuple[int, int, int]) -> np.ndarray:
    """RGB uint8 of t in [0, 1] through the colour map; ``bad`` where not ``ok``."""
    # A palette image: 255 levels of the map and ``bad`` as entry 255, expanded to RGB by Pillow
    # (a third of the time of indexing a 256 × 3 table with numpy).
    idx = np.clip(np.where(ok, t, 0.0), 0.0, 1.0)
    idx = (idx * 254.0 + 0.5).astype(np.uint8)
    idx[~ok] = 255
    image = Image.fromarray(idx, "P")
    image.putpalette(palette(cmap, bad))
    return np.asarray(image.convert("RGB"))


def colorize_log(a: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Inferno on log10 between vmin and vmax; black at or below 0, below vmin, or NaN; +inf at
    the top of the scale."""
    with np.errstate(all="ignore"):
        ok = ~np.isnan(a) & (a > 0) & (a >= vmin)
        lo, hi = math.log10(vmin), math.log10(vmax)
        t = (np.log10(np.where(ok, a, 1.0)) - lo) / (hi - lo)
    return _colorize(t, ok, "inferno", BLACK)


def colorize_diverging(a: np.ndarray, lim: float) -> np.ndarray:
    """RdBu_r, linear and symmetric on [-lim, lim] (values beyond land on the ends); grey NaN."""
    ok = ~np.isnan(a)
    with np.errstate(all="ignore"):
        t = (np.where(ok, a, 0.0) + lim) / (2.0 * lim)
    return _colorize(t, ok, "RdBu_r", GREY)


# --------------------------------------------------------------------------- drawing


def _enlarge(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """Nearest-neighbour enlargement of a small panel to about PANEL_MIN; (panel, factor)."""
    u = max(1, PANEL_MIN // max(rgb.shape[:2]))
    if u > 1:
        rgb = np.repeat(np.repeat(rgb, u, axis=0), u, axis=1)
    return rgb, u


@dataclass(frozen=True)
class _Panel:
    """Where a panel of a (slow, fast) image sits on the canvas and how data map to it."""

    x0: int
    y0: int
    width: int
    height: int
    shape: tuple[int, int]
    scale: float  # screen pixels per data pixel

    def at(self, slow: float, fast: float) -> tuple[float, float]:
        return self.x0 + (fast + 0.5) * self.scale, self.y0 + (slow + 0.5) * self.scale


def _frame(draw: ImageDraw.ImageDraw, p: _Panel, y_ticks: bool) -> None:
    draw.rectangle((p.x0 - 1, p.y0 - 1, p.x0 + p.width, p.y0 + p.height), outline=TEXT)
    small = font(11)
    for v in nice_ticks(0, p.shape[1] - 1):
        x = p.at(0, v)[0]
        draw.line((x, p.y0 + p.height, x, p.y0 + p.height + 4), fill=TEXT)
        draw.text((x, p.y0 + p.height + 6), f"{v:g}", font=small, fill=TEXT, anchor="ma")
    if y_ticks:
        for v in nice_ticks(0, p.shape[0] - 1):
            y = p.at(v, 0)[1]
            draw.line((p.x0 - 5, y, p.x0 - 1, y), fill=TEXT)
            draw.text((p.x0 - 7, y), f"{v:g}", font=small, fill=TEXT, anchor="rm")
    draw.text((p.x0 + p.width / 2, p.y0 + p.height + 24), "fast pixel", font=font(12),
              fill=TEXT, anchor="ma")


def _mark_pixel(draw: ImageDraw.ImageDraw, p: _Panel, pixel: tuple[int, int] | None,
                color: tuple[int, int, int]) -> None:
    if pixel is None or not (0 <= pixel[0] < p.shape[0] and 0 <= pixel[1] < p.shape[1]):
        return
    x, y = p.at(*pixel)
    draw.ellipse((x - 8, y - 8, x + 8, y + 8), outline=color, width=2)
    draw.line((x - 13, y, x + 13, y), fill=color)
    draw.line((x, y - 13, x, y + 13), fill=color)
    label = f"traced ({pixel[0]}, {pixel[1]})"
    small = font(11)
    w = small.getlength(label)
    lx = x + 12 if x + 12 + w + 4 < p.x0 + p.width else x - 12 - w
    ly = y - 24 if y - 24 > p.y0 else y + 10
    box = BLACK if color != BLACK else WHITE
    draw.rectangle((lx - 2, ly - 1, lx + w + 2, ly + 14), fill=box)
    draw.text((lx, ly), label, font=small, fill=color)


def _colour_bar(image: Image.Image, draw: ImageDraw.ImageDraw, x0: int, y0: int, height: int,
                rgb_of: "callable", ticks: list[tuple[float, str]], label: str) -> None:
    """A vertical colour bar: ``rgb_of(t)`` colours t in [0, 1] (1 at the top); ``ticks`` are
    (t, text)."""
    t = np.linspace(1.0, 0.0, height)[:, None]
    strip = rgb_of(np.repeat(t, 16, axis=1))
    image.paste(Image.fromarray(strip, "RGB"), (x0, y0))
    draw.rectangle((x0 - 1, y0 - 1, x0 + 16, y0 + height), outline=TEXT)
    small = font(11)
    widest = 0
    for tv, text in ticks:
        y = y0 + (1.0 - tv) * (height - 1)
        draw.line((x0 + 16, y, x0 + 20, y), fill=TEXT)
        draw.text((x0 + 23, y), text, font=small, fill=TEXT, anchor="lm")
        widest = max(widest, small.getlength(text))
    vertical_text(image, label, (x0 + 23 + widest + 14, y0 + height / 2), 12)


def plot_images(ref_name: str, ref: np.ndarray, cand_name: str, cand: np.ndarray,
                pixel: tuple[int, int] | None, path: Path,
                pooled: tuple[np.ndarray, np.ndarray] | None = None,
                totals: tuple[float, float] | None = None) -> None:
    """Reference and candidate side by side on ONE shared log colour scale.

    ``pooled``: the two images already pooled with display_block (a capture pools the reference
    while the candidate engine runs); ``totals``: their float64 sums, when known."""
    f = display_block(ref.shape)
    pr, pc = pooled if pooled is not None else (pool_max(ref, f), pool_max(cand, f))
    vmin, vmax = log_scale([pr, pc])
    panels = []
    for img in (pr, pc):
        rgb, u = _enlarge(colorize_log(img, vmin, vmax))
        panels.append((rgb, u))
    ph, pw = panels[0][0].shape[:2]
    left, gap, top, bottom = 72, 36, 74, 58
    bar_x = left + 2 * pw + gap + 24
    image, draw = canvas(bar_x + 16 + 150, top + ph + bottom)
    scale = panels[0][1] / f
    pooled_note = f"; display max-pooled {f}×{f}" if f > 1 else ""
    draw.text((image.width / 2, 10), f"{ref_name} vs {cand_name}: {ref.shape[0]} slow × "
              f"{ref.shape[1]} fast{pooled_note}", font=font(14), fill=TEXT, anchor="ma")
    for i, ((rgb, _u), name, full, role) in enumerate(
            ((panels[0], ref_name, ref, "reference"), (panels[1], cand_name, cand, "candidate"))):
        p = _Panel(left + i * (pw + gap), top, pw, ph, tuple(full.shape), scale)
        image.paste(Image.fromarray(rgb, "RGB"), (p.x0, p.y0))
        _frame(draw, p, y_ticks=i == 0)
        total = totals[i] if totals is not None else float(np.nansum(full, dtype=np.float64))
        peak = _nanmax((pr, pc)[i])  # max-pooling keeps the maximum exactly
        draw.text((p.x0 + pw / 2, top - 24), f"{name} ({role}) — sum {total:.4g}, max "
                  f"{peak:.4g}", font=font(12), fill=TEXT, anchor="ma")
        _mark_pixel(draw, p, pixel, (0, 255, 255))
    vertical_text(image, "slow pixel", (14, top + ph / 2), 12)
    lo, hi = math.log10(vmin), math.log10(vmax)
    decades = list(range(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1))
    step = max(1, math.ceil(len(decades) / 8))
    ticks = [((e - lo) / (hi - lo), f"1e{e}") for e in decades[::step]]
    if len(ticks) < 2:  # less than two decades: label the ends instead
        ticks = [(0.0, f"{vmin:.3g}"), (1.0, f"{vmax:.3g}")]
    _colour_bar(image, draw, bar_x, top, ph,
                lambda t: colorize_log(10.0 ** (lo + t * (hi - lo)), vmin, vmax), ticks,
                "intensity (shared log scale; black ≤ 0 or below scale)")
    image.save(path, **PNG)


def plot_log_ratio(ref_name: str, ref: np.ndarray, cand_name: str, cand: np.ndarray,
                   pixel: tuple[int, int] | None, path: Path,
                   maxima: tuple[float, float] | None = None) -> None:
    """log10(cand/ref) over the bright pixels, symmetric diverging scale, dim pixels grey.
    ``maxima``: the images' NaN-ignoring maxima, when known."""
    f = display_block(ref.shape)
    shown, vals = pooled_log_ratio(ref, cand, f, maxima=maxima)
    finite = np.abs(vals[np.isfinite(vals)])
    lim = float(np.percentile(finite, 99.5)) if finite.size else 0.0
    if lim <= 0:
        lim = max(float(finite.max()) if finite.size else 0.0, 1e-6)
    shown = np.clip(shown, -lim, lim)  # ±inf (one side 0) land on the ends of the scale
    rgb, u = _enlarge(colorize_diverging(shown, lim))
    ph, pw = rgb.shape[:2]
    left, top, bottom = 72, 78, 58
    bar_x = left + pw + 24
    image, draw = canvas(bar_x + 16 + 170, top + ph + bottom)
    n_bright = int(vals.size)
    fin = vals[np.isfinite(vals)]
    med = float(np.median(fin)) if fin.size else math.nan
    worst = float(np.abs(vals).max()) if vals.size else math.nan
    lines = [f"log10({cand_name}/{ref_name}) where either is bright (≥ {BRIGHT_FRACTION:g} of its "
             f"max); grey = dim",
             f"{n_bright} bright pixels: median {med:.3g} (ratio "
             f"{10 ** med if math.isfinite(med) else math.nan:.4g}), max |log10| {worst:.3g}"
             + (f"; display: largest |value| per {f}×{f} block" if f > 1 else "")]
    for k, line in enumerate(lines):
        draw.text((image.width / 2, 10 + 19 * k), line, font=font(13), fill=TEXT, anchor="ma")
    p = _Panel(left, top, pw, ph, tuple(ref.shape), u / f)
    image.paste(Image.fromarray(rgb, "RGB"), (p.x0, p.y0))
    _frame(draw, p, y_ticks=True)
    vertical_text(image, "slow pixel", (14, top + ph / 2), 12)
    _mark_pixel(draw, p, pixel, BLACK)
    ticks = [((v + lim) / (2 * lim), f"{v:.3g}") for v in nice_ticks(-lim, lim, most=7)]
    _colour_bar(image, draw, bar_x, top, ph,
                lambda t: colorize_diverging(-lim + t * 2 * lim, lim), ticks,
                f"log10({cand_name}/{ref_name})  (red: {cand_name} brighter)")
    image.save(path, **PNG)
