"""The bisect bundle ``<bundles>/<UTC>-bisect-<spec name>-<hash8>/``, written like a capture's:
assembled in ``.staging/``, bisect.json last (it lists every other file with its sha256), then
renamed into place in one step (bundle.store.writer).

    bisect.json     {"format_version": 1, "kind": "bisect", "bisect_id", "created_utc",
                     "spec": {"path", "name", "sha256"}, "target", "repo",
                     "predicate": {"kind": "key"|"root"|"verdict", "key", "flag"},
                     "good": {"rev", "sha"}, "bad": {"rev", "sha"}, "commits": N,
                     "executor": {...}, "rounds": R,
                     "probes": [{"index", "sha", "subject", "round", "value", "reason",
                                 "verdict", "key_ratio", "key_rel_diff", "wall_s",
                                 "bundle_id", "build"}],
                     "result": {"status": "found"|"ambiguous"|"good-is-bad"|"bad-is-good",
                                "reason", "first_bad": {"sha", "subject", "files"} | null,
                                "last_good": sha | null, "candidates": [{"sha", "subject",
                                "skipped"}], "skipped": [sha]},
                     "members": [bundle ids], "member_manifests": {bundle id: sha256},
                     "diff_pair": {"last_good", "first_bad"},
                     "diff": <bundle.diff's data> | null, "notes": [...],
                     "files": [{"path", "size", "sha256"}]}
    probes.parquet  one row per probed commit (the columns of ``probes`` above)
    report.md       the story (bundle.bisect.report)

Member bundles (one capture per probed commit) sit beside it in the same bundles directory.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bundle.bisect.report import report_markdown
from bundle.bisect.model import BisectOutcome
from bundle.model.hashing import sha256_file
from bundle.store.writer import discard_staging, new_bundle_id, open_staging, publish_indexed

BISECT_FORMAT_VERSION = 1
PROBE_COLUMNS = ("index", "sha", "subject", "round", "value", "reason", "verdict", "key_ratio",
                 "key_rel_diff", "wall_s", "bundle_id", "build")


def probe_rows(outcome: BisectOutcome) -> list[dict[str, Any]]:
    where = {c.sha: (i, c.subject) for i, c in enumerate(outcome.commits)}
    rows = []
    for p in outcome.probes:
        index, subject = where[p.sha]
        rows.append({"index": index, "subject": subject, **p.to_data()})
    return [{k: r[k] for k in PROBE_COLUMNS} for r in sorted(rows, key=lambda r: r["index"])]


def result_data(outcome: BisectOutcome) -> dict[str, Any]:
    c, a = outcome.commits, outcome.answer
    first = None
    if a is not None and a.first_bad is not None:
        fb = c[a.first_bad]
        first = {"sha": fb.sha, "subject": fb.subject, "files": outcome.first_bad_files}
    values = {p.sha: p.value for p in outcome.probes}
    candidates = [] if a is None else [
        {"sha": c[i].sha, "subject": c[i].subject, "skipped": values.get(c[i].sha) == "skip"}
        for i in a.candidates]
    return {"status": outcome.status, "reason": outcome.reason or _reason(outcome),
            "first_bad": first,
            "last_good": None if outcome.last_good is None else c[outcome.last_good].sha,
            "candidates": candidates,
            "skipped": [p.sha for p in outcome.probes if p.value == "skip"]}


def _reason(outcome: BisectOutcome) -> str:
    if outcome.status == "found":
        return f"first bad commit {outcome.commits[outcome.answer.first_bad].sha[:10]}"
    n = len(outcome.answer.candidates) if outcome.answer else 0
    return f"skipped commits leave {n} candidates for the first bad commit"


def bisect_data(outcome: BisectOutcome, bisect_id: str, created: datetime) -> dict[str, Any]:
    r = outcome.request
    spec = Path(r.spec)
    return {
        "format_version": BISECT_FORMAT_VERSION, "kind": "bisect", "bisect_id": bisect_id,
        "created_utc": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "spec": {"path": str(spec), "name": outcome.spec_name, "sha256": sha256_file(spec)[1]},
        "target": r.target, "repo": str(outcome.repo), "predicate": r.predicate.to_data(),
        "good": {"rev": r.good, "sha": outcome.good_sha},
        "bad": {"rev": r.bad, "sha": outcome.bad_sha},
        "commits": len(outcome.commits) - 1, "executor": outcome.executor,
        "rounds": outcome.rounds, "probes": [_finite(r) for r in probe_rows(outcome)], "result": result_data(outcome),
        "members": [p.bundle_id for p in outcome.probes if p.bundle_id],
        "diff_pair": diff_pair(outcome), "diff": None, "notes": list(outcome.notes),
    }


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    from bundle.analysis.numbers import json_float

    return {**row, "key_ratio": json_float(row["key_ratio"]),
            "key_rel_diff": json_float(row["key_rel_diff"])}


def diff_pair(outcome: BisectOutcome) -> dict[str, str | None]:
    """The member bundles of the last good commit and the first (known) bad one."""
    by_sha = outcome.by_sha()

    def member(index: int | None) -> str | None:
        p = by_sha.get(outcome.commits[index].sha) if index is not None else None
        return p.bundle_id if p else None

    return {"last_good": member(outcome.last_good), "first_bad": member(outcome.first_bad)}


def diff_of(bundles: Path, pair: dict[str, str | None]) -> tuple[dict | None, str | None]:
    """The last good commit's bundle against the first bad one's (bundle.diff), as (data,
    Markdown); (None, None) when one side was not captured."""
    from bundle.diff.load import diff_paths
    from bundle.diff.markdown import markdown

    if not (pair.get("last_good") and pair.get("first_bad")):
        return None, None
    d = diff_paths(bundles / pair["last_good"], bundles / pair["first_bad"])
    return d.to_data(), markdown(d)


def write_bisect_bundle(outcome: BisectOutcome) -> Path:
    bundles = Path(outcome.request.bundles).resolve()
    created = datetime.now(timezone.utc)
    key = hashlib.sha256(f"{outcome.good_sha}\0{outcome.bad_sha}\0"
                         f"{outcome.request.predicate.describe()}".encode()).hexdigest()
    bisect_id = new_bundle_id(f"bisect-{outcome.spec_name}", key, created)
    data = bisect_data(outcome, bisect_id, created)
    data["diff"], diff_md = diff_of(bundles, data["diff_pair"])
    # each member's manifest digest, so verify can tell a member swapped after the fact
    data["member_manifests"] = {m: sha256_file(bundles / m / "manifest.json")[1]
                                for m in data["members"] if (bundles / m / "manifest.json").is_file()}
    staging = open_staging(bundles, bisect_id)
    try:
        (staging / "report.md").write_text(report_markdown(data, diff_md), encoding="utf-8")
        _write_probes(staging / "probes.parquet", probe_rows(outcome))
        return publish_indexed(staging, bundles, bisect_id, "bisect.json", data)
    except BaseException:
        discard_staging(staging)
        raise


def _write_probes(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("index", pa.int32()), ("sha", pa.string()), ("subject", pa.string()),
                        ("round", pa.int32()), ("value", pa.string()), ("reason", pa.string()),
                        ("verdict", pa.string()), ("key_ratio", pa.float64()),
                        ("key_rel_diff", pa.float64()), ("wall_s", pa.float64()),
                        ("bundle_id", pa.string()), ("build", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
