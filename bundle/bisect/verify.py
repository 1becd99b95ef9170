"""``nb-evidence verify BISECT_BUNDLE``: every file against bisect.json, every probed commit's
member bundle (its manifest the one bisect.json records, and intact by its own verify), and each
probe row's claims (verdict, predicate value) judged again from that member's manifest and
comparison table, so an edited bisect.json cannot move the first bad commit."""

from __future__ import annotations

import json
from pathlib import Path

from bundle.bisect.predicate import Predicate, judge
from bundle.diff.load import comparison_rows
from bundle.model.errors import BundleError
from bundle.model.files import one_line
from bundle.suite.store import (MemberCheck, SuiteVerifyResult, check_member, extra_files,
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
    if all(m.state == "OK" for m in members):
        members += probe_claims(root.parent, data)
    intact = all(s == "OK" for _, s in files) and all(m.state == "OK" for m in members)
    return SuiteVerifyResult(root, intact, tuple(files), tuple(members))


def _key_rows(member: Path, key: str | None) -> list[dict]:
    """KEY's rows of the member's comparison table, as the probe judged them."""
    if key is None:
        return []
    return [r for r in comparison_rows(member) or () if r["key"] == key]


def probe_claims(bundles: Path, data: dict) -> list[MemberCheck]:
    """A TAMPERED check for each probe row whose verdict or value is not what its member says."""
    try:
        predicate = Predicate(data["predicate"]["kind"], data["predicate"].get("key"))
    except (KeyError, TypeError):
        return [MemberCheck("predicate", "claims", "", "TAMPERED", "bisect.json has no predicate")]
    out = []
    for probe in data.get("probes") or ():
        member = probe.get("bundle_id")
        if not isinstance(member, str) or member not in data["members"]:
            continue
        summary = json.loads((bundles / member / "manifest.json").read_text())["result"]
        judged = judge(predicate, summary, _key_rows(bundles / member, predicate.key))
        said = (probe.get("verdict"), probe.get("value"))
        if said != (summary.get("verdict"), judged.value):
            out.append(MemberCheck(str(probe.get("sha", ""))[:10], "claims", member, "TAMPERED",
                                   one_line(f"bisect.json says {said[1]} ({said[0]}); its member "
                                            f"says {judged.value} ({summary.get('verdict')})")))
    return out
