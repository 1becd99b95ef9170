"""A BundleDiff from two manifests and their comparison rows (plain data in, a record out)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from bundle.diff import changes, results
from bundle.diff.model import BundleDiff
from bundle.diff.words import CATEGORIES, UNCHANGED


def _trace_digests(manifest: Mapping[str, Any]) -> dict[str, Any]:
    return {e.get("name"): e.get("trace_sha256") for e in manifest.get("engines") or ()
            if isinstance(e, dict)}


def diff_bundles(before: Mapping[str, Any], after: Mapping[str, Any],
                 rows_before: Iterable[Mapping[str, Any]] | None = None,
                 rows_after: Iterable[Mapping[str, Any]] | None = None) -> BundleDiff:
    """Before (A) against after (B). Rows are comparison.parquet's (key, status, ratio,
    rel_diff); None reads the keys from the manifest alone (a bare archived manifest)."""
    kb = results.keys_from_rows(rows_before) if rows_before is not None else results.keys_from_manifest(before)
    ka = results.keys_from_rows(rows_after) if rows_after is not None else results.keys_from_manifest(after)
    keys = results.key_changes(kb, ka)
    metrics = results.metrics(before, after)
    verdict = results.verdict(before, after)
    roots = results.roots(before, after)
    first = results.first_divergence(before, after)
    factors = results.factors(before, after)
    tables = rows_before is not None and rows_after is not None
    changed = (any(k.transition != UNCHANGED or (tables and k.before != k.after) for k in keys)
               or any(v.changed for v in (*metrics, *factors, verdict, roots, first))
               or _trace_digests(before) != _trace_digests(after))
    return BundleDiff(
        before_id=str(before.get("bundle_id")), after_id=str(after.get("bundle_id")),
        keys=keys, factors=factors, metrics=metrics, verdict=verdict, roots=roots,
        first_divergence=first,
        changes=changes.input_changes(before, after, CATEGORIES),
        arguments=changes.token_diff(changes.shared_arguments(before), changes.shared_arguments(after)),
        results_changed=changed, before_is_manifest=rows_before is None)
