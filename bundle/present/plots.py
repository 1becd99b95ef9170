"""The report's plots: which to draw, the per-key ratio bar chart, and drawing them all.

The two image plots (images on one log scale, their log ratio) are drawn by
``bundle.present.imageplots``; the bar chart here. Both with Pillow (``bundle.present.drawing`` says why).

``bar_chart_data`` is the pure part of the bar chart (which keys, which values, which bar is the
first divergence) so it can be tested and reused without drawing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from PIL import ImageDraw

from bundle.present import imageplots
from bundle.present.drawing import BLACK, PNG, RGB, TEXT, WHITE, canvas, font, hex_rgb, vertical_text
from bundle.analysis.metrics import ImageSummary
from bundle.model.records import CaptureResult, Comparison, ComparisonRow, RootsReport

IMAGES = "images"
LOG_RATIO = "log_ratio"
KEY_RATIOS = "key_ratios"
KEY_GRAPH = "key_graph"

# Bar colours: within tolerance, beyond it, the first divergence.
C_OK, C_BAD, C_FIRST, C_MISSING = "#4c78a8", "#f58518", "#d62728", "#9e9e9e"


# --------------------------------------------------------------------------- pure helpers


@dataclass(frozen=True)
class BarChartData:
    """One bar per trace key, in pipeline order.

    ``values[i]`` is |log10(cand/ref)| of that key's worst component/occurrence (0 where both are
    equal; ``inf`` where one side is 0 or the signs differ; nan where a side is missing or
    unparsed: ``flags[i]`` says which). Worst = beyond tolerance with inf, then beyond tolerance by
    size, then missing, then within tolerance by size. ``highlighted_index`` is the bar of the
    comparison's first divergence, or None.
    """

    keys: tuple[str, ...]
    values: tuple[float, ...]
    flags: tuple[str, ...]  # "" | "missing" | "zero" | "sign"
    tolerances: tuple[float, ...]  # log10(1 + rtol) of each key's tightest row
    diverges: tuple[bool, ...]  # some row of the key is beyond tolerance (or missing)
    highlighted_index: int | None
    tolerance: float  # log10(1 + rtol) for the most common rtol: the drawn line


def _row_value(r: ComparisonRow) -> tuple[float, str]:
    if r.status in ("missing_ref", "missing_cand", "unparsed") or r.ref is None or r.cand is None:
        return math.nan, "missing"
    a, b = r.ref, r.cand
    if math.isnan(a) or math.isnan(b):
        return (0.0, "") if (math.isnan(a) and math.isnan(b)) else (math.inf, "zero")
    if a == b:
        return 0.0, ""
    if a == 0 or b == 0 or math.isinf(a) or math.isinf(b):
        return math.inf, "zero"
    if (a < 0) != (b < 0):
        return math.inf, "sign"
    return abs(math.log10(abs(b) / abs(a))), ""


def bar_chart_data(cmp: Comparison | None) -> BarChartData | None:
    """The bar chart's data, or None when there is no comparison. Pure."""
    if cmp is None or not cmp.rows:
        return None
    order: dict[str, int] = {}
    for r in cmp.rows:
        order[r.key] = min(order.get(r.key, r.position), r.position)
    keys = sorted(order, key=lambda k: order[k])
    # worst row per key: differs with one side 0 / sign flip (inf) > differs > missing > matches
    best: dict[str, tuple[tuple[int, float], float, str]] = {}
    tols: dict[str, float] = {}
    diverges: dict[str, bool] = {}
    for r in cmp.rows:
        v, f = _row_value(r)
        tols[r.key] = min(tols.get(r.key, math.inf), math.log10(1.0 + r.rtol))
        diverges[r.key] = diverges.get(r.key, False) or r.status != "match"
        if f == "missing":
            score = (1, 0.0)
        elif r.status == "match":
            score = (0, v if math.isfinite(v) else 0.0)
        elif math.isinf(v):
            score = (3, 0.0)
        else:
            score = (2, v)
        if r.key not in best or score > best[r.key][0]:
            best[r.key] = (score, v, f)
    vals = {k: b[1] for k, b in best.items()}
    flags = {k: b[2] for k, b in best.items()}
    rtols = [r.rtol for r in cmp.rows]
    common = max(sorted(set(rtols)), key=rtols.count)
    fd = cmp.first_divergence
    hi = keys.index(fd.key) if fd is not None and fd.key in keys else None
    return BarChartData(tuple(keys), tuple(vals[k] for k in keys), tuple(flags[k] for k in keys),
                        tuple(tols[k] for k in keys), tuple(diverges[k] for k in keys), hi,
                        math.log10(1.0 + common))


