"""The key-graph plot: the trace keys' dependency graph, nodes coloured by class (root, amplified,
carried, match, missing), so the separate causes of a divergence show at a glance.

Drawn with Pillow through bundle.present.drawing, like the other plots. Matplotlib was weighed
first (a graph is a new kind of plot here, and whoever maintains this knows it): drawn with its Agg
canvas directly, collections for the edges and one text per key, it took 230-440 ms per plot on
this 2-core machine, most of it laying out and rasterizing the 40 labels, against the 100 ms the
issue allows. The same picture in Pillow takes a few tens of ms (bench/roots_bench.py).

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
WIDTH_PX, ROW, TOP, LEFT = 1000, 22, 70, 20  # the report's plot width; one row per key


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
    """Write the key-graph PNG: 1000 px wide (the report's width), 22 px per key row."""
    from bundle.present.drawing import PNG, TEXT, canvas, font, hex_rgb

    lay = key_graph_layout(report)
    n, cols = len(lay.keys), max(lay.column, default=0) + 1
    image, draw = canvas(WIDTH_PX, TOP + ROW * max(n, 1) + 10)
    step = min(630 / max(cols - 1, 1), 90)  # columns share 630 px; labels use the rest
    xy = [(LEFT + c * step, TOP + ROW * i) for i, c in enumerate(lay.column)]
    grey = hex_rgb("#c8c8c8")
    for (p, c), on in zip(lay.edges, lay.causal):
        if not on:
            draw.line((xy[p], xy[c]), fill=grey, width=1)
    for (p, c), on, by in zip(lay.edges, lay.causal, lay.edge_cause):
        if on:
            colour = "#555555" if by is None else _cause_colour(by, report)
            draw.line((xy[p], xy[c]), fill=hex_rgb(colour), width=3)
    plain, bold = font(12), font(12, bold=True)
    for (x, y), key, klass in zip(xy, lay.keys, lay.classes):
        f = bold if klass in ("root", "amplified") else plain
        box = draw.textbbox((x + 10, y), key, font=f, anchor="lm")
        draw.rectangle((box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1), fill=(255, 255, 255))
        draw.text((x + 10, y), key, font=f, fill=TEXT, anchor="lm")
    for (x, y), klass in zip(xy, lay.classes):
        draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=hex_rgb(COLOURS[klass]), outline=(51, 51, 51))
    _legend(draw, report, plain)
    draw.text((10, 12), f"Key dependency graph (pipeline order): {_title(report)}", font=font(13),
              fill=TEXT)
    image.save(path, **PNG)


def _legend(draw, report: RootsReport, f) -> None:
    """Class colours, then the colour of each cause's path, at the top right."""
    from bundle.present.drawing import TEXT, hex_rgb

    x, y = WIDTH_PX - 190, TOP
    draw.text((x, y - 20), "class · path of each cause", font=f, fill=TEXT)
    for klass in ORDER:
        draw.ellipse((x, y - 5, x + 10, y + 5), fill=hex_rgb(COLOURS[klass]), outline=(51, 51, 51))
        draw.text((x + 18, y), klass, font=f, fill=TEXT, anchor="lm")
        y += 20
    paths = [(k.key, _cause_colour(k.key, report)) for k in report.keys
             if k.klass in ("root", "amplified")]
    if len(paths) > 1:
        paths.append(("several causes", "#555555"))
    for label, colour in paths:
        draw.line((x - 4, y, x + 14, y), fill=hex_rgb(colour), width=3)
        draw.text((x + 18, y), label, font=f, fill=TEXT, anchor="lm")
        y += 20


def _cause_colour(cause: str, report: RootsReport) -> str:
    # One cause per edge gets its own shade, so separate causes read as separate paths.
    causes = [k.key for k in report.keys if k.klass in ("root", "amplified")]
    shades = ("#d62728", "#2ca02c", "#17becf", "#8c564b", "#e377c2", "#bcbd22")
    return shades[causes.index(cause) % len(shades)] if cause in causes else COLOURS["root"]
