"""A suite on a real Dask LocalCluster (127.0.0.1 only): three runs of the minibragg pair in a
tmp checkout whose PyTorch engine has a fault only one run reaches (the polarization's K term);
that run fails its thresholds and drills down by itself to its first divergence and roots.
Then --resume: unchanged reuses every run; one changed input reruns exactly the runs whose
arguments name it; a changed C source reruns all, each saying which key field changed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bundle.suite.resume import REUSED
from bundle.suite.store import verify_suite
from suite_fixtures import make_repo, write_suite

pytestmark = pytest.mark.xdist_group("suite")


def run_suite_cli(world, *extra: str) -> tuple[int, dict]:
    root = world["root"]
    proc = subprocess.run([sys.executable, "-m", "cli", "suite", str(root / "suite.toml"),
                           "--repo", str(world["repo"]), "--bundles", str(root / "bundles"),
                           "--workers", "2", "--json", *extra],
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite-run")
    world = {"root": root, "repo": make_repo(root, fault=True)}
    write_suite(root / "suite.toml")
    world["first"] = run_suite_cli(world)
    return world


def members(data: dict) -> dict[str, dict]:
    return {m["id"]: m for m in data["members"]}


def test_the_faulty_run_fails_and_drills_down(world):
    code, data = world["first"]
    assert code == 1
    runs = members(data)
    assert {k: m["status"] for k, m in runs.items()} == {"a/d64": "pass", "a/polar": "fail",
                                                        "b/d72": "pass"}
    assert data["summary"] == {"runs": 3, "passed": 2, "failed": 1, "errors": 0, "reused": 0}
    bad = runs["a/polar"]
    assert bad["failed"] and bad["metrics"]["corr"] is not None
    assert bad["trace_bundle"] and bad["trace_bundle"] != bad["bundle"]
    assert bad["first_divergence"] == "polar" and "polar" in bad["roots"]
    assert bad["pixel_reason"].startswith("largest |py - c|")
    # a passing run without a pixel is not traced; one with its own is traced in its one member
    assert runs["a/d64"]["trace_bundle"] is None and runs["a/d64"]["verdict"] is None
    assert runs["b/d72"]["pixel"] == [30, 30] and runs["b/d72"]["trace_bundle"] is None
    assert runs["b/d72"]["verdict"] == "parity"
    assert data["executor"]["kind"] == "local" and data["executor"]["workers"] == 2


def test_the_suite_and_every_member_verify(world):
    _code, data = world["first"]
    bundles = world["root"] / "bundles"
    result = verify_suite(bundles / data["suite_id"])
    assert result.intact, result.to_dict()
    assert len(result.members) == 4  # three image members and one drill-down member
    staging = bundles / ".staging"
    assert not staging.exists() or not [p for p in staging.iterdir() if p.suffix != ".lock"]


def test_resume_unchanged_reuses_every_run(world):
    code, data = run_suite_cli(world, "--resume")
    assert code == 1  # the failing run is reused as failing
    runs = members(data)
    assert all(m["reused"] and m["reason"] == REUSED for m in runs.values()), runs
    first = members(world["first"][1])
    assert {k: m["bundle"] for k, m in runs.items()} == {k: m["bundle"] for k, m in first.items()}
    assert runs["a/polar"]["first_divergence"] == "polar"


def test_resume_reruns_exactly_what_changed(world):
    repo = world["repo"]
    with open(repo / "B.mat", "a") as fh:  # only case b's arguments name B.mat
        fh.write("\n")
    _code, data = run_suite_cli(world, "--resume")
    runs = members(data)
    assert [k for k, m in runs.items() if not m["reused"]] == ["b/d72"]
    assert runs["b/d72"]["reason"] == "inputs changed" and runs["b/d72"]["status"] == "pass"

    with open(repo / "minibragg" / "minibragg.c", "a") as fh:
        fh.write("/* a changed C source */\n")
    _code, data = run_suite_cli(world, "--resume")
    runs = members(data)
    assert all(not m["reused"] and m["reason"] == "engine c changed" for m in runs.values()), runs
    assert runs["a/polar"]["status"] == "fail" and runs["a/polar"]["first_divergence"] == "polar"