def _as_image(a: np.ndarray, result: CaptureResult) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1 and result.metrics is not None and a.size == result.metrics.slow * \
            result.metrics.fast:
        a = a.reshape(result.metrics.slow, result.metrics.fast)  # a view: the data are untouched
    if a.ndim != 2:
        raise ValueError(f"image must be 2-D (slow, fast), got shape {a.shape}")
    return a


# --------------------------------------------------------------------------- drawing


def _hatch(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], cross: bool) -> None:
    """White diagonal hatching inside box ("//"; "xx" with ``cross``)."""
    x0, y0, x1, y1 = box
    step = 7
    k = -(y1 - y0)
    while k < x1 - x0:
        for sign in ((1, -1) if cross else (1,)):
            # the line x = x0 + k + t, y = y1 - t (or y0 + t mirrored), clipped to the box
            t0, t1 = max(0.0, -k), min(y1 - y0, x1 - x0 - k)
            if t1 > t0:
                ya, yb = (y1 - t0, y1 - t1) if sign == 1 else (y0 + t0, y0 + t1)
                draw.line((x0 + k + t0, ya, x0 + k + t1, yb), fill=WHITE, width=1)
        k += step


def _arrow(draw: ImageDraw.ImageDraw, start: tuple[float, float], end: tuple[float, float],
           colour: RGB) -> None:
    draw.line((*start, *end), fill=colour, width=1)
    ux = 1.0 if end[0] >= start[0] else -1.0
    tip = end
    draw.polygon([tip, (tip[0] - 7 * ux, tip[1] - 3.5), (tip[0] - 7 * ux, tip[1] + 3.5)], fill=colour)


@dataclass(frozen=True)
class _Frame:
    """The bar chart's geometry: canvas size, plot box, bar slots and the log y scale."""

    width: int
    height: int
    left: int
    right: int
    top_px: int
    plot_h: int
    slot: float
    lo: float
    hi: float
    top: float  # the value of a full-height bar

    @property
    def base(self) -> int:
        return self.top_px + self.plot_h

    def y_of(self, v: float) -> float:
        return self.top_px + self.plot_h * (1.0 - (math.log10(v) - self.lo) / (self.hi - self.lo))

    def x_of(self, i: float) -> float:
        return self.left + (i + 0.5) * self.slot


_FLOOR = 1e-17  # below the double-precision resolution of a ratio: "identical"


def _frame(data: BarChartData) -> _Frame:
    n = len(data.keys)
    finite = [v for v in data.values if math.isfinite(v) and v > 0]
    top = max(finite + [data.tolerance * 10, 1e-6]) * 1e4  # headroom for labels and legend
    longest = max((font(10).getlength(k) for k in data.keys), default=0)
    left, right, top_px, plot_h = 84, 20, 104, 360
    width = int(min(max(1000, 24 * n + left + right + 40), 4000))
    return _Frame(width=width, height=int(top_px + plot_h + longest + 30), left=left, right=right,
                  top_px=top_px, plot_h=plot_h, slot=(width - left - right) / max(n, 1),
                  lo=math.log10(_FLOOR / 10), hi=math.log10(top), top=top)


def _bars(data: BarChartData, top: float) -> list[tuple[float, str, str]]:
    """(height, colour, hatch) of each bar; off-scale values are full-height hatched bars."""
    bars = []
    for i, (v, bad) in enumerate(zip(data.values, data.diverges)):
        first = i == data.highlighted_index
        if math.isnan(v) or math.isinf(v):
            bars.append((top, C_FIRST if first else C_MISSING if math.isnan(v) else C_BAD,
                         "//" if math.isnan(v) else "xx"))
        else:
            bars.append((max(v, _FLOOR), C_FIRST if first else C_BAD if bad else C_OK, ""))
    return bars


def plot_key_ratios(data: BarChartData, ref_name: str, cand_name: str, path: Path) -> None:
    """|log10(cand/ref)| per trace key, log y axis, tolerance line, first divergence in red."""
    fr = _frame(data)
    bars = _bars(data, fr.top)
    image, draw = canvas(fr.width, fr.height)
    _draw_axes(image, draw, fr, ref_name, cand_name)
    _draw_bars(image, draw, fr, data, bars)
    _draw_tolerance(draw, fr, data)
    if data.highlighted_index is not None:
        _draw_first_divergence(draw, fr, data, bars[data.highlighted_index][0])
        title = f"first divergence: {data.keys[data.highlighted_index]}"
    else:
        title = "no divergence"
    draw.text((fr.width / 2, 10), f"Per-key |log10({cand_name}/{ref_name})| in pipeline order — "
              f"{title}", font=font(14), fill=TEXT, anchor="ma")
    _draw_legend(draw, fr, data)
    image.save(path, **PNG)


