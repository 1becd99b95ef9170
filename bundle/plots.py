"""The report's plots: the two images on one log scale, their log ratio, and the per-key ratios.

Matplotlib runs on the Agg backend (set here, before anything of matplotlib's drawing is
imported) and through ``Figure`` objects only, so no global pyplot state leaks between captures.
Images of a full detector (2527 × 2463) are *displayed* block-max-pooled to at most
``DISPLAY_MAX`` pixels per side, so bright one-pixel peaks survive; the data are never modified.

``bar_chart_data`` is the pure part of the bar chart (which keys, which values, which bar is the
first divergence) so it can be tested and reused without drawing.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Mapping

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import LogLocator, NullLocator  # noqa: E402

from bundle.records import CaptureResult, ComparisonRow  # noqa: E402

DISPLAY_MAX = 800  # pixels per side after pooling, for display only
BRIGHT_FRACTION = 1e-3  # a pixel is bright when >= this fraction of its own image's max
LOG_DECADES = 6  # the shared log colour scale spans this many decades below the brightest pixel
DPI = 100

IMAGES = "images"
LOG_RATIO = "log_ratio"
KEY_RATIOS = "key_ratios"

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


def bar_chart_data(result: CaptureResult) -> BarChartData | None:
    """The bar chart's data, or None when there is no comparison. Pure."""
    cmp = result.comparison
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


def _block(shape: tuple[int, int], max_side: int, block: int | None = None) -> int:
    return max(1, math.ceil(max(shape) / max_side), block or 1)


def display_block(ax, shape: tuple[int, int]) -> int:
    """The pooling block that makes an image of ``shape`` no larger than the axes it is drawn
    in (at the figure's dpi), so the renderer only ever enlarges it and drops no pixel."""
    fig = ax.get_figure()
    pos = ax.get_position()
    w_px = pos.width * fig.get_figwidth() * fig.dpi
    h_px = pos.height * fig.get_figheight() * fig.dpi
    scale = min(w_px / shape[1], h_px / shape[0])
    return max(1, math.ceil(1.0 / scale - 1e-9))


