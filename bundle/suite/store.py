"""The suite bundle: ``<bundles>/<UTC>-suite-<name>-<hash8>/``, written atomically like a capture
(assembled in bundle.store.writer's locked staging directory, flushed, renamed in one step), and
read back and verified.

Contents: ``suite.json`` (the layout of bundle.suite.model's docstring; written last, it lists
every other file with size and sha256), ``suite.parquet`` (one row per run), ``report.md``,
``plots/matrix.png``, ``ro-crate-metadata.json`` (an RO-Crate whose member bundles are ``hasPart``
datasets ``../<member id>/``), and ``source/<file>``, a copy of the suite file as it was read.

Members live beside the suite bundle (its parent directory); verifying the suite verifies each
member: the sha256 of its manifest.json must be the one suite.json records and the member must
pass bundle.store.verify.verify_bundle. A member that is gone is a failure.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from bundle.analysis.numbers import json_float
from bundle.model.errors import BundleError
from bundle.model.files import one_line
from bundle.model.hashing import sha256_file
from bundle.store import writer
from bundle.store.verify import file_sha256, is_safe_relpath, verify_bundle
from bundle.suite.claims import claim_problems
from bundle.suite.model import SUITE_FORMAT_VERSION, THRESHOLD_METRICS, RunOutcome, Suite
from bundle.suite.source import unknown_fields

SUITE_JSON = "suite.json"
SUITE_PARQUET = "suite.parquet"
REPORT = "report.md"
MATRIX_PNG = "plots/matrix.png"
SOURCE_DIR = "source"
# The metric columns of suite.parquet: each metric a threshold may name, once.
METRIC_COLUMNS = tuple(dict.fromkeys(metric for metric, _ in THRESHOLD_METRICS.values()))


def suite_bundle_id(name: str, source_sha256: str, created: datetime) -> str:
    """``<UTC>-suite-<name>-<hash8>``, made like a capture's id."""
    return writer.new_bundle_id(f"suite-{name}", source_sha256, created)


def _plain(value: Any) -> Any:
    """JSON-safe data: non-finite floats as the manifest writes them ("nan", "inf"), anything
    YAML may hold that JSON cannot (dates) as text."""
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def summary_counts(outcomes: Sequence[RunOutcome]) -> dict[str, int]:
    return {"runs": len(outcomes),
            "passed": sum(o.status == "pass" for o in outcomes),
            "failed": sum(o.status == "fail" for o in outcomes),
            "errors": sum(o.status == "error" for o in outcomes),
            "reused": sum(o.reused for o in outcomes)}


def suite_data(suite: Suite, outcomes: Sequence[RunOutcome], *, suite_id: str,
               executor: Mapping, trace: str, created: datetime,
               source_copy: str | None = None) -> dict[str, Any]:
    """suite.json's content, less ``files`` (pure)."""
    source = {"path": suite.source, "sha256": suite.source_sha256, "format": suite.format}
    if source_copy:
        source["copy"] = source_copy
    return _plain({
        "format_version": SUITE_FORMAT_VERSION, "kind": "suite", "suite_id": suite_id,
        "created_utc": created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "name": suite.name, "target": suite.target, "source": source,
        "executor": dict(executor), "trace": trace, "summary": summary_counts(outcomes),
        "members": [o.to_data() for o in outcomes],
        "unknown_fields": unknown_fields(suite)})


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def suite_table(outcomes: Sequence[RunOutcome]):
    """suite.parquet's table: one row per run (pyarrow)."""
    import pyarrow as pa

    text, number, integer, flag = pa.string(), pa.float64(), pa.int64(), pa.bool_()
    columns: dict[str, tuple[Any, list]] = {
        "case": (text, [o.case for o in outcomes]), "run": (text, [o.run for o in outcomes]),
        "status": (text, [o.status for o in outcomes]),
        "pass": (flag, [o.status == "pass" for o in outcomes]),
        "verdict": (text, [o.verdict for o in outcomes])}
    for metric in METRIC_COLUMNS:
        columns[metric] = (number, [_float(o.metrics.get(metric)) for o in outcomes])
    for name in THRESHOLD_METRICS:
        columns[name] = (number, [_float(o.thresholds.get(name)) for o in outcomes])
    columns.update({
        "failed": (pa.list_(text), [list(o.failed) for o in outcomes]),
        "first_divergence": (text, [o.first_divergence for o in outcomes]),
        "roots": (pa.list_(text), [list(o.roots) for o in outcomes]),
        "pixel_slow": (integer, [o.pixel[0] if o.pixel else None for o in outcomes]),
        "pixel_fast": (integer, [o.pixel[1] if o.pixel else None for o in outcomes]),
        "pixel_reason": (text, [o.pixel_reason for o in outcomes]),
        "wall_s": (number, [o.wall_s for o in outcomes]),
        "peak_rss_kb": (integer, [o.peak_rss_kb for o in outcomes]),
        "worker": (text, [o.worker for o in outcomes]),
        "reused": (flag, [o.reused for o in outcomes]),
        "reason": (text, [o.reason for o in outcomes]),
        "error": (text, [o.error for o in outcomes]),
        "bundle": (text, [o.bundle for o in outcomes]),
        "trace_bundle": (text, [o.trace_bundle for o in outcomes]),
        "run_key": (text, [o.run_key for o in outcomes])})
    schema = pa.schema([(name, kind) for name, (kind, _) in columns.items()])
    return pa.Table.from_arrays([pa.array(values, type=kind) for kind, values in columns.values()],
                                schema=schema)


