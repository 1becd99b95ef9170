"""The suite's words, in one place: what report.md, ``show``, ``export`` and the ledger attempt
say about a suite. Pure functions over plain values, in bundle.present.vocabulary's style (its
marks, number formats and plural are reused, so a suite cell reads like a capture's report).
"""

from __future__ import annotations

from typing import Any, Mapping

from bundle.present.vocabulary import BAD, DASH, OK, fmt_plain, fmt_ratio, fmt_short, from_json, plural
from bundle.suite.model import THRESHOLD_METRICS

ERROR_MARK = "!"  # a run that produced no judgeable image (its engines failed, it timed out)
REUSED = "reused"
RERUN = "rerun"
PASS_WORD, FAIL_WORD, ERROR_WORD = "pass", "FAIL", "ERROR"
MATRIX_HEADING = "Matrix"
FAILING_HEADING = "Failing runs"
UNKNOWN_HEADING = "Fields of the suite file not read"
RUN_MISSING = DASH  # a matrix cell of a run name the case does not have

# The metric names a cell and a threshold line use: short, as upstream's thresholds spell them.
METRIC_WORDS = {"corr": "corr", "sum_ratio": "sum", "max_abs": "max|Δ|", "rmse": "rmse",
                "mean_peak_distance": "peak dist", "peaks_matched": "peaks"}


def suite_title(name: str) -> str:
    return f"Suite {name}"


def summary_line(summary: Mapping[str, Any]) -> str:
    """``41 of 55 pass · 12 fail · 2 errors · 3 reused``: the counts that are not zero."""
    runs, passed = int(summary.get("runs", 0)), int(summary.get("passed", 0))
    parts = [f"{passed} of {runs} pass"]
    if summary.get("failed"):
        parts.append(f"{summary['failed']} fail")
    if summary.get("errors"):
        parts.append(plural(int(summary["errors"]), "error"))
    parts.append(f"{summary.get('reused', 0)} {REUSED}")
    return " · ".join(parts)


def status_mark(status: str) -> str:
    return {"pass": OK, "fail": BAD}.get(status, ERROR_MARK)


def status_word(status: str) -> str:
    return {"pass": PASS_WORD, "fail": FAIL_WORD}.get(status, ERROR_WORD)


def metric_text(metric: str, value: Any) -> str:
    word = METRIC_WORDS.get(metric, metric)
    value = from_json(value)  # suite.json writes nan/inf as text, as a manifest does
    if value is None:
        return f"{word} {DASH}"
    if metric == "corr":
        return f"{word} {fmt_short(value, 6)}"
    if metric == "sum_ratio":
        return f"{word} {fmt_ratio(value)}"
    return f"{word} {fmt_short(value, 4)}"


def cell_text(member: Mapping[str, Any]) -> str:
    """One matrix cell: ``✓ corr 0.99998 · sum 1.0001`` (``! error`` when there is no image)."""
    mark = status_mark(member.get("status", "error"))
    metrics = member.get("metrics") or {}
    if member.get("status") == "error" and not any(v is not None for v in metrics.values()):
        return f"{mark} {ERROR_WORD.lower()}"
    return f"{mark} " + " · ".join(metric_text(m, metrics.get(m)) for m in ("corr", "sum_ratio"))


def threshold_line(name: str, value: Any, limit: float) -> str:
    """``corr_min: corr 0.998 < 0.9999 required`` (why a threshold failed, in numbers)."""
    metric, side = THRESHOLD_METRICS[name]
    need = "≥" if side == "min" else "≤"
    return f"{name}: {metric_text(metric, value)}, required {need} {fmt_plain(limit, 8)}"


def pixel_text(pixel: Any, reason: str) -> str:
    if not pixel:
        return DASH
    text = f"({pixel[0]}, {pixel[1]})"
    return f"{text}: {reason}" if reason else text


def reuse_text(member: Mapping[str, Any]) -> str:
    """``reused (run key unchanged)`` / ``rerun: engine source changed`` / empty."""
    word = REUSED if member.get("reused") else RERUN
    reason = member.get("reason") or ""
    return f"{word}: {reason}" if reason else (word if member.get("reused") else "")


def roots_text(roots: Any) -> str:
    return ", ".join(roots) if roots else DASH


def attempt_title(name: str, summary: Mapping[str, Any]) -> str:
    return f"suite {name}: {summary_line(summary)}"
