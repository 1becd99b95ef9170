"""diff and gate on two real suites (issue 14): the small suite of tests/suite_fixtures.py run on
a clean minibragg checkout and on one with the polarization fault, matched by case and run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from suite_fixtures import make_repo, write_suite

pytestmark = pytest.mark.xdist_group("suite")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("diff-suite")
    suite = write_suite(root / "suite.toml")
    world = {"root": root, "suite": suite, "ok": make_repo(root / "ok"),
             "bad": make_repo(root / "bad", fault=True)}
    for side in ("ok", "bad"):
        proc = _cli("suite", str(suite), "--repo", str(world[side]), "--bundles",
                    str(root / "bundles"), "--workers", "1", "--json", cwd=root)
        assert proc.returncode in (0, 1), proc.stderr[-3000:]
        world[f"{side}_suite"] = Path(json.loads(proc.stdout)["suite_bundle"])
    return world


def test_two_suites(world):
    ok_suite, bad_suite = world["ok_suite"], world["bad_suite"]
    proc = _cli("diff", str(ok_suite), str(bad_suite), "--json", cwd=world["root"])
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["kind"] == "suite" and [r["name"] for r in data["regressions"]] == ["a/polar"]
    runs = {r["id"]: r for r in data["runs"]}
    # b/bad is the fixture's run with a bad argument: an error on both sides, not a regression
    assert set(runs) == {"a/d64", "a/polar", "b/d72", "b/bad"}
    assert (runs["b/bad"]["status"]["before"], runs["b/bad"]["status"]["after"]) == ("error", "error")
    assert runs["a/polar"]["first_divergence"]["after"] == "polar"
    assert runs["a/d64"]["status"] == {**runs["a/d64"]["status"], "before": "pass", "after": "pass"}
    back = _cli("diff", str(bad_suite), str(ok_suite), cwd=world["root"])
    assert back.returncode == 0, back.stderr
    bundle = next(p for p in (world["root"] / "bundles").iterdir() if (p / "manifest.json").is_file())
    mixed = _cli("diff", str(ok_suite), str(bundle), cwd=world["root"])
    assert mixed.returncode == 2 and mixed.stderr.count("\n") == 1 and "is a suite" in mixed.stderr


def test_gate_on_a_suite(world):
    ok_suite = world["ok_suite"]
    passed = _cli("gate", str(ok_suite), "--repo", str(world["ok"]), "--bundles",
                  str(world["root"] / "gate"), cwd=world["root"])
    assert passed.returncode == 0, passed.stderr
    assert (Path(passed.stdout.strip()) / "suite.json").is_file()
    failed = _cli("gate", str(ok_suite), "--suite", str(world["suite"]), "--repo", str(world["bad"]),
                  "--bundles", str(world["root"] / "gate"), cwd=world["root"])
    assert failed.returncode == 1, failed.stderr
    assert "regressed: a/polar: pass → fail" in failed.stderr
