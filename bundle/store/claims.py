"""What a manifest claims, checked against the raw trace logs it carries.

A sha256 list proves only that the files are the ones the manifest names; whoever rewrites
``result.verdict`` rewrites the manifest too. So verify recomputes the comparison from
``logs/`` (the same parse and compare code as a capture, the spec's tolerances) and checks
that the manifest's ``result``, ``comparison.parquet``, ``chain.parquet`` and ``report.md``
all say what that recomputation says. Each disagreement is one line naming the field.

Pure apart from reading the bundle's own files.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Mapping

from bundle.model.errors import NbError

# The result fields a recomputation decides (the rest, metrics and commands, come from images
# and records that the sha256 list already pins).
RECOMPUTED = ("first_divergence", "first_chain_divergence", "chain", "missing", "keys_compared",
              "roots", "amplified", "carried", "min_rtol")


class SelfComparison(NbError):
    """Both sides of the comparison are the same trace."""


def _trace(root: Path, engine: Mapping[str, Any] | None):
    from bundle.analysis.trace import parse_file
    from bundle.model.records import Trace

    if engine is None:
        return None
    prefix = engine.get("prefix") or ""
    log = engine.get("log")
    if not log or not (root / log).is_file():
        return Trace(prefix=prefix, entries=())
    try:
        return parse_file(root / log, prefix)
    except NbError:
        return Trace(prefix=prefix, entries=())


def _pair(manifest: Mapping[str, Any]):
    """The two engines the result says it compared, and the names it gave them. By name; when
    the result names engines the manifest does not list, the first two engines with a log (the
    capture compares the first two that ran, reference first)."""
    pair = manifest["result"].get("engines") or {}
    by_name = {e["name"]: e for e in manifest["engines"]}
    ref, cand = by_name.get(pair.get("ref")), by_name.get(pair.get("cand"))
    if ref is None or cand is None:
        with_logs = [e for e in manifest["engines"] if e.get("log")]
        ref, cand = (with_logs + [None, None])[:2]
    labels = tuple(pair.get(k) if isinstance(pair.get(k), str) else (e or {}).get("name")
                   for k, e in (("ref", ref), ("cand", cand)))
    return ref, cand, labels


def recompute(root: Path, manifest: Mapping[str, Any]):
    """(comparison or None, roots or None) from the logs, as the capture computed them."""
    from bundle.analysis.compare import compare_traces
    from bundle.analysis.roots import classify
    from bundle.capture.spec import recorded_spec
    from bundle.capture.target import BUILTIN, load_target, recorded_profile

    spec = recorded_spec(manifest["spec"], source=f"{root}/manifest.json:spec")
    name = manifest["target"]["name"]
    target = load_target(name) if name in BUILTIN else recorded_profile(manifest["target"], name)
    ref, cand, labels = _pair(manifest)
    if ref is None or cand is None or ref is cand:
        return None, None
    if (ref.get("log"), ref.get("prefix")) == (cand.get("log"), cand.get("prefix")):
        # One log holding both prefixes is fine; one side read twice is no comparison.
        raise SelfComparison(f"engines: {ref['name']} and {cand['name']} read the same trace "
                             f"({ref.get('prefix')} in {ref.get('log')})")
    ref_t, cand_t = _trace(root, ref), _trace(root, cand)
    if not (ref_t.entries or cand_t.entries):
        return None, None
    comparison = compare_traces(ref_t, cand_t, labels[0], labels[1], spec.tolerance, spec.per_key)
    # The graph the capture says it classified with (none when its target gave none).
    given = (manifest["result"].get("key_graph") or {}).get("given")
    return comparison, classify(comparison, target.graph if given else None, spec.amplification)


def expected_verdict(comparison) -> set[str]:
    """The verdicts the logs allow. ``incomplete`` also covers a failed command after a clean
    trace, which the logs alone cannot see."""
    if comparison is None:
        return {"incomplete"}
    statuses = {r.status for r in comparison.rows}
    if statuses & {"differ", "unparsed"}:
        return {"divergence"}
    if statuses - {"match"}:
        return {"divergence", "incomplete"}
    return {"parity", "incomplete"}


def _same(a: Any, b: Any) -> bool:
    """JSON equality where nan equals nan (a float that went through json_float may be a string)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _stand_in(manifest: Mapping[str, Any], comparison, roots):
    """A CaptureResult holding only what the comparison and chain tables read."""
    from bundle.model.records import CaptureResult

    return CaptureResult(bundle_id=manifest["bundle_id"], status=manifest["status"],
                         verdict=manifest["result"]["verdict"], spec={}, target="", pixel=None,
                         engines=(), comparison=comparison, metrics=None, commands=(),
                         environment={}, roots=roots)


def _table_problems(root: Path, manifest: Mapping[str, Any], comparison, roots) -> list[str]:
    import pyarrow.parquet as pq

    from bundle.present.tables import chain_table, comparison_table

    problems = []
    # A table written before the key graph classified the keys has empty class columns: saying
    # less is no false claim, so the unclassified rendering is accepted too.
    results = (_stand_in(manifest, comparison, roots), _stand_in(manifest, comparison, None))
    for name, build in (("comparison.parquet", comparison_table), ("chain.parquet", chain_table)):
        path = root / name
        if not path.is_file():
            continue  # listed-but-missing is verify's byte check; unlisted is never written
        try:
            stored = pq.read_table(path).to_pylist()
        except Exception as exc:  # noqa: BLE001 (pyarrow raises several types for a bad file)
            problems.append(f"{name}: unreadable ({type(exc).__name__})")
            continue
        if not any(_same(stored, build(r).to_pylist()) for r in results):
            problems.append(f"{name}: does not match the comparison recomputed from logs/")
    return problems


_VERDICT_LINE = re.compile(r"^\**Verdict:\s*\**\s*([A-Za-z ]+?)\s*\*\*", re.MULTILINE)


def _report_problem(root: Path, verdict: str) -> str | None:
    path = root / "report.md"
    if not path.is_file():
        return None
    found = _VERDICT_LINE.search(path.read_text(encoding="utf-8", errors="replace"))
    if found is None:
        return "report.md: no verdict line"
    if found.group(1).strip().lower() != verdict:
        return f"report.md: says {found.group(1).strip()} where the manifest's verdict is {verdict}"
    return None


def claim_problems(root: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Where the manifest, its tables or its report disagree with the logs (empty: they agree)."""
    from bundle.analysis.compare import summary_json

    try:
        comparison, roots = recompute(root, manifest)
    except SelfComparison as exc:
        return [str(exc)]
    except NbError as exc:
        return [f"spec/target: cannot recompute the comparison ({exc})"]
    result = manifest["result"]
    problems = []
    allowed = expected_verdict(comparison)
    if result.get("verdict") not in allowed:
        problems.append(f"result.verdict: says {result.get('verdict')} where logs/ give "
                        f"{' or '.join(sorted(allowed))}")
    if comparison is not None:
        fresh = json.loads(json.dumps(summary_json(comparison, roots)))
        for field in RECOMPUTED:
            if field in fresh and not _same(result.get(field), fresh[field]):
                problems.append(f"result.{field}: does not match the comparison recomputed from logs/")
    elif result.get("first_divergence") is not None or result.get("keys_compared"):
        problems.append("result: claims a comparison where logs/ hold no trace")
    problems += _table_problems(root, manifest, comparison, roots)
    report = _report_problem(root, result.get("verdict"))
    return problems + ([report] if report else [])
