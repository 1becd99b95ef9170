"""The key-graph plot: the trace keys' dependency graph, nodes coloured by class (root, amplified,
carried, match, missing), so the separate causes of a divergence show at a glance.

Drawn with matplotlib (its Agg canvas directly, no pyplot): a graph of ~40 labelled nodes and
~50 edges is a new kind of plot here, and whoever maintains it knows matplotlib. A few collections
and one text per key keep it well under the 100 ms the issue allows (bench/roots_bench.py).

Layout (pure, ``key_graph_layout``): one row per key in pipeline order, top to bottom, so the
plot reads like the trace; the column is the key's depth in the graph (longest path from a key
without parents), so every edge runs left to right. Each label sits right of its node on its own
row, where no other node is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bundle.model.records import RootsReport

COLOURS = {"root": "#d62728", "amplified": "#9467bd", "carried": "#f58518",
           "match": "#4c78a8", "missing": "#9e9e9e"}
ORDER = ("root", "amplified", "carried", "match", "missing")
WIDTH_IN, DPI = 10.0, 100  # the report's plot width: 1000 px


@dataclass(frozen=True)
class KeyGraphLayout:
    keys: tuple[str, ...]  # pipeline order
    classes: tuple[str, ...]
    column: tuple[int, ...]  # depth in the graph
    edges: tuple[tuple[int, int], ...]  # (parent index, child index)
    causal: tuple[bool, ...]  # per edge: a divergence travels along it (both ends beyond)
    edge_cause: tuple[str | None, ...]  # per causal edge: the one cause it carries, if only one


def key_graph_layout(report: RootsReport) -> KeyGraphLayout:
    """Rows, columns, colours and highlighted edges of the plot. Pure."""
    keys = tuple(k.key for k in report.keys)
    index = {k: i for i, k in enumerate(keys)}
    by = {k.key: k for k in report.keys}
    parents: dict[str, list[str]] = {}
    for p, c in report.edges:
        parents.setdefault(c, []).append(p)
    depth: dict[str, int] = {}

    def column(k: str) -> int:
        if k not in depth:
            depth[k] = 0  # acyclic (target.py), so this only guards against surprises
            depth[k] = 1 + max((column(p) for p in parents.get(k, ())), default=-1)
        return depth[k]

    beyond = {"root", "amplified", "carried"}
    edges, causal, cause = [], [], []
    for p, c in report.edges:
        edges.append((index[p], index[c]))
        on = by[p].klass in beyond and by[c].klass in ("amplified", "carried")
        causal.append(on)
        src = (p,) if by[p].klass in ("root", "amplified") else by[p].causes
        cause.append(src[0] if on and len(src) == 1 else None)
    return KeyGraphLayout(keys=keys, classes=tuple(by[k].klass for k in keys),
                          column=tuple(column(k) for k in keys), edges=tuple(edges),
                          causal=tuple(causal), edge_cause=tuple(cause))


def _title(report: RootsReport) -> str:
    n = {c: len(report.of(c)) for c in ORDER}
    head = (f"{n['root']} root(s), {n['amplified']} amplified, {n['carried']} carried, "
            f"{n['match']} match")
    return head if report.graph_given else head + " — no key graph given: every divergence is a root"


def plot_key_graph(report: RootsReport, path: Path) -> None:
    """Write the key-graph PNG (1000 px wide; 22 px per key row)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    lay = key_graph_layout(report)
    n, cols = len(lay.keys), max(lay.column, default=0) + 1
    fig = Figure(figsize=(WIDTH_IN, 0.9 + 0.22 * max(n, 1)), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.01, 0.01, 0.98, 1 - 0.75 / fig.get_figheight()))
    span = 6.3 / max(cols - 1, 1)  # columns share 6.3 of the 10 inches; labels use the rest
    x = [c * min(span, 0.9) for c in lay.column]
    y = list(range(n))
    quiet = [((x[p], y[p]), (x[c], y[c])) for (p, c), on in zip(lay.edges, lay.causal) if not on]
    ax.add_collection(LineCollection(quiet, colors="#c8c8c8", linewidths=0.8, zorder=1))
    loud = [((x[p], y[p]), (x[c], y[c])) for (p, c), on in zip(lay.edges, lay.causal) if on]
    tint = ["#555555" if by is None else _cause_colour(by, report)
            for by, on in zip(lay.edge_cause, lay.causal) if on]
    ax.add_collection(LineCollection(loud, colors=tint, linewidths=1.8, zorder=2))
    ax.scatter(x, y, s=46, c=[COLOURS[c] for c in lay.classes], edgecolors="#333333",
               linewidths=0.6, zorder=3)
    for xi, yi, key, klass in zip(x, y, lay.keys, lay.classes):
        ax.text(xi + 0.09, yi, key, fontsize=8.5, va="center", zorder=4,
                weight="bold" if klass in ("root", "amplified") else "normal",
                bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.set_xlim(-0.2, WIDTH_IN - 0.4)
    ax.set_ylim(n - 0.4, -0.6)
    ax.axis("off")
    handles = [ax.scatter([], [], s=46, c=COLOURS[c], edgecolors="#333333", linewidths=0.6,
                          label=c) for c in ORDER]
    ax.legend(handles=handles, loc="upper right", fontsize=9, frameon=False,
              title="class", title_fontsize=9)
    fig.suptitle(f"Key dependency graph (pipeline order): {_title(report)}", fontsize=10,
                 x=0.01, ha="left", y=1 - 0.12 / fig.get_figheight(), va="top")
    fig.savefig(path, format="png", dpi=DPI, pil_kwargs={"compress_level": 4})


def _cause_colour(cause: str, report: RootsReport) -> str:
    # One cause per edge gets its own shade, so separate causes read as separate paths.
    causes = [k.key for k in report.keys if k.klass in ("root", "amplified")]
    shades = ("#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
    return shades[causes.index(cause) % len(shades)] if cause in causes else COLOURS["root"]
