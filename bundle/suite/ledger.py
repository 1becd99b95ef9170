"""``attach`` of a suite bundle: ONE attempt entry in the ledger summarizing the whole suite
(passes, failures, and per failing run its first divergence), in the ledger's own format
(bundle.ledger.fixplan), inserted by fixplan's insertion so every other byte stays as it was.

As a capture's entry records its manifest's sha256, a suite's records the sha256 of suite.json,
which pins every member's manifest sha256 in turn.
"""

from __future__ import annotations

import re
from datetime import date as Date
from pathlib import Path
from typing import Any, Mapping

from bundle.ledger import fixplan
from bundle.model import files
from bundle.model.errors import BundleError, UserError
from bundle.model.hashing import sha256_file
from bundle.present.vocabulary import PARITY, PARITY_FAILURE, one_line
from bundle.store.archive import display_path
from bundle.suite import vocabulary as words
from bundle.suite.model import THRESHOLD_METRICS
from bundle.suite.store import SUITE_JSON, load_suite_bundle, suite_root, verify_suite

SUITE_DIGEST_LABEL = "suite.json sha256"
_SUITE_DIGEST = re.compile(r"`([^`\r\n]+)/suite\.json` - .*; suite\.json sha256 `([0-9a-f]{64})`")


def ledger_suite_digests(text: str) -> list[tuple[str, str]]:
    """(suite bundle path as written, suite.json sha256) for every suite attempt. Pure."""
    return [(m.group(1), m.group(2)) for m in _SUITE_DIGEST.finditer(text)]


def check_ledger_suite(ledger: Path, path: str, recorded: str) -> fixplan.LedgerBundle:
    """A suite the ledger references: suite.json the one recorded, and the suite (every member
    included) intact."""
    from bundle.store.archive import find_repo_root

    bases = [b for b in (find_repo_root(ledger.parent), ledger.parent, Path.cwd()) if b is not None]
    where = Path(path) if Path(path).is_absolute() else next(
        (b / path for b in bases if (b / path / SUITE_JSON).is_file()), bases[0] / path)
    try:
        actual = sha256_file(where / SUITE_JSON)[1]
    except OSError:
        return fixplan.LedgerBundle(path, recorded, None, None, f"{path}/{SUITE_JSON}: missing")
    if actual != recorded:
        return fixplan.LedgerBundle(path, recorded, actual, None, f"{path}/{SUITE_JSON}: sha256 "
                                    f"{actual[:12]}… is not the {recorded[:12]}… the ledger recorded")
    try:
        intact = verify_suite(where).intact
    except BundleError as exc:
        return fixplan.LedgerBundle(path, recorded, actual, False, one_line(exc))
    return fixplan.LedgerBundle(path, recorded, actual, intact,
                                None if intact else f"{path}: suite bundle not intact")


def verify_ledger_suites(fix_plan: Path | str) -> list[fixplan.LedgerBundle]:
    """Every suite bundle the ledger references by suite.json digest, checked."""
    fix_plan = Path(fix_plan)
    text = files.decode_utf8(files.read_bytes(fix_plan, "ledger file", UserError), fix_plan,
                             "ledger file", UserError)
    return [check_ledger_suite(fix_plan, p, d) for p, d in ledger_suite_digests(text)]


def _failure_text(m: Mapping[str, Any]) -> str:
    """``case/run (corr_min: corr 0.998, required ≥ 0.9999)`` or ``case/run (error: ...)``."""
    if m.get("status") == "error":
        return f"{m['id']} (error: {one_line(str(m.get('error') or 'no image'), 120)})"
    metrics = m.get("metrics") or {}
    why = [words.threshold_line(n, metrics.get(THRESHOLD_METRICS[n][0]), m["thresholds"][n])
           for n in m.get("failed") or () if n in THRESHOLD_METRICS and n in (m.get("thresholds") or {})]
    return f"{m['id']} ({'; '.join(why)})" if why else m["id"]


