"""``nb-evidence verify BISECT_BUNDLE``: every file against bisect.json, and every probed commit's
member bundle (its manifest the one bisect.json records, and intact by its own verify)."""

from __future__ import annotations

import json
from pathlib import Path

from bundle.model.errors import BundleError
from bundle.model.files import one_line
from bundle.suite.store import (SuiteVerifyResult, check_member, extra_files,
                                listed_file_state)

BISECT_JSON = "bisect.json"


def is_bisect_bundle(path: Path | str) -> bool:
    return (Path(path) / BISECT_JSON).is_file()


def load_bisect_bundle(path: Path | str) -> dict:
    where = Path(path) / BISECT_JSON
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{where}: not readable JSON ({one_line(exc)})") from None
    if not isinstance(data, dict) or data.get("kind") != "bisect" \
            or not isinstance(data.get("files"), list) or not isinstance(data.get("members"), list):
        raise BundleError(f"{where}: not a bisect bundle's bisect.json")
    return data


def verify_bisect(path: Path | str) -> SuiteVerifyResult:
    """The same shape of answer as a suite's (files, then members by probed commit)."""
    root = Path(path).resolve()
    data = load_bisect_bundle(root)
    files = [listed_file_state(root, entry) for entry in data["files"]]
    files += [(rel, "EXTRA") for rel in extra_files(root, {p for p, _ in files}, BISECT_JSON)]
    manifests = data.get("member_manifests") or {}
    commit = {p.get("bundle_id"): p.get("sha", "")[:10] for p in data.get("probes", [])}
    members = [check_member(root.parent, commit.get(m, "?"), "probe", m, manifests.get(m))
               for m in data["members"] if isinstance(m, str)]
    intact = all(s == "OK" for _, s in files) and all(m.state == "OK" for m in members)
    return SuiteVerifyResult(root, intact, tuple(files), tuple(members))