def _draw_axes(image, draw: ImageDraw.ImageDraw, fr: _Frame, ref_name: str, cand_name: str) -> None:
    """Frame, decade ticks (every other decade when there are many), y label."""
    draw.rectangle((fr.left, fr.top_px, fr.width - fr.right, fr.base), outline=TEXT)
    decades = list(range(math.ceil(fr.lo), math.floor(fr.hi) + 1))
    every = max(1, math.ceil(len(decades) / 12))
    for e in decades[::every]:
        y = fr.y_of(10.0 ** e)
        draw.line((fr.left - 5, y, fr.left, y), fill=TEXT)
        draw.text((fr.left - 8, y), f"1e{e}", font=font(11), fill=TEXT, anchor="rm")
    vertical_text(image, f"|log10({cand_name}/{ref_name})|, worst component",
                  (16, fr.top_px + fr.plot_h / 2), 12)


def _draw_bars(image, draw: ImageDraw.ImageDraw, fr: _Frame, data: BarChartData,
               bars: list[tuple[float, str, str]]) -> None:
    """The bars, their key labels, and each key's own tolerance where it is not the common one."""
    slot, base = fr.slot, fr.base
    for i, (h, colour, hatch) in enumerate(bars):
        box = (fr.x_of(i) - 0.375 * slot, fr.y_of(h), fr.x_of(i) + 0.375 * slot, base - 1)
        draw.rectangle(box, fill=hex_rgb(colour))
        if hatch:
            _hatch(draw, box, cross=hatch == "xx")
        x = fr.x_of(i)
        draw.line((x, base, x, base + 4), fill=TEXT)
        highlighted = i == data.highlighted_index
        vertical_text(image, data.keys[i], (x, base + 7), 10, bold=highlighted,
                      fill=hex_rgb(C_FIRST) if highlighted else TEXT, anchor_top=True)
    for i, tol in enumerate(data.tolerances):
        if not math.isclose(tol, data.tolerance):
            draw.line((fr.x_of(i) - 0.4 * slot, fr.y_of(tol), fr.x_of(i) + 0.4 * slot,
                       fr.y_of(tol)), fill=BLACK, width=2)


def _draw_tolerance(draw: ImageDraw.ImageDraw, fr: _Frame, data: BarChartData) -> None:
    """The common tolerance line, dashed, and its label."""
    y = fr.y_of(data.tolerance)
    x = float(fr.left)
    while x < fr.width - fr.right:
        draw.line((x, y, min(x + 6, fr.width - fr.right), y), fill=BLACK)
        x += 10
    label = f"tolerance: log10(1 + rtol) = {data.tolerance:.2g}"
    lw = font(11).getlength(label)
    draw.rectangle((fr.left + 6, y - 19, fr.left + 10 + lw, y - 3), fill=WHITE)
    draw.text((fr.left + 8, y - 18), label, font=font(11), fill=TEXT)


def _draw_first_divergence(draw: ImageDraw.ImageDraw, fr: _Frame, data: BarChartData,
                           height: float) -> None:
    """The first divergence's callout and arrow: beside its bar, over the keys before it (all
    within tolerance, so low), unless the bar is near the left edge."""
    i = data.highlighted_index
    assert i is not None
    key, v = data.keys[i], data.values[i]
    full = not math.isfinite(v)
    what = ("missing on a side" if math.isnan(v) else
            "∞ (one side 0 or sign flip)" if full else f"|log10 ratio| = {v:.3g}")
    y = fr.y_of(math.sqrt(data.tolerance * fr.top) if full else height)
    to_left = i >= 8
    lines = [f"first divergence: {key}", what]
    bold = font(12, bold=True)
    tw = max(bold.getlength(t) for t in lines)
    edge = fr.x_of(i) - 0.4 * fr.slot if to_left else fr.x_of(i) + 0.4 * fr.slot
    tx = edge - 18 - tw if to_left else edge + 18
    ty = min(max(y - 16, fr.top_px + 4), fr.base - 36)
    draw.rectangle((tx - 3, ty - 2, tx + tw + 3, ty + 33), fill=WHITE)
    for k, t in enumerate(lines):
        draw.text((tx + (tw if to_left else 0), ty + 16 * k), t, font=bold,
                  fill=hex_rgb(C_FIRST), anchor="ra" if to_left else "la")
    _arrow(draw, (edge - 14 if to_left else edge + 14, ty + 16), (edge, ty + 16),
           hex_rgb(C_FIRST))


