"""Replay's verdict (issue 11): a re-run engine that prints no trace, or another one, is exit 1
NOT REPRODUCED with the table, never exit 2. And --trust, which runs a custom profile's
commands, is recorded in the new manifest and report. Real tiny engines, real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from test_capture import make_repo
from trust_replay_helpers import bundles_in, nb


def _captured(tmp_path: Path) -> tuple[Path, Path]:
    repo = make_repo(tmp_path)
    proc = nb("capture", "spec.toml", "--repo", ".", "--bundles", str(tmp_path / "b"), "-q", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    [bundle] = bundles_in(tmp_path / "b")
    return repo, bundle


@pytest.mark.parametrize("change, detail", [
    (("if s == ts and f == tf:", "if False:"), "the replay printed no trace"),
    (('print("TRACE_PY: ', 'print("TRACE_XY: '), "the replay printed no trace"),
])
def test_engine_without_our_trace_is_not_reproduced_exit_1(tmp_path, change, detail):
    repo, original = _captured(tmp_path)
    py = repo / "tiny.py"
    text = py.read_text()
    assert change[0] in text
    py.write_text(text.replace(*change))
    proc = nb("replay", str(original), "--trust", "--bundles", str(tmp_path / "r"), cwd=repo)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "NOT REPRODUCED" in proc.stdout and detail in proc.stdout
    assert "engine" in proc.stdout and "verdict" in proc.stdout  # the table, not just a word
    proc = nb("replay", str(original), "--trust", "--json", "--bundles", str(tmp_path / "r2"), cwd=repo)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    py_trace = next(o for o in out["outputs"] if (o["engine"], o["output"]) == ("py", "trace"))
    assert out["reproduced"] is False and py_trace["verdict"] == "differs"
    c_trace = next(o for o in out["outputs"] if (o["engine"], o["output"]) == ("c", "trace"))
    assert c_trace["verdict"] == "identical"


def test_trust_is_recorded_in_the_new_manifest_and_report(tmp_path):
    repo, original = _captured(tmp_path)
    proc = nb("replay", str(original), "--bundles", str(tmp_path / "r"), cwd=repo)
    assert proc.returncode == 2 and "--trust" in proc.stderr  # a custom profile is foreign
    proc = nb("replay", str(original), "--trust", "--bundles", str(tmp_path / "r"), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "trusted" in proc.stdout and "REPRODUCED" in proc.stdout
    [new] = bundles_in(tmp_path / "r")
    manifest = json.loads((new / "manifest.json").read_text())
    assert manifest["trusted"] is True and manifest["replay_of"] == original.name
    assert "--trust" in (new / "report.md").read_text()
    assert nb("verify", str(new), cwd=repo).returncode == 0


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_replay_timeout_that_is_no_limit_is_one_line_exit_2(tmp_path, value):
    proc = subprocess.run([sys.executable, "-m", "cli", "replay", str(tmp_path / "no-bundle"),
                           "--timeout", value], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--timeout" in proc.stderr, proc.stderr
