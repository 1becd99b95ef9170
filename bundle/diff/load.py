"""``diff_paths(a, b)``: the diff's only I/O. Each side is verified first (a bundle must be
intact; a suite's suite.json must be one), then read: the manifest and comparison.parquet's
key columns of a bundle, or a bare manifest (an archived ``manifests/archive/<id>.json``, which
holds no tables: its keys come from the manifest's min_rtol), or a suite's suite.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bundle.diff.compare import diff_bundles
from bundle.diff.model import BundleDiff, SuiteDiff
from bundle.diff.suites import diff_suites
from bundle.model.errors import BundleError, UserError
from bundle.store.schema import load_manifest, read_manifest
from bundle.store.verify import require_intact

SUITE_FILE = "suite.json"
_KEY_COLUMNS = ["key", "status", "ratio", "rel_diff"]


def kind_of(path: Path) -> str:
    """"suite", "bundle" or "manifest" (a bare manifest file); one line naming it otherwise."""
    if path.is_dir() and (path / SUITE_FILE).is_file():
        return "suite"
    if path.is_dir():
        return "bundle"
    if path.is_file():
        return "manifest"
    raise UserError(f"{path}: no such bundle, suite or manifest")


def load_suite(path: Path) -> dict[str, Any]:
    """A suite bundle's suite.json, through bundle.suite.store when it exists."""
    try:
        from bundle.suite import store  # type: ignore[attr-defined]
    except ImportError:  # the suite bundle's writer is not in this checkout: read it plainly
        store = None
    if store is not None:
        return store.load_suite_bundle(path)
    try:
        data = json.loads((path / SUITE_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path / SUITE_FILE}: not readable as a suite ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != "suite":
        raise BundleError(f"{path / SUITE_FILE}: not a suite (no \"kind\": \"suite\")")
    return data


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
