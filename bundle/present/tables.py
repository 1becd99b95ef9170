"""The bundle's Parquet tables, rendered from a CaptureResult (pure: no disk).

Column names are the design's words; every table is readable with pandas, polars or duckdb.
Missing values are nulls, never zeros (a missing key is a finding, not a number).
"""

from __future__ import annotations

import json

import pyarrow as pa

from bundle.model.records import CaptureResult


def _f(v):
    return None if v is None else float(v)


def traces_table(result: CaptureResult) -> pa.Table:
    rows = {k: [] for k in ("engine", "prefix", "position", "key", "occurrence", "component",
                            "n_components", "value", "token", "is_int", "unparsed", "line_no")}
    for run in result.engines:
        if run.trace is None:
            continue
        for e in run.trace.entries:
            comps = max(len(e.tokens), 1)
            for c in range(comps):
                rows["engine"].append(run.engine)
                rows["prefix"].append(run.prefix)
                rows["position"].append(e.position)
                rows["key"].append(e.key)
                rows["occurrence"].append(e.occurrence)
                rows["component"].append(c)
                rows["n_components"].append(len(e.tokens))
                rows["value"].append(None if e.unparsed or c >= len(e.values) else e.values[c])
                rows["token"].append(e.tokens[c] if c < len(e.tokens) else None)
                rows["is_int"].append(bool(e.is_int[c]) if c < len(e.is_int) else None)
                rows["unparsed"].append(e.unparsed)
                rows["line_no"].append(e.line_no)
    return pa.table(rows, schema=pa.schema([
        ("engine", pa.string()), ("prefix", pa.string()), ("position", pa.int32()),
        ("key", pa.string()), ("occurrence", pa.int32()), ("component", pa.int32()),
        ("n_components", pa.int32()), ("value", pa.float64()), ("token", pa.string()),
        ("is_int", pa.bool_()), ("unparsed", pa.bool_()), ("line_no", pa.int64())]))


def comparison_table(result: CaptureResult) -> pa.Table:
    cmp = result.comparison
    rows = cmp.rows if cmp else ()
    return pa.table({
        "ref_engine": pa.array([cmp.ref_engine] * len(rows), pa.string()),
        "cand_engine": pa.array([cmp.cand_engine] * len(rows), pa.string()),
        "position": pa.array([r.position for r in rows], pa.int32()),
        "key": pa.array([r.key for r in rows], pa.string()),
        "occurrence": pa.array([r.occurrence for r in rows], pa.int32()),
        "component": pa.array([r.component for r in rows], pa.int32()),
        "ref": pa.array([_f(r.ref) for r in rows], pa.float64()),
        "cand": pa.array([_f(r.cand) for r in rows], pa.float64()),
        "abs_diff": pa.array([_f(r.abs_diff) for r in rows], pa.float64()),
        "rel_diff": pa.array([_f(r.rel_diff) for r in rows], pa.float64()),
        "ratio": pa.array([_f(r.ratio) for r in rows], pa.float64()),
        "rtol": pa.array([r.rtol for r in rows], pa.float64()),
        "atol": pa.array([r.atol for r in rows], pa.float64()),
        "status": pa.array([r.status for r in rows], pa.string()),
        "match": pa.array([r.matches for r in rows], pa.bool_()),
        "first_divergence": pa.array([cmp.first_divergence is r for r in rows], pa.bool_()),
        **roots_columns(result, [r.key for r in rows]),
    }) if cmp else pa.table({"key": pa.array([], pa.string()), "status": pa.array([], pa.string())})


def roots_columns(result: CaptureResult, keys: list[str]) -> dict[str, pa.Array]:
    """Each row's key class (match, root, amplified, carried, missing) and the key's min_rtol."""
    by = {k.key: k for k in result.roots.keys} if result.roots else {}
    return {"class": pa.array([by[k].klass if k in by else None for k in keys], pa.string()),
            "min_rtol": pa.array([_f(by[k].min_rtol) if k in by else None for k in keys],
                                 pa.float64())}


def graph_table(result: CaptureResult) -> pa.Table:
    """The key graph's edges (kind "depends": child is computed from parent) and the causes'
    edges (kind "explains": a root or amplified key to each carried key it explains)."""
    roots = result.roots
    edges = [(p, c, "depends") for p, c in roots.edges] if roots else []
    edges += [(k.key, e, "explains") for k in roots.keys for e in k.explains] if roots else []
    by = {k.key: k.klass for k in roots.keys} if roots else {}
    return pa.table({
        "parent": pa.array([p for p, _c, _k in edges], pa.string()),
        "child": pa.array([c for _p, c, _k in edges], pa.string()),
        "kind": pa.array([k for _p, _c, k in edges], pa.string()),
        "parent_class": pa.array([by.get(p) for p, _c, _k in edges], pa.string()),
        "child_class": pa.array([by.get(c) for _p, c, _k in edges], pa.string()),
    })