def _draw_legend(draw: ImageDraw.ImageDraw, fr: _Frame, data: BarChartData) -> None:
    """The legend, one row (two when it does not fit)."""
    items = [(C_OK, "", "within tolerance (bar at floor = identical)"),
             (C_BAD, "", "beyond tolerance"), (C_FIRST, "", "first divergence"),
             (C_MISSING, "//", "missing / unparsed on a side"),
             (C_BAD, "xx", "one side 0 or sign flip (∞)")]
    if any(not math.isclose(t, data.tolerance) for t in data.tolerances):
        items.append(("#000000", "line", "that key's own tolerance"))
    small = font(10)
    widths = [28 + small.getlength(text) + 18 for _c, _h, text in items]
    rows = [items] if sum(widths) < fr.width - 40 else [items[:3], items[3:]]
    for r, row in enumerate(rows):
        row_w = sum(28 + small.getlength(text) + 18 for _c, _h, text in row)
        x, y = (fr.width - row_w) / 2, 40 + 20 * r
        for colour, hatch, text in row:
            if hatch == "line":
                draw.line((x, y + 7, x + 20, y + 7), fill=BLACK, width=2)
            else:
                draw.rectangle((x, y + 1, x + 20, y + 12), fill=hex_rgb(colour))
                if hatch:
                    _hatch(draw, (x, y + 1, x + 20, y + 12), cross=hatch == "xx")
            draw.text((x + 26, y), text, font=small, fill=TEXT)
            x += 28 + small.getlength(text) + 18


Job = tuple[str, Path, Callable[[], None]]  # (plot name, png path, draw)


def bar_chart_job(cmp: Comparison | None, out_dir: Path) -> list[Job]:
    """The key-ratio bar chart's job, when there is a comparison: it needs nothing else, so a
    capture starts it while the images are still being read."""
    data = bar_chart_data(cmp)
    if data is None:
        return []
    p = Path(out_dir) / f"{KEY_RATIOS}.png"
    return [(KEY_RATIOS, p, partial(plot_key_ratios, data, cmp.ref_engine, cmp.cand_engine, p))]


def key_graph_job(roots: RootsReport | None, out_dir: Path) -> list[Job]:
    """The key-graph plot's job (bundle.present.keygraph), when keys were classified."""
    if roots is None or not roots.keys:
        return []
    from bundle.present.keygraph import plot_key_graph

    p = Path(out_dir) / f"{KEY_GRAPH}.png"
    return [(KEY_GRAPH, p, partial(plot_key_graph, roots, p))]


def image_jobs(result: CaptureResult, images: Mapping[str, np.ndarray], out_dir: Path,
               pooled: Mapping[str, np.ndarray] | None = None,
               summaries: Mapping[str, ImageSummary] | None = None) -> list[Job]:
    """The two image plots' jobs, when both the reference and the candidate image are there.

    ``images`` maps engine name -> float image (slow, fast); 1-D raw images are viewed with the
    metrics' shape. ``pooled`` may hold the images already pooled for display
    (imageplots.display_block) and ``summaries`` their metrics.summarize_image: what a capture
    has already computed is not computed again."""
    out_dir = Path(out_dir)
    cmp = result.comparison
    names = ([cmp.ref_engine, cmp.cand_engine] if cmp is not None else
             [result.metrics.ref_engine, result.metrics.cand_engine] if result.metrics is not None
             else [e.engine for e in result.engines][:2])
    if not (len(names) == 2 and all(images.get(n) is not None for n in names)):
        return []
    ref_name, cand_name = names
    ref = _as_image(images[ref_name], result)
    cand = _as_image(images[cand_name], result)
    if ref.shape != cand.shape:
        return []
    def pair(of: Mapping | None) -> tuple | None:
        return (of[ref_name], of[cand_name]) if of and ref_name in of and cand_name in of else None

    both, known = pair(pooled), pair(summaries)
    totals = (known[0].total, known[1].total) if known else None
    maxima = (known[0].max, known[1].max) if known else None
    p, q = out_dir / f"{IMAGES}.png", out_dir / f"{LOG_RATIO}.png"
    return [(IMAGES, p, partial(imageplots.plot_images, ref_name, ref, cand_name, cand,
                                result.pixel, p, pooled=both, totals=totals)),
            (LOG_RATIO, q, partial(imageplots.plot_log_ratio, ref_name, ref, cand_name, cand,
                                   result.pixel, q, maxima=maxima))]


def plot_paths(jobs: list[Job]) -> dict[str, str]:
    """name -> png path relative to the bundle (the plots directory's parent), in report order."""
    order = {IMAGES: 0, LOG_RATIO: 1, KEY_RATIOS: 2, KEY_GRAPH: 3}
    return {name: f"{p.parent.name}/{p.name}"
            for name, p, _draw in sorted(jobs, key=lambda j: order.get(j[0], 4))}


def render_plots(result: CaptureResult, images: Mapping[str, np.ndarray], out_dir: Path
                 ) -> dict[str, str]:
    """Write the report's PNGs into ``out_dir``; return name -> path relative to out_dir's parent."""
    jobs = image_jobs(result, images, out_dir) + bar_chart_job(result.comparison, out_dir)
    jobs += key_graph_job(result.roots, out_dir)
    if jobs:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    for _name, _path, draw in jobs:
        draw()
    return plot_paths(jobs)
