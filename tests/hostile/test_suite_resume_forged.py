"""--resume reads earlier suite bundles' suite.json to find members to reuse: someone else's
file. A forged suite.json must not turn a failing run into a passing one, nor lend one run's
member to another: the reused figures come from the member's own (verified) manifest, and a
member whose arguments are not the run's is rerun."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bundle.suite.resume import MISMATCH
from suite_fixtures import make_repo, write_suite

pytestmark = pytest.mark.xdist_group("suite")


def _suite(root: Path, repo: Path, *extra: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "cli", "suite", str(root / "suite.toml"),
                           "--repo", str(repo), "--bundles", str(root / "bundles"), "--only", "a",
                           "--workers", "1", "--json", *extra],
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout)


def _forge(root: Path, data: dict, edit) -> None:
    """A newer suite bundle holding only a forged suite.json (resume reads the newest first)."""
    forged = json.loads(json.dumps(data))
    forged.pop("suite_bundle", None)
    edit({m["id"]: m for m in forged["members"]})
    where = root / "bundles" / ("99991231T235959Z-suite-t-forged000")
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir()
    (where / "suite.json").write_text(json.dumps(forged))


def test_a_forged_suite_json_cannot_pass_a_failing_run_or_lend_a_member(tmp_path):
    repo = make_repo(tmp_path, fault=True)
    write_suite(tmp_path / "suite.toml")
    code, first = _suite(tmp_path, repo)
    runs = {m["id"]: m for m in first["members"]}
    assert code == 1 and runs["a/polar"]["status"] == "fail"

    def passing(members):  # the failing run claimed as passing, same key, same member
        members["a/polar"].update(status="pass", failed=[], first_divergence=None, roots=[],
                                  metrics={**members["a/polar"]["metrics"], "corr": 1.0,
                                           "sum_ratio": 1.0})
    _forge(tmp_path, first, passing)
    code, again = _suite(tmp_path, repo, "--resume")
    polar = {m["id"]: m for m in again["members"]}["a/polar"]
    assert code == 1 and polar["reused"] and polar["status"] == "fail"
    assert polar["metrics"] == runs["a/polar"]["metrics"] and polar["first_divergence"] == "polar"

    def lent(members):  # a/polar's key pointing at a/d64's (intact) member
        d64 = members["a/d64"]
        members["a/polar"].update(bundle=d64["bundle"], manifest_sha256=d64["manifest_sha256"],
                                  trace_bundle=None, trace_manifest_sha256=None, status="pass",
                                  failed=[], metrics=d64["metrics"])
    _forge(tmp_path, first, lent)
    code, third = _suite(tmp_path, repo, "--resume")
    polar = {m["id"]: m for m in third["members"]}["a/polar"]
    assert code == 1 and not polar["reused"] and polar["status"] == "fail"
    assert polar["reason"] == f"{MISMATCH}: its arguments are not this run's"