def _observation(m: Mapping[str, Any]) -> str:
    bits = [f"{m['id']}:"]
    bits.append(words.divergence_text(m))
    if m.get("first_divergence") and m.get("roots"):
        bits.append(f"(roots: {words.roots_text(m['roots'])})")
    if m.get("pixel"):
        bits.append(f"at pixel {words.pixel_text(m['pixel'], '')}")
    text = " ".join(bits)
    member = m.get("trace_bundle") or m.get("bundle")
    if member:
        text += f"; member bundle `{member}`"
    return one_line(text, 240)


def suite_attempt_entry(data: Mapping[str, Any], attempt_no: int, date: str, owner: str,
                        suite_path: str, suite_sha256: str) -> str:
    """The attempt entry (pure), '\\n'-terminated; its first line names the suite bundle id."""
    summary = data["summary"]
    failing = [m for m in data["members"] if m.get("status") != "pass"]
    word = PARITY if not failing else PARITY_FAILURE
    lines = [
        f"  * [{date}] Attempt #{attempt_no} ({owner}) — Result: **{word}** ({words.summary_line(summary)}). "
        f"nb-evidence bundle `{data['suite_id']}` (suite {data['name']}, target {data.get('target')}, "
        f"{summary['runs']} runs).",
        f"    Metrics: passes {summary['passed']} of {summary['runs']}"
        + (f"; failures: {'; '.join(_failure_text(m) for m in failing)}" if failing else "") + ".",
        "    Artifacts:",
        f"      - `{suite_path}/` - nb-evidence suite bundle {data['suite_id']}; check it and every "
        f"member with `nb-evidence verify {suite_path}`",
        f"      - `{suite_path}/report.md` - the matrix and each failing run's drill-down",
        f"      - `{suite_path}/{SUITE_JSON}` - the record: the suite file and its sha256, every member's "
        f"manifest sha256 and run key; {SUITE_DIGEST_LABEL} `{suite_sha256}`",
        "    Observations/Hypotheses:",
        *([f"      - {_observation(m)}" for m in failing] or [f"      - {words.ALL_PASS}"]),
        "    Next Actions: (fill in)",
    ]
    return "\n".join(lines) + "\n"


def attach_suite(suite_dir: Path | str, fix_plan: Path | str, item: str, owner: str,
                 dry_run: bool = False, today: Date | None = None) -> fixplan.AttachResult:
    """Log an intact suite bundle as the newest attempt of ``item`` (fixplan.attach's rules:
    an item that already mentions the suite id gets nothing written)."""
    root, fix_plan = suite_root(suite_dir), Path(fix_plan)
    checked = verify_suite(root)
    if not checked.intact:
        raise BundleError(f"{root}: suite bundle is not intact; see `nb-evidence verify {root}`")
    data = load_suite_bundle(root)
    raw = files.read_bytes(fix_plan, "ledger file", UserError)
    text = files.decode_utf8(raw, fix_plan, "ledger file", UserError)
    ledger = fixplan.parse_ledger(text)
    it = ledger.item(item)
    if it is None:
        raise UserError(fixplan.unknown_item_message(str(fix_plan), item, ledger))
    suite_id = data["suite_id"]
    found = ledger.attempt_containing(it, suite_id)
    if found is None and suite_id in ledger.section_text(it):
        found = (0, "")
    if found is not None:
        return fixplan.AttachResult(fix_plan, it.id, suite_id, found[1], found[0], False, True, dry_run)
    attempt_no = it.next_attempt
    entry = suite_attempt_entry(data, attempt_no, (today or Date.today()).isoformat(), owner,
                                display_path(root, fix_plan.parent), sha256_file(root / SUITE_JSON)[1])
    new_text, _ = fixplan.insert_attempt(text, it.id, entry, bundle_id=suite_id, source=str(fix_plan))
    if not dry_run:
        fixplan.write_atomic(fix_plan, new_text.encode("utf-8"), expect=raw)
    return fixplan.AttachResult(fix_plan, it.id, suite_id, entry, attempt_no, not dry_run, False, dry_run)
