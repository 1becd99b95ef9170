"""What a suite member entry may claim: its figures as the member bundles' own manifests hold
them. suite.json is an index written beside the members; verify checks each entry's claims
against the (verified) members, and --resume reads a reused run's figures from the members, so
an edited suite.json can neither pass a failing run nor change what a diff or gate sees."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from bundle.suite.judge import judge, run_metrics
from bundle.suite.model import RunOutcome, Thresholds


def member_manifest(bundles: Path, bundle_id: str) -> dict:
    return json.loads((bundles / bundle_id / "manifest.json").read_text(encoding="utf-8"))


def recorded(bundles: Path, old: RunOutcome) -> RunOutcome:
    """``old`` with its metrics, verdict, first divergence and roots read from its members."""
    manifest = member_manifest(bundles, old.bundle)
    image = manifest["result"]
    traced = member_manifest(bundles, old.trace_bundle)["result"] if old.trace_bundle else \
        image if manifest["spec"].get("pixel") else None
    metrics = run_metrics(image.get("metrics") or {})
    if traced is None:  # an untraced image member: no verdict, no divergence
        return replace(old, metrics=metrics, verdict=None, first_divergence=None, roots=())
    first = traced.get("first_divergence")
    return replace(old, metrics=metrics, verdict=traced.get("verdict"),
                   first_divergence=first.get("key") if isinstance(first, dict) else None,
                   roots=tuple(r["key"] for r in traced.get("roots") or () if isinstance(r, dict)))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def claim_problems(bundles: Path, entry: Mapping[str, Any]) -> list[str]:
    """How a member entry of suite.json differs from its members (empty when it does not).
    Only entries whose members were written (status pass or fail) make figure claims."""
    old = RunOutcome.from_data(entry)
    if old.status not in ("pass", "fail") or not old.bundle:
        return []
    truth = recorded(bundles, old)
    problems = [f"{name} {getattr(old, name)!r} (its members say {getattr(truth, name)!r})"
                for name in ("verdict", "first_divergence", "roots")
                if getattr(old, name) != getattr(truth, name)]
    wrong = sorted(k for k in set(old.metrics) | set(truth.metrics)
                   if not _same(old.metrics.get(k), truth.metrics.get(k)))
    problems += [f"metric {k} {old.metrics.get(k)!r} (its members say {truth.metrics.get(k)!r})"
                 for k in wrong]
    failed = judge(truth.metrics, Thresholds(tuple(sorted(old.thresholds.items()))))
    if old.status != ("fail" if failed else "pass") or tuple(old.failed) != failed:
        problems.append(f"status {old.status} (its members' metrics against its thresholds: "
                        f"{'fail ' + ', '.join(failed) if failed else 'pass'})")
    return problems
