"""Comparing two logs that already exist (no engines run): the `compare` command's library side."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bundle.analysis.compare import compare_traces, summary_json
from bundle.model.errors import TraceError, UserError
from bundle.analysis.roots import classify
from bundle.model.records import Comparison, KeyGraph, RootsReport, Tolerance, Trace
from bundle.analysis.trace import MAX_ENTRIES, MAX_OCCURRENCES, detect_prefix, parse_file


@dataclass(frozen=True)
class LogComparison:
    ref: Trace
    cand: Trace
    comparison: Comparison
    summary: dict
    roots: RootsReport | None = None


def _engine_name(prefix: str, fallback: str) -> str:
    # "TRACE_C:" -> "c", "TRACE_PY:" -> "py": the names the ledger and report use.
    name = prefix.rstrip(":").removeprefix("TRACE_").lower()
    return name or fallback


def choose_graph(comparison: Comparison, graph: KeyGraph | None, default: KeyGraph | None
                 ) -> tuple[KeyGraph | None, str]:
    """The key graph for an offline compare, and the line that says which: the one given, else
    ``default`` (the built-in nanoBragg graph) when every key of the logs is one of its keys."""
    if graph is not None:
        return graph, f"key graph: {graph.source}"
    keys = {r.key for r in comparison.rows}
    if default is not None and keys and keys <= set(default.keys):
        return default, f"key graph: {default.source} (the logs' keys are nanoBragg's)"
    return None, "key graph: none given (every divergent key counts as a root candidate)"


def _verdict(comparison: Comparison, truncated: dict[str, int]) -> str:
    # A divergence among the compared values stands whatever follows it; parity is only claimed
    # over a log compared to its end, so a truncated one without a divergence is incomplete.
    if any(r.status != "match" for r in comparison.rows):
        return "divergence"
    return "incomplete" if any(truncated.values()) else "parity"


def truncation_note(truncated: dict[str, int]) -> str:
    """The line that says how many key lines of each log were counted but not compared."""
    counts = ", ".join(f"{engine}: {n:,}" for engine, n in truncated.items() if n)
    return (f"truncated: key lines past the first {MAX_OCCURRENCES:,} occurrences of a key (or "
            f"{MAX_ENTRIES:,} key lines in all) were counted, not compared ({counts})")


def compare_logs(ref_log: Path, cand_log: Path, rtol: float = 1e-6, atol: float = 0.0,
                 ref_prefix: str | None = None, cand_prefix: str | None = None,
                 graph: KeyGraph | None = None, default_graph: KeyGraph | None = None
                 ) -> LogComparison:
    for path in (ref_log, cand_log):
        if not Path(path).is_file():
            raise UserError(f"{path}: log file not found")
    prefixes = []
    for path, given in ((ref_log, ref_prefix), (cand_log, cand_prefix)):
        prefix = given or detect_prefix(path)
        if prefix is None:
            raise TraceError(f"{path}: no trace lines found (no 'TRACE_X: key value' lines)")
        prefixes.append(prefix)
    ref = parse_file(ref_log, prefixes[0])
    cand = parse_file(cand_log, prefixes[1])
    ref_name = _engine_name(ref.prefix, "ref")
    cand_name = _engine_name(cand.prefix, "cand")
    if cand_name == ref_name:
        ref_name, cand_name = f"{ref_name}_ref", f"{cand_name}_cand"
    comparison = compare_traces(ref, cand, ref_name, cand_name, Tolerance(rtol=rtol, atol=atol))
    chosen, graph_note = choose_graph(comparison, graph, default_graph)
    roots = classify(comparison, chosen)
    summary = summary_json(comparison, roots)
    summary["notes"] = [graph_note]
    truncated = {ref_name: ref.truncated, cand_name: cand.truncated}
    if any(truncated.values()):
        summary["truncated"] = truncated
        summary["notes"].append(truncation_note(truncated))
    summary = {"verdict": _verdict(comparison, truncated),
               "engines": {"ref": ref_name, "cand": cand_name},
               "logs": {ref_name: str(ref_log), cand_name: str(cand_log)}, **summary}
    return LogComparison(ref, cand, comparison, summary, roots)