def pool_max(image: np.ndarray, max_side: int = DISPLAY_MAX, block: int | None = None
             ) -> tuple[np.ndarray, int]:
    """Block max-pool for display (NaN-ignoring); returns (pooled copy, block size f).

    Blocks are f × f with f = max(ceil(longest side / max_side), block); the last row/column of
    blocks may be partial. The input is never modified.
    """
    a = np.asarray(image)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
    h, w = a.shape
    f = _block(a.shape, max_side, block)
    if f == 1:
        return a.copy(), 1
    ph, pw = math.ceil(h / f) * f, math.ceil(w / f) * f
    if (ph, pw) != (h, w):
        a = np.pad(a, ((0, ph - h), (0, pw - w)), constant_values=np.nan)
    blocks = a.reshape(ph // f, f, pw // f, f)
    return np.fmax.reduce(np.fmax.reduce(blocks, axis=3), axis=1), f


def bright_mask(ref: np.ndarray, cand: np.ndarray, fraction: float = BRIGHT_FRACTION
                ) -> np.ndarray:
    """Pixels where either image is >= ``fraction`` of its own (finite) maximum."""
    bright = np.zeros(np.shape(ref), dtype=bool)
    for img in (ref, cand):
        if not np.size(img):
            continue
        top = float(np.nanmax(img))
        if not math.isfinite(top):  # an inf pixel: scale to the largest finite one
            top = float(np.nanmax(np.where(np.isfinite(img), img, np.nan)))
        if top > 0:
            bright |= img >= top * fraction
    return bright


def _log_ratio_at(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    r = r.astype(np.float64)
    c = c.astype(np.float64)
    out = np.full(r.shape, np.nan)
    both = (r > 0) & (c > 0)
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


def pooled_log_ratio(ref: np.ndarray, cand: np.ndarray, max_side: int = DISPLAY_MAX,
                     fraction: float = BRIGHT_FRACTION, block: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray, int]:
    """log10(cand/ref) over the bright pixels, pooled for display: each f × f block shows the
    value of largest magnitude among its bright pixels (sign kept), NaN where it has none.

    Returns (pooled map, the bright pixels' full-resolution values, f). Only the bright pixels
    are touched, so a full detector costs a few mask passes.
    """
    h, w = np.shape(ref)
    f = _block((h, w), max_side, block)
    idx = np.flatnonzero(bright_mask(ref, cand, fraction))
    vals = _log_ratio_at(np.asarray(ref).ravel()[idx], np.asarray(cand).ravel()[idx])
    bh, bw = math.ceil(h / f), math.ceil(w / f)
    pooled = np.full((bh, bw), np.nan)
    if idx.size:
        ys, xs = np.divmod(idx, w)
        block = (ys // f) * bw + xs // f
        mag = np.where(np.isnan(vals), -1.0, np.abs(vals))
        order = np.lexsort((mag, block))  # by block, then by magnitude: the last one wins
        b_sorted = block[order]
        last = np.flatnonzero(np.append(b_sorted[1:] != b_sorted[:-1], True))
        pooled.flat[b_sorted[last]] = vals[order][last]
    return pooled, vals, f


def _as_image(a: np.ndarray, result: CaptureResult) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1 and result.metrics is not None and a.size == result.metrics.slow * \
            result.metrics.fast:
        a = a.reshape(result.metrics.slow, result.metrics.fast)  # a view: the data are untouched
    if a.ndim != 2:
        raise ValueError(f"image must be 2-D (slow, fast), got shape {a.shape}")
    return a


# --------------------------------------------------------------------------- drawing


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI, format="png")


def _mark_pixel(ax, pixel: tuple[int, int] | None, color: str = "cyan") -> None:
    if pixel is None:
        return
    slow, fast = pixel
    ax.plot([fast], [slow], marker="o", markersize=14, markerfacecolor="none",
            markeredgecolor=color, markeredgewidth=1.6)
    ax.plot([fast], [slow], marker="+", markersize=22, color=color, markeredgewidth=0.8)
    ax.annotate(f"traced ({slow}, {fast})", (fast, slow), xytext=(10, 10),
                textcoords="offset points", color=color, fontsize=8,
                bbox=dict(boxstyle="round,pad=0.2", fc="white" if color == "black" else "black",
                          ec="none", alpha=0.7))


def _extent(shape: tuple[int, int]) -> tuple[float, float, float, float]:
    h, w = shape
    return (-0.5, w - 0.5, h - 0.5, -0.5)


def plot_images(ref_name: str, ref: np.ndarray, cand_name: str, cand: np.ndarray,
                pixel: tuple[int, int] | None, path: Path) -> None:
    """Reference and candidate side by side on ONE shared log colour scale."""
    fig = Figure(figsize=(12.5, 6.0))
    fig.subplots_adjust(left=0.06, right=0.9, top=0.88, bottom=0.09, wspace=0.1)
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    block = display_block(axes[0], ref.shape)
    pr, f = pool_max(ref, block=block)
    pc, _ = pool_max(cand, block=block)
    vals = np.concatenate([pr[np.isfinite(pr) & (pr > 0)], pc[np.isfinite(pc) & (pc > 0)]])
    vmax = float(vals.max()) if vals.size else 1.0
    vmin = max(float(vals.min()) if vals.size else vmax * 1e-6, vmax * 10.0 ** -LOG_DECADES)
    if vmin >= vmax:
        vmin = vmax / 10.0
    norm = LogNorm(vmin=vmin, vmax=vmax, clip=False)
    cmap = colormaps["inferno"].with_extremes(bad="#000000", under="#000000")
    im = None
    for ax, name, img, full, role in ((axes[0], ref_name, pr, ref, "reference"),
                                       (axes[1], cand_name, pc, cand, "candidate")):
        shown = np.where(img > 0, img, np.nan)
        im = ax.imshow(shown, norm=norm, cmap=cmap, extent=_extent(full.shape),
                       interpolation="nearest", origin="upper")
        total = float(np.nansum(full, dtype=np.float64))
        ax.set_title(f"{name} ({role}) — sum {total:.4g}, max {float(np.nanmax(full)):.4g}",
                     fontsize=10)
        ax.set_xlabel("fast pixel")
        _mark_pixel(ax, pixel)
    axes[0].set_ylabel("slow pixel")
    cb = fig.colorbar(im, cax=fig.add_axes((0.915, 0.15, 0.012, 0.66)))
    cb.set_label("intensity (shared log scale; black ≤ 0 or below scale)")
    pooled = f"; display max-pooled {f}×{f}" if f > 1 else ""
    fig.suptitle(f"{ref_name} vs {cand_name}: {ref.shape[0]} slow × {ref.shape[1]} fast"
                 f"{pooled}", fontsize=11)
    _save(fig, path)


def plot_log_ratio(ref_name: str, ref: np.ndarray, cand_name: str, cand: np.ndarray,
                   pixel: tuple[int, int] | None, path: Path) -> None:
    """log10(cand/ref) over the bright pixels, symmetric diverging scale, dim pixels grey."""
    fig = Figure(figsize=(8.2, 7))
    fig.subplots_adjust(left=0.1, right=0.86, top=0.9, bottom=0.08)
    ax = fig.subplots()
    shown, vals, f = pooled_log_ratio(ref, cand, block=display_block(ax, ref.shape))
    finite = np.abs(vals[np.isfinite(vals)])
    lim = float(np.percentile(finite, 99.5)) if finite.size else 0.0
    if lim <= 0:
        lim = max(float(finite.max()) if finite.size else 0.0, 1e-6)
    shown = np.clip(shown, -lim, lim)  # ±inf (one side 0) land on the ends of the scale
    cmap = colormaps["RdBu_r"].with_extremes(bad="#a6a6a6")
    im = ax.imshow(shown, cmap=cmap, norm=Normalize(-lim, lim), extent=_extent(ref.shape),
                   interpolation="nearest", origin="upper")
    n_bright = int(vals.size)
    fin = vals[np.isfinite(vals)]
    med = float(np.median(fin)) if fin.size else math.nan
    worst = float(np.abs(vals).max()) if vals.size else math.nan
    ax.set_title(f"log10({cand_name}/{ref_name}) where either is bright (≥ {BRIGHT_FRACTION:g} "
                 f"of its max); grey = dim\n{n_bright} bright pixels: median {med:.3g} "
                 f"(ratio {10 ** med if math.isfinite(med) else math.nan:.4g}), "
                 f"max |log10| {worst:.3g}"
                 + (f"; display: largest |value| per {f}×{f} block" if f > 1 else ""),
                 fontsize=10)
    ax.set_xlabel("fast pixel")
    ax.set_ylabel("slow pixel")
    _mark_pixel(ax, pixel, color="black")
    cb = fig.colorbar(im, cax=fig.add_axes((0.88, 0.14, 0.018, 0.7)))
    cb.set_label(f"log10({cand_name}/{ref_name})  (red: {cand_name} brighter)")
    _save(fig, path)


def plot_key_ratios(data: BarChartData, ref_name: str, cand_name: str, path: Path) -> None:
    """|log10(cand/ref)| per trace key, log y axis, tolerance line, first divergence in red."""
    n = len(data.keys)
    finite = [v for v in data.values if math.isfinite(v) and v > 0]
    floor = 1e-17  # below the double-precision resolution of a ratio: "identical"
    top = max(finite + [data.tolerance * 10, 1e-6]) * 1e4  # headroom for labels and legend
    heights, colors, hatches = [], [], []
    for i, (v, bad) in enumerate(zip(data.values, data.diverges)):
        first = i == data.highlighted_index
        if math.isnan(v) or math.isinf(v):  # off the scale: a full-height hatched bar
            heights.append(top)
            colors.append(C_FIRST if first else C_MISSING if math.isnan(v) else C_BAD)
            hatches.append("//" if math.isnan(v) else "xx")
            continue
        heights.append(max(v, floor))
        colors.append(C_FIRST if first else C_BAD if bad else C_OK)
        hatches.append("")
    width = min(max(10.0, 0.22 * n + 2.5), 40.0)
    fig = Figure(figsize=(width, 6.2))
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.2 / width, top=0.84, bottom=0.27)
    ax = fig.subplots()
    x = np.arange(n)
    bars = ax.bar(x, heights, color=colors, width=0.75, bottom=floor / 10)
    for b, h in zip(bars, hatches):
        if h:
            b.set_hatch(h)
            b.set_edgecolor("white")
    ax.set_yscale("log")
    ax.set_ylim(floor / 10, top)
    ax.yaxis.set_major_locator(LogLocator(base=10.0, numticks=12))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.axhline(data.tolerance, color="black", linestyle="--", linewidth=1)
    ax.text(-0.4, data.tolerance * 1.6,
            f"tolerance: log10(1 + rtol) = {data.tolerance:.2g}", ha="left", va="bottom",
            fontsize=8, bbox=dict(fc="white", ec="none", alpha=0.8, pad=1))
    for i, tol in enumerate(data.tolerances):
        if not math.isclose(tol, data.tolerance):
            ax.plot([i - 0.4, i + 0.4], [tol, tol], color="black", linewidth=1.5)
    ax.set_xticks(x)
    ax.set_xticklabels(data.keys, rotation=90, fontsize=7)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylabel(f"|log10({cand_name}/{ref_name})|, worst component")
    if data.highlighted_index is not None:
        i = data.highlighted_index
        key = data.keys[i]
        v = data.values[i]
        vtxt = "∞" if math.isinf(v) else f"{v:.3g}"
        ax.get_xticklabels()[i].set_color(C_FIRST)
        ax.get_xticklabels()[i].set_fontweight("bold")
        full = not math.isfinite(v)
        # the label goes left of the bar, over the keys before it (all within tolerance, so
        # low), unless the bar is near the left edge
        y = math.sqrt(data.tolerance * top) if full else heights[i]
        left = i >= 8
        what = ("missing on a side" if math.isnan(v) else
                "∞ (one side 0 or sign flip)" if full else f"|log10 ratio| = {vtxt}")
        ax.annotate(f"first divergence: {key}\n{what}", (i - 0.4 if left else i + 0.4, y),
                    xytext=(-14 if left else 14, 0), textcoords="offset points",
                    ha="right" if left else "left", va="center", fontsize=9, color=C_FIRST,
                    fontweight="bold", bbox=dict(fc="white", ec="none", alpha=0.85, pad=1.5),
                    arrowprops=dict(arrowstyle="-|>", color=C_FIRST))
        title = f"first divergence: {key}"
    else:
        title = "no divergence"
    fig.suptitle(f"Per-key |log10({cand_name}/{ref_name})| in pipeline order — {title}",
                 fontsize=11, y=0.985)
    handles = [Patch(color=C_OK, label="within tolerance (bar at floor = identical)"),
               Patch(color=C_BAD, label="beyond tolerance"),
               Patch(color=C_FIRST, label="first divergence"),
               Patch(facecolor=C_MISSING, hatch="//", edgecolor="white",
                     label="missing / unparsed on a side"),
               Patch(facecolor=C_BAD, hatch="xx", edgecolor="white",
                     label="one side 0 or sign flip (∞)")]
    if any(not math.isclose(t, data.tolerance) for t in data.tolerances):
        handles.append(Line2D([], [], color="black", linewidth=1.5,
                              label="that key's own tolerance"))
    fig.legend(handles=handles, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, 0.94),
               ncol=len(handles), frameon=False)
    _save(fig, path)


