"""``attach`` of a suite bundle: ONE attempt entry in the ledger summarizing the whole suite
(passes, failures, and per failing run its first divergence), in the ledger's own format
(bundle.ledger.fixplan), inserted by fixplan's insertion so every other byte stays as it was.

As a capture's entry records its manifest's sha256, a suite's records the sha256 of suite.json,
which pins every member's manifest sha256 in turn.
"""

from __future__ import annotations

from datetime import date as Date
from pathlib import Path
from typing import Any, Mapping

from bundle.ledger import fixplan
from bundle.model import files
from bundle.model.errors import BundleError, UserError
from bundle.model.hashing import sha256_file
from bundle.present.vocabulary import FIRST_DIVERGENCE_AT, PARITY, PARITY_FAILURE, one_line
from bundle.store.archive import display_path
from bundle.suite import vocabulary as words
from bundle.suite.model import THRESHOLD_METRICS
from bundle.suite.store import SUITE_JSON, load_suite_bundle, suite_root, verify_suite

SUITE_DIGEST_LABEL = "suite.json sha256"


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
    if m.get("first_divergence"):
        bits.append(f"{FIRST_DIVERGENCE_AT} {m['first_divergence']}")
        if m.get("roots"):
            bits.append(f"(roots: {words.roots_text(m['roots'])})")
    else:
        bits.append("no traced divergence")
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
        *([f"      - {_observation(m)}" for m in failing] or ["      - every run passes its thresholds"]),
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
