"""A SuiteDiff from two suite.json documents (bundle.suite.model's layout): runs matched by
case and run id; each run's status, image metrics, first divergence and roots, before and
after. Pure."""

from __future__ import annotations

from typing import Any, Mapping

from bundle.diff.model import RunDiff, SuiteDiff, ValuePair
from bundle.suite.model import RunOutcome, THRESHOLD_METRICS


def _members(suite: Mapping[str, Any]) -> dict[str, RunOutcome]:
    return {m["id"]: RunOutcome.from_data(m) for m in suite.get("members") or ()}


def _metric_names(before: RunOutcome, after: RunOutcome) -> list[str]:
    names = [m for m, _ in THRESHOLD_METRICS.values()]
    seen = dict.fromkeys(n for n in names if n in before.metrics or n in after.metrics)
    return list(seen) + sorted(set(before.metrics) | set(after.metrics) - set(seen))


def run_diff(before: RunOutcome, after: RunOutcome) -> RunDiff:
    failed_b, failed_a = set(before.failed), set(after.failed)
    metrics = []
    for name in _metric_names(before, after):
        # a metric passes unless a threshold on it failed (None: no threshold names it)
        limits = [t for t, (m, _) in THRESHOLD_METRICS.items() if m == name]
        pb = None if not any(t in before.thresholds for t in limits) else not (failed_b & set(limits))
        pa = None if not any(t in after.thresholds for t in limits) else not (failed_a & set(limits))
        metrics.append(ValuePair(name, before.metrics.get(name), after.metrics.get(name), pb, pa))
    return RunDiff(before.id, ValuePair("status", before.status, after.status,
                                        before.status == "pass", after.status == "pass"),
                   tuple(metrics),
                   ValuePair("first divergence", before.first_divergence, after.first_divergence),
                   ValuePair("roots", tuple(before.roots), tuple(after.roots)))


def diff_suites(before: Mapping[str, Any], after: Mapping[str, Any]) -> SuiteDiff:
    mb, ma = _members(before), _members(after)
    runs = tuple(run_diff(mb[i], ma[i]) for i in ma if i in mb)
    return SuiteDiff(str(before.get("suite_id")), str(after.get("suite_id")), runs,
                     tuple(i for i in mb if i not in ma), tuple(i for i in ma if i not in mb))
