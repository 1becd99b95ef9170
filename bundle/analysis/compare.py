"""Key-by-key comparison of two traces, the first divergence, and the JSON summary.

Rows are aligned by (key, occurrence, component). For a reference value ``r`` and a candidate
value ``c``::

    abs_diff = |c - r|
    rel_diff = |c - r| / max(|r|, |c|)            (0 when r == c == 0)
    ratio    = c / r                              (IEEE 754: ±inf when r == 0 != c, nan for 0/0)
    match    = (r == c == 0) or (both nan) or (both the same infinity)
               or abs_diff <= atol or rel_diff <= rtol

with ``atol``/``rtol`` from the key's entry in ``per_key``, else the default tolerance. Identical
special values (both nan, the same infinity) have abs_diff = rel_diff = 0; their ratio stays as
IEEE division gives it (nan). When exactly one side is nan, abs_diff and rel_diff are nan; when an
infinity meets a finite value, abs_diff = inf and rel_diff = 1 (its limit), opposite infinities
give rel_diff = 2. rel_diff is symmetric in r and c and never overflows.

Statuses: ``match``/``differ`` for a pair of parsed values; ``missing_cand``/``missing_ref``
where one side lacks the (key, occurrence), or lacks that component (a length mismatch is a
finding, never padded); ``unparsed`` for every component of a (key, occurrence) where either
side printed a token that is not a number. Every status but ``match`` is a divergence.
"""

from __future__ import annotations

from typing import Any, Mapping

from bundle.analysis.chain import chain_report
# The numeric rule lives in numbers.py (chain uses it too); re-exported: callers know it as compare's.
from bundle.analysis.roots import classify, roots_json
from bundle.analysis.numbers import NO_OVERRIDES, abs_diff, json_float, ratio, rel_diff, values_match
from bundle.model.records import (ChainFactor, ChainReport, Comparison, ComparisonRow, RootsReport,
                                   Tolerance, Trace, TraceEntry)

# Field names a JSON summary object already uses; an engine may not be named like one of them.
_RESERVED = frozenset(
    {"key", "occurrence", "component", "status", "abs_diff", "rel_diff", "ratio", "rtol", "atol",
     "matches", "product", "final", "consistent", "missing"}
)


# --------------------------------------------------------------------------- rows


def _entry_rows(
    key: str,
    occurrence: int,
    position: int,
    ref: TraceEntry | None,
    cand: TraceEntry | None,
    tol: Tolerance,
) -> list[ComparisonRow]:
    n_ref = len(ref.tokens) if ref is not None else 0
    n_cand = len(cand.tokens) if cand is not None else 0
    unparsed = ref is not None and cand is not None and (ref.unparsed or cand.unparsed)
    rows = []
    for i in range(max(n_ref, n_cand)):
        r = ref.values[i] if ref is not None and not ref.unparsed and i < n_ref else None
        c = cand.values[i] if cand is not None and not cand.unparsed and i < n_cand else None
        a = rd = q = None
        if unparsed:
            status = "unparsed"
        elif i >= n_ref:
            status = "missing_ref"
        elif i >= n_cand:
            status = "missing_cand"
        else:
            assert r is not None and c is not None
            a, rd, q = abs_diff(r, c), rel_diff(r, c), ratio(c, r)
            status = "match" if values_match(r, c, tol) else "differ"
        rows.append(
            ComparisonRow(
                key=key,
                occurrence=occurrence,
                component=i,
                position=position,
                ref=r,
                cand=c,
                abs_diff=a,
                rel_diff=rd,
                ratio=q,
                rtol=tol.rtol,
                atol=tol.atol,
                status=status,  # type: ignore[arg-type]
            )
        )
    return rows


def compare_traces(
    ref: Trace,
    cand: Trace,
    ref_engine: str = "c",
    cand_engine: str = "py",
    tolerance: Tolerance = Tolerance(),
    per_key: Mapping[str, Tolerance] = NO_OVERRIDES,
) -> Comparison:
    """Compare ``cand`` against ``ref`` key by key (rule and statuses in the module docstring).

    Rows follow the reference trace's order (its ``position``), then the (key, occurrence)
    pairs only the candidate printed, in the candidate's order; their ``position`` continues
    after the reference's last. ``missing[engine]`` lists the keys the other side printed and
    that engine printed not at all (extra or absent *occurrences* show only as rows).
    ``first_divergence`` is the first row whose status is not ``match``. The normalization
    chain (bundle.analysis.chain) is compared with the same tolerances.
    """
    if ref_engine == cand_engine:
        raise ValueError(f"reference and candidate engines must differ, both are {ref_engine!r}")

    overrides = per_key or NO_OVERRIDES

    def tol_for(key: str) -> Tolerance:
        return overrides.get(key, tolerance)

    ref_index = {(e.key, e.occurrence): e for e in ref.entries}
    cand_index = {(e.key, e.occurrence): e for e in cand.entries}
    rows: list[ComparisonRow] = []
    for e in ref.entries:
        rows += _entry_rows(e.key, e.occurrence, e.position, e, cand_index.get((e.key, e.occurrence)), tol_for(e.key))
    extra = [e for e in cand.entries if (e.key, e.occurrence) not in ref_index]
    for k, e in enumerate(extra):
        rows += _entry_rows(e.key, e.occurrence, len(ref.entries) + k, None, e, tol_for(e.key))

    ref_keys, cand_keys = ref.keys(), cand.keys()
    ref_set, cand_set = set(ref_keys), set(cand_keys)
    missing = {
        ref_engine: tuple(k for k in cand_keys if k not in ref_set),
        cand_engine: tuple(k for k in ref_keys if k not in cand_set),
    }
    return Comparison(
        ref_engine=ref_engine,
        cand_engine=cand_engine,
        rows=tuple(rows),
        first_divergence=next((r for r in rows if r.status != "match"), None),
        missing=missing,
        keys_compared=len(ref_set & cand_set),
        chain=chain_report(ref, cand, ref_engine, cand_engine, tolerance, per_key),
    )