def chain_table(result: CaptureResult) -> pa.Table:
    """One row per factor (kind "factor"), then one per engine's self-consistency ("consistency")."""
    cols = {k: [] for k in ("kind", "key", "engine", "ref", "cand", "ratio", "rel_diff", "match",
                            "product", "final", "consistent", "missing")}
    if result.comparison:
        chain = result.comparison.chain
        for f in chain.factors:
            for k, v in (("kind", "factor"), ("key", f.key), ("engine", None), ("ref", _f(f.ref)),
                         ("cand", _f(f.cand)), ("ratio", _f(f.ratio)), ("rel_diff", _f(f.rel_diff)),
                         ("match", f.matches), ("product", None), ("final", None),
                         ("consistent", None), ("missing", None)):
                cols[k].append(v)
        for engine, c in chain.consistency.items():
            for k, v in (("kind", "consistency"), ("key", "I_pixel_final"), ("engine", engine),
                         ("ref", None), ("cand", None), ("ratio", _f(c.ratio)), ("rel_diff", None),
                         ("match", None), ("product", _f(c.product)), ("final", _f(c.final)),
                         ("consistent", c.consistent), ("missing", ",".join(c.missing) or None)):
                cols[k].append(v)
    types = {"kind": pa.string(), "key": pa.string(), "engine": pa.string(), "ref": pa.float64(),
             "cand": pa.float64(), "ratio": pa.float64(), "rel_diff": pa.float64(),
             "match": pa.bool_(), "product": pa.float64(), "final": pa.float64(),
             "consistent": pa.bool_(), "missing": pa.string()}
    return pa.table({k: pa.array(v, types[k]) for k, v in cols.items()})


def metrics_table(result: CaptureResult) -> pa.Table:
    """Long form: (metric, engine, value) so new metrics never change the schema."""
    names, engines, values = [], [], []
    m = result.metrics
    if m is not None:
        for name in ("sum_ratio", "rmse", "max_abs_diff", "pearson", "peaks_matched",
                     "mean_peak_distance"):
            names.append(name), engines.append(None), values.append(_f(getattr(m, name)))
        names += ["correlation_pass", "peak_distance_pass", "slow", "fast"]
        engines += [None] * 4
        values += [float(m.correlation_pass),
                   None if m.peak_distance_pass is None else float(m.peak_distance_pass),
                   float(m.slow), float(m.fast)]
        for stats, peaks in ((m.ref, m.peaks_ref), (m.cand, m.peaks_cand)):
            for name in ("total", "mean", "max", "max_slow", "max_fast", "traced_value"):
                names.append(name), engines.append(stats.engine), values.append(_f(getattr(stats, name)))
            names.append("peaks"), engines.append(stats.engine), values.append(float(peaks))
    return pa.table({"metric": pa.array(names, pa.string()), "engine": pa.array(engines, pa.string()),
                     "value": pa.array(values, pa.float64())})


def commands_table(result: CaptureResult) -> pa.Table:
    cmds = result.commands
    return pa.table({
        "step": pa.array([c.step for c in cmds], pa.string()),
        "role": pa.array([c.role for c in cmds], pa.string()),
        "engine": pa.array([c.engine for c in cmds], pa.string()),
        "argv": pa.array([list(c.argv) for c in cmds], pa.list_(pa.string())),
        "cwd": pa.array([c.cwd for c in cmds], pa.string()),
        "env": pa.array([json.dumps(dict(c.env)) for c in cmds], pa.string()),
        "start_utc": pa.array([c.start_utc for c in cmds], pa.string()),
        "end_utc": pa.array([c.end_utc for c in cmds], pa.string()),
        "wall_s": pa.array([c.wall_s for c in cmds], pa.float64()),
        "exit_code": pa.array([c.exit_code for c in cmds], pa.int32()),
        "timed_out": pa.array([c.timed_out for c in cmds], pa.bool_()),
        "error": pa.array([c.error for c in cmds], pa.string()),
        "peak_rss_kb": pa.array([c.peak_rss_kb for c in cmds], pa.int64()),
        "stdout": pa.array([c.stdout.path if c.stdout else None for c in cmds], pa.string()),
        "stderr": pa.array([c.stderr.path if c.stderr else None for c in cmds], pa.string()),
    })


def tables(result: CaptureResult) -> dict[str, pa.Table]:
    """File name -> table, for the bundle writer."""
    return {
        "traces.parquet": traces_table(result),
        "comparison.parquet": comparison_table(result),
        "chain.parquet": chain_table(result),
        "graph.parquet": graph_table(result),
        "metrics.parquet": metrics_table(result),
        "commands.parquet": commands_table(result),
    }