def plot_jobs(result: CaptureResult, images: Mapping[str, np.ndarray], out_dir: Path
              ) -> list[tuple[str, Path, Callable[[], None]]]:
    """The report's plots as (name, png path, draw) jobs, independent of each other.

    ``images`` maps engine name -> float image (slow, fast); 1-D raw images are viewed with the
    metrics' shape. The image plots need both the reference and the candidate image; the bar chart
    needs only a comparison.
    """
    out_dir = Path(out_dir)
    cmp = result.comparison
    names = ([cmp.ref_engine, cmp.cand_engine] if cmp is not None else
             [result.metrics.ref_engine, result.metrics.cand_engine] if result.metrics is not None
             else [e.engine for e in result.engines][:2])
    jobs: list[tuple[str, Path, Callable[[], None]]] = []
    have_images = len(names) == 2 and all(n in images and images[n] is not None for n in names)
    if have_images:
        ref_name, cand_name = names
        ref = _as_image(images[ref_name], result)
        cand = _as_image(images[cand_name], result)
        if ref.shape == cand.shape:
            p = out_dir / f"{IMAGES}.png"
            jobs.append((IMAGES, p, partial(plot_images, ref_name, ref, cand_name, cand, result.pixel, p)))
            p = out_dir / f"{LOG_RATIO}.png"
            jobs.append((LOG_RATIO, p, partial(plot_log_ratio, ref_name, ref, cand_name, cand, result.pixel, p)))
    data = bar_chart_data(result)
    if data is not None:
        p = out_dir / f"{KEY_RATIOS}.png"
        jobs.append((KEY_RATIOS, p, partial(plot_key_ratios, data, cmp.ref_engine, cmp.cand_engine, p)))
    return jobs


