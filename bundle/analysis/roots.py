"""Every independent divergence, not just the first: keys classified on the key dependency graph.

A trace usually carries several unrelated faults, and most differing keys only inherit an earlier
difference. With the graph of what each key is computed from (its parents, from the target
profile), every key beyond tolerance gets exactly one class:

- **root**: beyond tolerance, and every parent is within tolerance (or it has none);
- **amplified**: beyond tolerance, some parent is beyond tolerance too, and its own divergence is
  at least A times its worst parent's (A = ``KeyGraph.amplification``, 1000 by default);
- **carried**: every other key beyond tolerance; it names the roots (and amplified keys) it
  descends from through parents beyond tolerance.

Keys within tolerance are ``match``; keys missing or unparsed on a side are ``missing`` and play
no part in their children's class (a missing parent neither vouches for nor accuses a child).

A key's *divergence* is |log10(cand/ref)| of its worst row (vectors component-wise, every
occurrence), or the row's rel diff where a ratio has no meaning (a zero, a sign flip, nan, inf).
Without a graph every key beyond tolerance is a root candidate. Pure functions over frozen
records: nothing here reads or writes files.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from bundle.analysis.numbers import json_float, rel_diff
from bundle.model.records import (ChainAttribution, ChainReport, Comparison, ComparisonRow,
                                  KeyClass, KeyGraph, RootsReport)

DEFAULT_AMPLIFICATION = 1000.0
CAUSES = ("root", "amplified")
_MISSING = frozenset({"missing_ref", "missing_cand", "unparsed"})
_FINAL, _INVERTED = "I_pixel_final", frozenset({"steps"})


# --------------------------------------------------------------------------- one key's numbers


def row_divergence(row: ComparisonRow) -> float | None:
    """|log10 ratio|, or rel diff where a ratio has no meaning; None where a side is missing."""
    if row.ref is None or row.cand is None:
        return None
    q = row.ratio
    if q is not None and math.isfinite(q) and q > 0:
        return abs(math.log10(q))
    rd = row.rel_diff
    return math.inf if rd is None or math.isnan(rd) else rd


def row_min_rtol(row: ComparisonRow) -> float | None:
    """The smallest rtol at which this row would match (None: no rtol can)."""
    if row.status in _MISSING or row.abs_diff is None or row.rel_diff is None:
        return None
    if row.abs_diff <= row.atol:
        return 0.0
    return None if math.isnan(row.rel_diff) else row.rel_diff


def _key_state(rows: list[ComparisonRow]) -> tuple[str, ComparisonRow, float | None, float | None]:
    """(state, worst row, divergence, min_rtol) with state "match" | "beyond" | "missing"."""
    if any(r.status in _MISSING for r in rows):
        worst = next(r for r in rows if r.status in _MISSING)
        return "missing", worst, None, None
    divs = [row_divergence(r) or 0.0 for r in rows]
    i = max(range(len(rows)), key=lambda j: (rows[j].status != "match", divs[j]))
    need = [row_min_rtol(r) for r in rows]
    min_rtol = None if any(n is None for n in need) else max(need)  # type: ignore[type-var]
    state = "beyond" if any(r.status != "match" for r in rows) else "match"
    return state, rows[i], divs[i], min_rtol


def _rows_by_key(cmp: Comparison) -> dict[str, list[ComparisonRow]]:
    grouped: dict[str, list[ComparisonRow]] = {}
    for r in sorted(cmp.rows, key=lambda r: (r.position, r.occurrence, r.component)):
        grouped.setdefault(r.key, []).append(r)
    return grouped


# --------------------------------------------------------------------------- classification


def _class_of(key: str, state: Mapping[str, str], div: Mapping[str, float | None],
              parents: tuple[str, ...], amplification: float
              ) -> tuple[str, str | None, float | None]:
    """(class, worst parent, factor) of one key whose parents' states are known."""
    if state[key] != "beyond":
        return state[key], None, None
    bad = [p for p in parents if state[p] == "beyond"]
    if not bad:
        return "root", None, None
    worst = max(bad, key=lambda p: div[p] or 0.0)
    own, theirs = div[key] or 0.0, div[worst] or 0.0
    factor = own / theirs if theirs > 0 and math.isfinite(theirs) else math.nan
    klass = "amplified" if factor >= amplification else "carried"
    return klass, worst, factor


