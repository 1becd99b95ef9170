"""diff and gate on hostile input (issue 14): a tampered bundle, a suite.json that is not one, a
bundle against a suite, a --md file in a missing directory, and a gate baseline whose manifest
carries a foreign prepare command (refused before anything runs: the canary stays untouched).
Each gives one line and exit 2, and writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from trust_replay_helpers import bundles_in, capture_roi, nb, one_error_line

pytestmark = pytest.mark.xdist_group("capture")


@pytest.fixture(scope="module")
def roi(tmp_path_factory) -> Path:
    return capture_roi(tmp_path_factory.mktemp("roi"))


def _refused(proc, *words: str) -> str:
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    for w in words:
        assert w in line, line
    return line


def test_tampered_bundle_is_refused(roi, tmp_path):
    copy = tmp_path / roi.name
    shutil.copytree(roi, copy)
    with open(copy / "logs" / "run-py.stdout", "ab") as fh:
        fh.write(b"TRACE_PY: polar 0.5\n")
    _refused(nb("diff", str(roi), str(copy), cwd=tmp_path), "not intact")
    _refused(nb("gate", str(copy), "--bundles", str(tmp_path / "b"), cwd=tmp_path), "not intact")
    assert bundles_in(tmp_path / "b") == []


def test_suite_json_that_is_not_a_suite(roi, tmp_path):
    for i, text in enumerate(("[1, 2]", "{\"kind\": \"bundle\"}", "not json {")):
        suite = tmp_path / f"s{i}"
        suite.mkdir()
        (suite / "suite.json").write_text(text)
        other = tmp_path / f"t{i}"
        shutil.copytree(suite, other)
        _refused(nb("diff", str(suite), str(other), cwd=tmp_path), "suite.json")
        _refused(nb("diff", str(roi), str(suite), cwd=tmp_path), "is a suite")


def test_md_into_a_missing_directory(roi, tmp_path):
    _refused(nb("diff", str(roi), str(roi), "--md", str(tmp_path / "no" / "d.md"), cwd=tmp_path),
             "--md")
    assert not (tmp_path / "no").exists()


def test_gate_refuses_a_foreign_prepare_command(roi, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    canary = victim / "precious.txt"
    canary.write_text("the user's data\n")
    data = json.loads((roi / "manifest.json").read_text())
    data["spec"]["inputs"]["prepare"] = ["rm", "-f", str(canary)]
    data["spec"]["source"]["sha256"] = "0" * 64  # no shipped spec has it
    archived = tmp_path / "manifests" / "archive" / "forged.json"
    archived.parent.mkdir(parents=True)
    archived.write_text(json.dumps(data))
    _refused(nb("gate", str(archived), "--bundles", str(tmp_path / "b"), cwd=tmp_path),
             "prepare command", "--capture SPEC")
    assert canary.read_text() == "the user's data\n" and bundles_in(tmp_path / "b") == []