def _relative(jobs, out_dir: Path) -> dict[str, str]:
    return {name: f"{Path(out_dir).name}/{p.name}" for name, p, _draw in jobs}


def render_plots(result: CaptureResult, images: Mapping[str, np.ndarray], out_dir: Path
                 ) -> dict[str, str]:
    """Write the report's PNGs into ``out_dir``; return name -> path relative to out_dir's parent."""
    jobs = plot_jobs(result, images, out_dir)
    if jobs:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    for _name, _path, draw in jobs:
        draw()
    return _relative(jobs, out_dir)


class PlotsInBackground:
    """The plots drawn in forked child processes while the caller goes on (image metrics, say).

    Why by hand, not a process pool: each job is a closure over two full-size images already in
    this process's memory; a forked child inherits them copy-on-write, where a pool would pickle
    50 MB per job. A job whose child fails is drawn again here, in the foreground, so the result
    is the same as render_plots' whatever happens to the children.
    """

    def __init__(self, result: CaptureResult, images: Mapping[str, np.ndarray], out_dir: Path):
        self.out_dir = Path(out_dir)
        self.jobs = plot_jobs(result, images, out_dir)
        if self.jobs:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        ctx = multiprocessing.get_context("fork")
        self.children = []
        for _name, _path, draw in self.jobs:
            child = ctx.Process(target=_draw_and_exit, args=(draw,), daemon=True)
            child.start()
            self.children.append(child)

    def wait(self) -> dict[str, str]:
        for (_name, path, draw), child in zip(self.jobs, self.children):
            child.join()
            if child.exitcode != 0 or not path.is_file():
                draw()
        return _relative(self.jobs, self.out_dir)


def _draw_and_exit(draw: Callable[[], None]) -> None:
    try:
        draw()
    except BaseException:  # noqa: BLE001 - the parent redraws in the foreground and sees the error
        os._exit(1)
    os._exit(0)
