"""``diff_paths(a, b)``: the diff's only I/O. Each side is verified first (a bundle must be
intact; a suite's suite.json must be one), then read: the manifest and comparison.parquet's
key columns of a bundle, or a bare manifest (an archived ``manifests/archive/<id>.json``, which
holds no tables: its keys come from the manifest's min_rtol), or a suite bundle's suite.json
(bundle.suite.store: the suite's files and every member bundle verified)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bundle.diff.compare import diff_bundles
from bundle.diff.model import BundleDiff, SuiteDiff
from bundle.diff.suites import diff_suites
from bundle.model.errors import BundleError, UserError
from bundle.store.schema import load_manifest, read_manifest
from bundle.store.verify import require_intact
from bundle.suite.store import is_suite_bundle, load_suite_bundle, verify_suite

_KEY_COLUMNS = ["key", "status", "ratio", "rel_diff"]


def kind_of(path: Path) -> str:
    """"suite", "bundle" or "manifest" (a bare manifest file); one line naming it otherwise."""
    if is_suite_bundle(path):
        return "suite"
    if path.is_dir():
        return "bundle"
    if path.is_file():
        return "manifest"
    raise UserError(f"{path}: no such bundle, suite or manifest")


def load_suite(path: Path) -> dict[str, Any]:
    """A suite bundle's suite.json, after the suite and every member bundle verified intact."""
    checked = verify_suite(path)
    if not checked.intact:
        bad = [f"{p} {s}" for p, s in checked.files if s != "OK"]
        bad += [f"member {m.bundle} of {m.run} {m.state}" for m in checked.members if m.state != "OK"]
        raise BundleError(f"{checked.path}: suite is not intact ({'; '.join(bad[:3])}); "
                          "see `nb-evidence verify`")
    return load_suite_bundle(path)


def comparison_rows(bundle: Path) -> list[dict[str, Any]] | None:
    path = bundle / "comparison.parquet"
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=_KEY_COLUMNS).to_pylist()


def load_side(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """A bundle's (manifest, comparison rows), verified; a bare manifest's (manifest, None)."""
    if kind_of(path) == "bundle":
        require_intact(path)  # validates the manifest against the schema: no second validation
        return read_manifest(path), comparison_rows(path)
    return load_manifest(path), None


def diff_paths(a: Path | str, b: Path | str) -> BundleDiff | SuiteDiff:
    """A (before) against B (after): two bundles (or archived manifests), or two suites."""
    a, b = Path(a), Path(b)
    ka, kb = kind_of(a), kind_of(b)
    if (ka == "suite") != (kb == "suite"):
        raise UserError(f"{a if ka == 'suite' else b} is a suite and "
                        f"{b if ka == 'suite' else a} is a bundle: diff two bundles or two suites")
    if ka == "suite":
        return diff_suites(load_suite(a), load_suite(b))
    (ma, ra), (mb, rb) = load_side(a), load_side(b)
    return diff_bundles(ma, mb, ra, rb)
