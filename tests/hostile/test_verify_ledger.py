"""`attach` pins the manifest by its sha256 in the ledger; `verify --ledger` checks every bundle
the ledger references by that digest (issue 11). Real captures, a real ledger file."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from test_capture import make_repo
from trust_replay_helpers import bundles_in, nb

LEDGER = "# Fix plan\n\n## [TINY-001] Tiny parity\n- Status: open\n- Attempts History:\n"


def _attached(tmp_path: Path) -> tuple[Path, Path]:
    repo = make_repo(tmp_path)
    docs = repo / "docs"
    docs.mkdir()
    ledger = docs / "fix_plan.md"
    ledger.write_text(LEDGER)
    proc = nb("capture", "spec.toml", "--repo", ".", "--bundles", "bundles", "-q", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    [bundle] = bundles_in(repo / "bundles")
    proc = nb("attach", str(bundle), "--fix-plan", str(ledger), "--item", "TINY-001", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    return bundle, ledger


def test_attach_records_the_manifest_digest_and_verify_ledger_checks_it(tmp_path):
    bundle, ledger = _attached(tmp_path)
    digest = hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
    assert f"manifest sha256 `{digest}`" in ledger.read_text()
    proc = nb("verify", "--ledger", str(ledger), "--json", cwd=ledger.parent.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["intact"] is True
    [entry] = out["bundles"]
    assert entry["recorded_sha256"] == entry["actual_sha256"] == digest and entry["intact"] is True


def test_a_manifest_rewritten_after_attach_is_tampered(tmp_path):
    bundle, ledger = _attached(tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["notes"].append("nothing to see here")  # schema-valid, claims-neutral: only the digest knows
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))
    assert nb("verify", str(bundle), cwd=tmp_path).returncode == 0
    proc = nb("verify", "--ledger", str(ledger), cwd=tmp_path)
    assert proc.returncode == 1
    assert "TAMPERED" in proc.stdout and "manifest.json: sha256" in proc.stdout


def test_a_bundle_gone_or_changed_behind_the_ledger_is_reported(tmp_path):
    bundle, ledger = _attached(tmp_path)
    log = next((bundle / "logs").glob("run-py.stdout"))
    log.write_text(log.read_text() + "TRACE_PY: extra 1\n")
    proc = nb("verify", "--ledger", str(ledger), "--json", cwd=tmp_path)
    assert proc.returncode == 1
    [entry] = json.loads(proc.stdout)["bundles"]
    assert entry["intact"] is False and "logs/run-py.stdout" in entry["problem"]
    shutil.rmtree(bundle)
    proc = nb("verify", "--ledger", str(ledger), "--json", cwd=tmp_path)
    assert proc.returncode == 1
    [entry] = json.loads(proc.stdout)["bundles"]
    assert entry["actual_sha256"] is None and "missing" in entry["problem"]


def test_verify_needs_exactly_one_of_bundle_and_ledger(tmp_path):
    for args in ((), (str(tmp_path), "--ledger", str(tmp_path / "fix_plan.md"))):
        proc = nb("verify", *args, cwd=tmp_path)
        assert proc.returncode == 2 and "--ledger" in proc.stderr and "Traceback" not in proc.stderr
    proc = nb("verify", "--ledger", str(tmp_path / "nope.md"), cwd=tmp_path)
    assert proc.returncode == 2 and "nope.md" in proc.stderr
