"""The upstream YAML fixture (tests/fixtures/parity_cases.yaml), read as it is, run on a
LocalCluster against the nanobragg-layout fixture checkout: its runs read A.mat and scaled.hkl
from the checkout's root, which the member specs take as inputs (the files the args name)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from test_nanobragg_target import _checkout

pytestmark = pytest.mark.xdist_group("suite")
YAML = Path(__file__).resolve().parent / "fixtures" / "parity_cases.yaml"


def test_the_yaml_matrix_runs_against_a_nanobragg_checkout(tmp_path):
    repo = _checkout(tmp_path)
    bundles = tmp_path / "bundles"
    proc = subprocess.run([sys.executable, "-m", "cli", "suite", str(YAML), "--repo", str(repo),
                           "--bundles", str(bundles), "--only", "beam-centre", "--workers", "2",
                           "--json"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert data["target"] == "nanobragg" and data["source"]["format"] == "yaml"
    assert [(m["id"], m["status"]) for m in data["members"]] == [
        ("beam-centre/offset-x", "pass"), ("beam-centre/offset-y", "pass")]
    manifest = json.loads((bundles / data["members"][0]["bundle"] / "manifest.json").read_text())
    assert manifest["spec"]["inputs"]["files"] == ["A.mat", "scaled.hkl"]
    assert {i["path"] for i in manifest["inputs"]} == {"A.mat", "scaled.hkl"}
    assert manifest["spec"]["args"][-2:] == ["-floatfile", "image.bin"]