def _causes(key: str, klass: Mapping[str, str], bad_parents: Mapping[str, tuple[str, ...]],
            memo: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The roots / amplified keys a carried key descends from through parents beyond tolerance."""
    if key not in memo:
        found: dict[str, None] = {}
        for p in bad_parents[key]:
            for c in ((p,) if klass[p] in CAUSES else _causes(p, klass, bad_parents, memo)):
                found.setdefault(c, None)
        memo[key] = tuple(found)
    return memo[key]


def _order(keys: Iterable[str], parents: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Parents before children (the graph is acyclic: target.py refuses cycles)."""
    done: dict[str, None] = {}

    def visit(k: str) -> None:
        if k in done:
            return
        for p in parents.get(k, ()):
            visit(p)
        done[k] = None

    for k in keys:
        visit(k)
    return list(done)


def classify(cmp: Comparison, graph: KeyGraph | None = None,
             amplification: float | None = None) -> RootsReport:
    """Every compared key's class on ``graph`` (module docstring); ``amplification`` overrides
    the graph's A (a spec's setting)."""
    amp = amplification or (graph.amplification if graph else DEFAULT_AMPLIFICATION)
    grouped = _rows_by_key(cmp)
    facts = {k: _key_state(rows) for k, rows in grouped.items()}
    state = {k: f[0] for k, f in facts.items()}
    div = {k: f[2] for k, f in facts.items()}
    known = graph.parents if graph else {}
    parents = {k: tuple(p for p in known.get(k, ()) if p in state and state[p] != "missing")
               for k in grouped}
    klass: dict[str, str] = {}
    worst: dict[str, tuple[str | None, float | None]] = {}
    for k in _order(grouped, parents):
        klass[k], *w = _class_of(k, state, div, parents[k], amp)
        worst[k] = (w[0], w[1])
    bad = {k: tuple(p for p in parents[k] if state[p] == "beyond") for k in grouped}
    memo: dict[str, tuple[str, ...]] = {}
    causes = {k: _causes(k, klass, bad, memo) for k in grouped if klass[k] == "carried"}
    explains: dict[str, list[str]] = {}
    for k, cs in causes.items():
        for c in cs:
            explains.setdefault(c, []).append(k)
    keys = tuple(_key_class(k, klass[k], facts[k], parents[k], worst[k], causes.get(k, ()),
                            tuple(explains.get(k, ()))) for k in grouped)
    edges = tuple((p, k) for k in grouped for p in known.get(k, ()) if p in grouped)
    return RootsReport(keys=keys, edges=edges, graph_given=graph is not None,
                       graph_source=graph.source if graph else "", amplification=amp,
                       attribution=chain_attribution(cmp.chain, grouped.get(_FINAL)))


def _key_class(key: str, klass: str, fact: tuple, parents: tuple[str, ...],
               worst: tuple[str | None, float | None], causes: tuple[str, ...],
               explains: tuple[str, ...]) -> KeyClass:
    _state, row, divergence, min_rtol = fact
    return KeyClass(key=key, klass=klass, component=row.component, ref=row.ref,  # type: ignore[arg-type]
                    cand=row.cand, ratio=row.ratio, rel_diff=row.rel_diff,
                    divergence=divergence, min_rtol=min_rtol, parents=parents,
                    worst_parent=worst[0], factor=worst[1], causes=causes, explains=explains)


# --------------------------------------------------------------------------- the chain


def chain_attribution(chain: ChainReport, final_rows: list[ComparisonRow] | None = None
                      ) -> ChainAttribution | None:
    """explained = product of the differing factors' ratios (steps inverted); residual =
    final_ratio / explained; unexplained when explained and final differ beyond the final key's
    rtol. None when the chain has no final ratio."""
    if chain.final_ratio is None:
        return None
    differing = [f for f in chain.factors if f.key != _FINAL and not f.matches]
    explained: float | None = 1.0
    for f in differing:
        if f.ratio is None or explained is None:
            explained = None
            continue
        explained *= (1.0 / f.ratio if f.ratio else math.inf) if f.key in _INVERTED else f.ratio
    final = chain.final_ratio
    residual = (final / explained if explained not in (None, 0.0) else None)  # type: ignore[operator]
    rtol = final_rows[0].rtol if final_rows else 1e-6
    unexplained = explained is None or not (rel_diff(explained, final) <= rtol)
    return ChainAttribution(explained_by=tuple(f.key for f in differing),
                            explained_ratio=explained, final_ratio=final, residual=residual,
                            unexplained=unexplained)


# --------------------------------------------------------------------------- words and JSON


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2g}"


def reason(kc: KeyClass, report: RootsReport) -> str:
    """One line saying why a key has its class ("its inputs rot_*_star agree to 1.6e-7")."""
    if kc.klass == "root":
        if not report.graph_given:
            return "no graph given: every divergent key is a root candidate"
        if not kc.parents:
            return "no traced inputs (it comes from flags, files or constants)"
        by = {k.key: k for k in report.keys}
        worst = max((by[p].rel_diff or 0.0) for p in kc.parents)
        return f"its inputs {', '.join(kc.parents)} agree to {_fmt(worst)}"
    if kc.klass == "amplified":
        return (f"{_fmt(kc.factor)}× the divergence of its worst input {kc.worst_parent} "
                f"(A = {report.amplification:g})")
    if kc.klass == "carried":
        return f"inherits from {', '.join(kc.causes) or '—'}"
    return ""


def roots_json(report: RootsReport, ref: str, cand: str) -> dict[str, Any]:
    """``roots``, ``amplified``, ``carried``, ``min_rtol`` and ``chain_attribution`` as JSON data."""

    def item(k: KeyClass) -> dict[str, Any]:
        data = {"key": k.key, "component": k.component, ref: json_float(k.ref),
                cand: json_float(k.cand), "ratio": json_float(k.ratio),
                "rel_diff": json_float(k.rel_diff), "divergence": json_float(k.divergence),
                "explains": list(k.explains), "reason": reason(k, report)}
        if k.klass == "amplified":
            data.update(worst_parent=k.worst_parent, factor=json_float(k.factor))
        return data

    a = report.attribution
    return {
        "roots": [item(k) for k in report.of("root")],
        "amplified": [item(k) for k in report.of("amplified")],
        "carried": {k.key: list(k.causes) for k in report.of("carried")},
        "min_rtol": {k.key: json_float(k.min_rtol) for k in report.keys},
        "key_graph": {"given": report.graph_given, "source": report.graph_source,
                      "amplification": report.amplification},
        "attribution": None if a is None else {
            "explained_ratio": json_float(a.explained_ratio), "final_ratio": json_float(a.final_ratio),
            "residual": json_float(a.residual), "explained_by": list(a.explained_by),
            "unexplained": a.unexplained},
    }