def _copy_source(suite: Suite, staging: Path) -> str | None:
    """The suite file as read, when it still reads the same (its sha256 is suite.json's)."""
    try:
        raw = Path(suite.source).read_bytes()
    except OSError:
        return None
    import hashlib

    if hashlib.sha256(raw).hexdigest() != suite.source_sha256:
        return None
    rel = f"{SOURCE_DIR}/{Path(suite.source).name}"
    (staging / SOURCE_DIR).mkdir()
    (staging / rel).write_bytes(raw)
    return rel


def write_suite_bundle(bundles: Path, suite: Suite, outcomes: Sequence[RunOutcome], *,
                       executor: Mapping, trace: str, created: datetime) -> Path:
    """Write the suite bundle into ``bundles`` (beside its members) and return its path. Nothing
    but a staging directory exists until the final rename; on any failure that is removed."""
    from bundle.suite import crate, matrix, report

    bundles = Path(bundles)
    suite_id = suite_bundle_id(suite.name, suite.source_sha256, created)
    staging = writer.open_staging(bundles, suite_id)
    try:
        data = suite_data(suite, outcomes, suite_id=suite_id, executor=executor, trace=trace,
                          created=created, source_copy=_copy_source(suite, staging))
        (staging / REPORT).write_text(report.report_markdown(data), encoding="utf-8")
        writer.write_tables(staging, {SUITE_PARQUET: suite_table(outcomes)})
        matrix.render_matrix(data["members"], staging / MATRIX_PNG, f"{suite.name}: worst threshold margin")
        crate.write_suite_crate(staging, data, writer.list_files(staging))
        return writer.publish_indexed(staging, bundles, suite_id, SUITE_JSON, data)
    except BaseException:
        writer.discard_staging(staging)
        raise


# --------------------------------------------------------------------------- reading


def is_suite_bundle(path: Path | str) -> bool:
    """A directory holding suite.json (or suite.json itself)."""
    p = Path(path)
    return (p.is_dir() and (p / SUITE_JSON).is_file()) or (p.name == SUITE_JSON and p.is_file())


def suite_root(path: Path | str) -> Path:
    p = Path(path)
    return p.parent if p.name == SUITE_JSON and p.is_file() else p


_MEMBER_FIELDS = ("id", "case", "run", "status")