# --------------------------------------------------------------------------- JSON


def _check_engine_names(*engines: str) -> None:
    for e in engines:
        if e in _RESERVED:
            raise ValueError(f"engine name {e!r} clashes with a field of the JSON summary")


def summary_json(comparison: Comparison, roots: RootsReport | None = None) -> dict[str, Any]:
    """The comparison as plain JSON data (what ``--json`` prints and the manifest's result holds).

    Engine names are keys: with engines ``c`` and ``py``::

        {"first_divergence": {"key", "occurrence", "component", "status", "c", "py",
                              "abs_diff", "rel_diff", "ratio", "rtol", "atol"} | null,
         "first_chain_divergence": {"key", "component": 0, "c", "py", "rel_diff", "ratio"} | null,
         "chain": {"factors": [{"key", "c", "py", "ratio", "rel_diff", "matches"}, ...],
                   "product_of_ratios", "final_ratio",
                   "consistency": {"c": {"product", "final", "ratio", "consistent", "missing"},
                                   "py": {...}}},
         "missing": {"c": [keys c lacks], "py": [keys py lacks]},
         "keys_compared": int}

    Floats go through :func:`json_float`: nan and ±inf become "nan", "inf", "-inf"; null means
    the value is absent on that side. With ``roots`` (bundle.analysis.roots) it also holds
    ``roots``, ``amplified``, ``carried``, ``min_rtol``, ``key_graph`` and ``chain.attribution``.
    """
    re_, ce = comparison.ref_engine, comparison.cand_engine
    _check_engine_names(re_, ce)
    data = {
        "first_divergence": _first_json(comparison.first_divergence, re_, ce),
        "first_chain_divergence": _first_chain_json(comparison.chain.first_divergence, re_, ce),
        "chain": _chain_json(comparison.chain, re_, ce),
        "missing": {engine: list(keys) for engine, keys in comparison.missing.items()},
        "keys_compared": comparison.keys_compared,
    }
    _add_roots(data, roots, comparison, re_, ce)
    return data


def _first_json(fd: ComparisonRow | None, re_: str, ce: str) -> dict[str, Any] | None:
    if fd is None:
        return None
    return {
        "key": fd.key,
        "occurrence": fd.occurrence,
        "component": fd.component,
        "status": fd.status,
        re_: json_float(fd.ref),
        ce: json_float(fd.cand),
        "abs_diff": json_float(fd.abs_diff),
        "rel_diff": json_float(fd.rel_diff),
        "ratio": json_float(fd.ratio),
        "rtol": json_float(fd.rtol),
        "atol": json_float(fd.atol),
    }


def _first_chain_json(cd: ChainFactor | None, re_: str, ce: str) -> dict[str, Any] | None:
    if cd is None:
        return None
    return {
        "key": cd.key,
        "component": 0,
        re_: json_float(cd.ref),
        ce: json_float(cd.cand),
        "rel_diff": json_float(cd.rel_diff),
        "ratio": json_float(cd.ratio),
    }


def _chain_json(chain: ChainReport, re_: str, ce: str) -> dict[str, Any]:
    return {
        "factors": [
            {
                "key": f.key,
                re_: json_float(f.ref),
                ce: json_float(f.cand),
                "ratio": json_float(f.ratio),
                "rel_diff": json_float(f.rel_diff),
                "matches": f.matches,
            }
            for f in chain.factors
        ],
        "product_of_ratios": json_float(chain.product_of_ratios),
        "final_ratio": json_float(chain.final_ratio),
        "consistency": {
            engine: {
                "product": json_float(c.product),
                "final": json_float(c.final),
                "ratio": json_float(c.ratio),
                "consistent": c.consistent,
                "missing": list(c.missing),
            }
            for engine, c in chain.consistency.items()
        },
    }


def _add_roots(data: dict[str, Any], roots: RootsReport | None, comparison: Comparison, ref: str,
               cand: str) -> None:
    # Every result has the same shape (the schema requires it): without a classification on a
    # key graph, the keys are classified without one (each divergent key its own root candidate).
    if roots is None:
        roots = classify(comparison)

    extra = roots_json(roots, ref, cand)
    data["chain"]["attribution"] = extra.pop("attribution")
    data.update(extra)
