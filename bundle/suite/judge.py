"""Thresholds judged on the image: a run's metrics (from its member's manifest) against its
limits. Pure functions over plain data.

A threshold whose metric is missing, or is not a finite number (a nan correlation, an infinite
sum ratio), FAILS: a run is never passed on a number it does not have.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from bundle.suite.model import THRESHOLD_METRICS, Thresholds

# metric key of THRESHOLD_METRICS -> the manifest's metrics field it is read from
MANIFEST_FIELDS: Mapping[str, str] = {
    "corr": "pearson",
    "sum_ratio": "sum_ratio",
    "max_abs": "max_abs_diff",
    "rmse": "rmse",
    "mean_peak_distance": "mean_peak_distance",
    "peaks_matched": "peaks_matched",
}


def _number(value: Any) -> float | None:
    """A finite float, else None (the manifest writes nan/inf as strings, absent as null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def run_metrics(manifest_metrics: Mapping[str, Any] | None) -> dict[str, float | None]:
    """The manifest's ``metrics`` (bundle.present.manifest.metrics_json) under THRESHOLD_METRICS'
    metric keys; None where the capture has no such number (no image, nan, inf)."""
    source = manifest_metrics or {}
    return {key: _number(source.get(field)) for key, field in MANIFEST_FIELDS.items()}


def passes(value: float | None, limit: float, sense: str) -> bool:
    if value is None:
        return False  # missing or not finite: fails (module docstring)
    return value >= limit if sense == "min" else value <= limit


def judge(metrics: Mapping[str, float | None], thresholds: Thresholds) -> tuple[str, ...]:
    """The names of the thresholds that fail, in the thresholds' (sorted) order. A threshold
    naming no known metric fails too (the suite reader refuses those before anything runs)."""
    failed = []
    for name, limit in thresholds.limits:
        if name not in THRESHOLD_METRICS:
            failed.append(name)
            continue
        key, sense = THRESHOLD_METRICS[name]
        if not passes(metrics.get(key), limit, sense):
            failed.append(name)
    return tuple(failed)


def failure_line(name: str, metrics: Mapping[str, float | None], thresholds: Thresholds) -> str:
    """One line for a failed threshold: ``corr_min: corr 0.998 < 0.9999`` or ``... missing``."""
    limit = dict(thresholds.limits).get(name)
    if name not in THRESHOLD_METRICS:
        return f"{name}: not a threshold this tool knows"
    key, sense = THRESHOLD_METRICS[name]
    value = metrics.get(key)
    if value is None:
        return f"{name}: {key} missing or not a finite number (fails)"
    return f"{name}: {key} {value:.6g} {'<' if sense == 'min' else '>'} {limit:g}"