def load_suite_bundle(path: Path | str) -> dict[str, Any]:
    """suite.json's data, checked for the shape every reader relies on; BundleError (one line)
    when it is missing, unparsable or not a suite."""
    root = suite_root(path)
    where = root / SUITE_JSON
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{where}: missing (is {root} a suite bundle?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(one_line(f"{where}: not readable JSON ({exc})")) from None
    problem = _shape_problem(data)
    if problem:
        raise BundleError(one_line(f"{where}: {problem}"))
    return data


def _shape_problem(data: Any) -> str | None:
    if not isinstance(data, dict) or data.get("kind") != "suite":
        return "not a suite bundle's suite.json (kind is not \"suite\")"
    if data.get("format_version") != SUITE_FORMAT_VERSION:
        return f"format_version {data.get('format_version')!r} is not {SUITE_FORMAT_VERSION}"
    if not isinstance(data.get("name"), str) or not isinstance(data.get("files"), list):
        return "name or files missing"
    members = data.get("members")
    if not isinstance(members, list):
        return "members is not a list"
    for i, m in enumerate(members):
        if not isinstance(m, dict) or not all(isinstance(m.get(k), str) for k in _MEMBER_FIELDS):
            return f"members[{i}] lacks one of {', '.join(_MEMBER_FIELDS)}"
        for key in ("bundle", "trace_bundle"):
            if m.get(key) is not None and not _safe_member_id(m.get(key)):
                return f"members[{i}].{key} {m.get(key)!r} is not a bundle id beside the suite"
    return None


def _safe_member_id(value: Any) -> bool:
    return isinstance(value, str) and is_safe_relpath(value) and "/" not in value


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class MemberCheck:
    """One member bundle of one run: ``role`` "image" or "trace"; ``state`` OK, TAMPERED or
    MISSING; ``detail`` one line saying what differs."""

    run: str
    role: str
    bundle: str
    state: str
    detail: str = ""


@dataclass(frozen=True)
class SuiteVerifyResult:
    """``files``: (path, OK | MISSING | CHANGED | EXTRA) for every suite-bundle file."""

    path: Path
    intact: bool
    files: tuple[tuple[str, str], ...]
    members: tuple[MemberCheck, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"suite": str(self.path), "intact": self.intact,
                "files": [{"path": p, "state": s} for p, s in self.files],
                "members": [m.__dict__ for m in self.members]}


def listed_file_state(root: Path, entry: Any) -> tuple[str, str]:
    """(path, OK | MISSING | CHANGED) of one ``files`` entry (also bisect.json's)."""
    if not isinstance(entry, dict) or not is_safe_relpath(str(entry.get("path", ""))):
        return str(entry.get("path") if isinstance(entry, dict) else entry), "CHANGED"
    path = root.joinpath(*entry["path"].split("/"))
    if not path.is_file() or path.is_symlink():
        return entry["path"], "MISSING" if not path.exists() else "CHANGED"
    size, sha = sha256_file(path)
    same = size == entry.get("size") and sha == entry.get("sha256")
    return entry["path"], "OK" if same else "CHANGED"


def extra_files(root: Path, listed: set[str], index: str = SUITE_JSON) -> list[str]:
    found = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rel != index and rel not in listed:
                found.append(rel)
    return sorted(found)


def check_member(bundles: Path, run: str, role: str, bundle_id: str,
                 manifest_sha256: str | None) -> MemberCheck:
    """One member: present, its manifest the one recorded, and intact by verify_bundle."""
    member = bundles / bundle_id
    if not (member / "manifest.json").is_file():
        return MemberCheck(run, role, bundle_id, "MISSING", f"{member} is gone")
    if file_sha256(member / "manifest.json") != manifest_sha256:
        return MemberCheck(run, role, bundle_id, "TAMPERED",
                           "its manifest.json is not the one suite.json records")
    try:
        result = verify_bundle(member)
    except BundleError as exc:
        return MemberCheck(run, role, bundle_id, "TAMPERED", one_line(exc))
    if result.intact:
        return MemberCheck(run, role, bundle_id, "OK")
    what = [f"{label} {', '.join(names[:2])}" for label, names in
            (("changed", result.changed), ("missing", result.missing), ("extra", result.extra),
             ("manifest", result.schema_problems), ("claims", result.claims)) if names]
    return MemberCheck(run, role, bundle_id, "TAMPERED", one_line("; ".join(what)))


def claim_checks(bundles: Path, entry: Mapping[str, Any],
                 checks: Sequence[MemberCheck]) -> list[MemberCheck]:
    """The entry's figures against its intact members (bundle.suite.claims): one TAMPERED check
    naming the first difference, or nothing."""
    if not checks or any(c.state != "OK" for c in checks):
        return []
    try:
        problems = claim_problems(bundles, entry)
    except (KeyError, TypeError, ValueError) as exc:
        problems = [f"its entry cannot be read ({one_line(exc)})"]
    if not problems:
        return []
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return [MemberCheck(entry["id"], "claims", entry.get("bundle") or "", "TAMPERED",
                        one_line(f"suite.json says {problems[0]}{more}"))]


def verify_suite(path: Path | str) -> SuiteVerifyResult:
    """Every file of the suite bundle against suite.json, and every member bundle."""
    root = suite_root(path)
    data = load_suite_bundle(root)
    files = [listed_file_state(root, entry) for entry in data["files"]]
    files += [(rel, "EXTRA") for rel in extra_files(root, {p for p, _ in files})]
    members = []
    for m in data["members"]:
        checks = [check_member(root.parent, m["id"], role, m[key], m.get(sha_key))
                  for role, key, sha_key in (("image", "bundle", "manifest_sha256"),
                                             ("trace", "trace_bundle", "trace_manifest_sha256"))
                  if m.get(key)]
        members += checks + claim_checks(root.parent, m, checks)
    intact = all(s == "OK" for _, s in files) and all(m.state == "OK" for m in members)
    return SuiteVerifyResult(root, intact, tuple(files), tuple(members))
