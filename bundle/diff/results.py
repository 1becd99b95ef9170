"""A run's results as plain comparable values, read from its manifest (and its comparison
rows when it has them): per-key states in pipeline order, chain factors, image metrics with
their pass lines, verdict, roots, first divergence. Pure.

A key is ok when every one of its components is within tolerance. From comparison rows: every
row's status is ``match``; its worst row (a non-match first, then the largest rel_diff) gives
the ratio shown. From a bare manifest (no tables): its ``min_rtol`` (the smallest rtol at which
the key would match) is within the key's rtol, and the key is missing on no side.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from bundle.analysis.numbers import finite_number
from bundle.diff.model import KeyChange, KeyState, ValuePair
from bundle.diff.words import transition_of
from bundle.ledger.reading import tolerance
from bundle.present.vocabulary import CORRELATION_PASS_LINE, PEAK_DISTANCE_PASS_LINE

# (metric, its pass flag in result.metrics or None, the pass line)
METRICS = (("pearson", "correlation_pass", CORRELATION_PASS_LINE),
           ("mean_peak_distance", "peak_distance_pass", PEAK_DISTANCE_PASS_LINE),
           ("sum_ratio", None, ""), ("max_abs_diff", None, ""), ("rmse", None, ""),
           ("peaks_matched", None, ""))


def _num(v: Any) -> float | None:
    return float(v) if finite_number(v) else None


def _badness(row: Mapping[str, Any]) -> tuple[bool, float]:
    rd = row.get("rel_diff")
    return (row.get("status") != "match", math.inf if not finite_number(rd) else float(rd))


def keys_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, KeyState]:
    """Key -> state from comparison rows (key, status, ratio, rel_diff), in row order."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(str(row["key"]), []).append(row)
    out = {}
    for key, group in grouped.items():
        worst = max(group, key=_badness)
        out[key] = KeyState(all(r.get("status") == "match" for r in group),
                            _num(worst.get("ratio")), _num(worst.get("rel_diff")))
    return out


def keys_from_manifest(manifest: Mapping[str, Any]) -> dict[str, KeyState]:
    """Key -> state from a manifest alone (min_rtol and missing), in the key graph's order."""
    res = manifest.get("result") or {}
    min_rtol = res.get("min_rtol") or {}
    missing = {k for keys in (res.get("missing") or {}).values() for k in keys or ()}
    graph = (((manifest.get("target") or {}).get("profile") or {}).get("graph") or {}).get("keys") or []
    order = [k for k in graph if k in min_rtol] + sorted(k for k in min_rtol if k not in graph)
    out = {}
    for key in order:
        need = _num(min_rtol.get(key))
        ok = key not in missing and need is not None and need <= tolerance(manifest, key)
        out[key] = KeyState(ok, None, need)
    for key in sorted(missing - set(out)):
        out[key] = KeyState(False)
    return out


def key_changes(before: Mapping[str, KeyState], after: Mapping[str, KeyState]) -> tuple[KeyChange, ...]:
    """Every key of either side, in the after side's order then the before side's leftovers."""
    order = list(after) + [k for k in before if k not in after]
    out = []
    for key in order:
        b, a = before.get(key), after.get(key)
        out.append(KeyChange(key, b, a, transition_of(b.ok if b else None, a.ok if a else None)))
    return tuple(out)


def factors(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[ValuePair, ...]:
    """The chain factors' ratios (cand/ref) before and after, in the chain's order."""
    def table(m: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        chain = (m.get("result") or {}).get("chain") or {}
        return {f["key"]: f for f in chain.get("factors") or () if isinstance(f, dict)}

    tb, ta = table(before), table(after)
    order = list(ta) + [k for k in tb if k not in ta]
    return tuple(ValuePair(k, _num((tb.get(k) or {}).get("ratio")), _num((ta.get(k) or {}).get("ratio")),
                           (tb[k].get("matches") if k in tb else None),
                           (ta[k].get("matches") if k in ta else None)) for k in order)


def metrics(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[ValuePair, ...]:
    mb = (before.get("result") or {}).get("metrics") or {}
    ma = (after.get("result") or {}).get("metrics") or {}
    out = []
    for name, flag, line in METRICS:
        if name not in mb and name not in ma:
            continue
        out.append(ValuePair(name, _num(mb.get(name)), _num(ma.get(name)),
                             mb.get(flag) if flag else None, ma.get(flag) if flag else None, line))
    return tuple(out)


def verdict(before: Mapping[str, Any], after: Mapping[str, Any]) -> ValuePair:
    vb = (before.get("result") or {}).get("verdict")
    va = (after.get("result") or {}).get("verdict")
    return ValuePair("verdict", vb, va, None if vb is None else vb == "parity",
                     None if va is None else va == "parity")


def roots(before: Mapping[str, Any], after: Mapping[str, Any]) -> ValuePair:
    def of(m: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(r.get("key") for r in (m.get("result") or {}).get("roots") or ()
                     if isinstance(r, dict))

    return ValuePair("roots", of(before), of(after))


def first_divergence(before: Mapping[str, Any], after: Mapping[str, Any]) -> ValuePair:
    def of(m: Mapping[str, Any]) -> str | None:
        fd = (m.get("result") or {}).get("first_divergence")
        return fd.get("key") if isinstance(fd, dict) else None

    return ValuePair("first divergence", of(before), of(after))
