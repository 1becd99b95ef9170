"""The suite's matrix: cases × run names, and ``plots/matrix.png``, a heatmap of each run's worst
threshold margin.

A margin is the signed relative distance of a metric to its limit: (value − limit)/|limit| for a
``*_min`` threshold, (limit − value)/|limit| for a ``*_max`` one (|limit| taken as 1 when the limit
is 0); negative means failing. A run's worst margin is the smallest of its thresholds'; a metric
the run did not produce counts as failing (−1); a run with no thresholds, or no such run in the
case, is NaN (drawn grey).

Drawn with matplotlib (Agg, through Figure directly, no pyplot global state): one heatmap per
suite, so its fixed per-figure cost does not matter the way it does for a capture's three plots
(bundle.present.drawing). Measured once on this 2-core machine: a 12 × 6 matrix draws and saves
in ~0.85 s as the process's first figure (matplotlib's imports and font cache included) and
~0.25 s thereafter (tests/fixtures-free: a 72-cell synthetic matrix, .venv/bin/python).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from bundle.suite.model import THRESHOLD_METRICS

MISSING_METRIC_MARGIN = -1.0


def margin(name: str, value: Any, limit: float) -> float:
    """The signed relative margin of one threshold (negative: failing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING_METRIC_MARGIN
    side = THRESHOLD_METRICS[name][1]
    scale = abs(limit) or 1.0
    return (float(value) - limit) / scale if side == "min" else (limit - float(value)) / scale


def worst_margin(member: Mapping[str, Any]) -> tuple[float, str | None]:
    """(the smallest margin, the threshold it belongs to) of one run; (nan, None) without
    thresholds."""
    metrics = member.get("metrics") or {}
    worst, which = math.nan, None
    for name, limit in sorted((member.get("thresholds") or {}).items()):
        if name not in THRESHOLD_METRICS:
            continue
        m = margin(name, metrics.get(THRESHOLD_METRICS[name][0]), float(limit))
        if which is None or m < worst:
            worst, which = m, name
    return worst, which


def layout(members: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str], dict, bool]:
    """(case ids, columns, {(case, column): member}, named) in suite order. When every case has
    the same runs, the columns are those run names (named); otherwise they are positions (``run
    1``, ``run 2``, ...) and each cell names its run, so a matrix whose cases vary in their runs
    (the upstream file: 55 runs over 16 cases) stays as wide as its longest case, not 55 columns."""
    cases: list[str] = []
    by_case: dict[str, list[Mapping[str, Any]]] = {}
    for m in members:
        if m["case"] not in by_case:
            cases.append(m["case"])
            by_case[m["case"]] = []
        by_case[m["case"]].append(m)
    names = [[m["run"] for m in by_case[c]] for c in cases]
    if all(n == names[0] for n in names):
        columns = names[0] if names else []
        return cases, columns, {(c, m["run"]): m for c in cases for m in by_case[c]}, True
    columns = [f"run {i + 1}" for i in range(max(len(n) for n in names))]
    cells = {(c, columns[i]): m for c in cases for i, m in enumerate(by_case[c])}
    return cases, columns, cells, False


def margin_grid(members: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str], list[list[float]]]:
    cases, runs, cells, _named = layout(members)
    grid = [[worst_margin(cells[(c, r)])[0] if (c, r) in cells else math.nan for r in runs]
            for c in cases]
    return cases, runs, grid


def cell_labels(members: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Each cell's run name when the columns are positions (layout), else empty strings."""
    cases, runs, cells, named = layout(members)
    return [["" if named or (c, r) not in cells else str(cells[(c, r)]["run"]) for r in runs]
            for c in cases]


def _extent(data) -> tuple[float, float, float]:
    values = [float(v) for v in data.compressed() if math.isfinite(float(v))]
    low = min([v for v in values if v < 0], default=-1e-12)
    high = max([v for v in values if v > 0], default=1e-12)
    return low, high, max(-low, high)


def render_matrix(members: Sequence[Mapping[str, Any]], path: Path, title: str) -> Path:
    """Draw the heatmap of worst margins into ``path`` (PNG)."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    cases, runs, grid = margin_grid(members)
    data = np.ma.masked_invalid(np.array(grid, dtype=float).reshape(len(cases), len(runs)))
    # Each side of 0 scaled on its own: a run failing by 1e-4 is as red as one failing by 0.5
    # even when another run passes by a margin of 100 (the colour says pass/fail at a glance).
    low, high, span = _extent(data)
    cmap = colormaps["RdBu"].with_extremes(bad="#d0d0d0")
    fig = Figure(figsize=(min(2.0 + 1.1 * len(runs), 24), min(1.5 + 0.45 * len(cases), 24)),
                 dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(data, cmap=cmap, norm=TwoSlopeNorm(0.0, low, high), aspect="auto")
    ax.set_xticks(range(len(runs)), labels=runs, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(cases)), labels=cases, fontsize=8)
    labels = cell_labels(members)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if not math.isnan(value):
                text = f"{labels[i][j]}\n{value:+.2g}" if labels[i][j] else f"{value:+.2g}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if value < 0.6 * low or value > 0.6 * high else "black")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="worst threshold margin (< 0 fails)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
