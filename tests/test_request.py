"""The capture modes as library decisions: the request record, the in-container argv (a pure
function, checked here without Docker by parsing it with the real capture command), and a dry run
that plans and runs nothing, in either mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from bundle.capture.request import make_request
from bundle.container.inner import BUNDLES, REPO, inner_capture
from bundle.model.errors import UserError
from bundle.pipeline import execute
from cli.app import app

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "manifests" / "minibragg-roi.toml"

# Host-only choices: the mode itself and the host paths the container sees as mounts.
HOST_ONLY = {"in_container", "native", "image", "dry_run", "repo", "bundles", "spec",
             "json_out", "quiet", "target", "c_bin", "c_log"}


def _parse(argv: list[str]) -> dict:
    command = typer.main.get_command(app).commands[argv[0]]
    return command.make_context(argv[0], list(argv[1:])).params


def test_every_capture_option_reaches_the_inner_capture(tmp_path):
    c_bin, c_log = tmp_path / "bin" / "nanoBragg", tmp_path / "logs" / "c.log"
    outer = ["capture", str(SPEC), "--repo", str(ROOT), "--bundles", str(tmp_path / "b"),
             "--c-bin", str(c_bin), "--c-log", str(c_log), "--c-only", "--py-dtype", "float32",
             "--py-device", "cpu", "--c-threads", "3", "--timeout", "12.5", "--keep-scratch",
             "--in-container", "--image", "nb-evidence:cpu", "--dry-run"]
    asked = _parse(outer)
    request = make_request(
        SPEC, repo=ROOT, bundles=tmp_path / "b", c_bin=c_bin, c_log=c_log, c_only=True,
        timeout=12.5, in_container=True, image="nb-evidence:cpu", dry_run=True,
        keep_scratch=True, engine_options={("py", "dtype"): "float32", ("py", "device"): "cpu",
                                           ("c", "threads"): 3})
    argv, mounts = inner_capture(request)
    inner = _parse(argv)
    defaults = _parse(["capture", "x"])
    given = {k for k, v in asked.items() if v != defaults[k]} - HOST_ONLY
    assert given == {"c_only", "py_dtype", "py_device", "c_threads", "timeout", "keep_scratch"}
    for name in given:
        assert inner[name] == asked[name], name
    assert inner["native"] and not inner["in_container"] and not inner["dry_run"]
    assert inner["json_out"] and inner["quiet"]
    assert (str(inner["repo"]), str(inner["bundles"])) == (REPO, BUNDLES)
    assert str(inner["spec"]) == f"{REPO}/manifests/minibragg-roi.toml"
    assert str(inner["c_bin"]) == "/nb-inputs/bin-c/nanoBragg"
    assert str(inner["c_log"]) == "/nb-inputs/log-c/c.log"
    by_target = {m.target: m for m in mounts}
    assert by_target[REPO].source == ROOT and by_target[REPO].read_only
    assert not by_target[BUNDLES].read_only
    assert by_target["/nb-inputs/bin-c"].source == c_bin.parent


def test_without_keep_scratch_the_inner_capture_does_not_keep_it(tmp_path):
    argv, _mounts = inner_capture(make_request(SPEC, repo=ROOT, bundles=tmp_path, in_container=True))
    assert "--keep-scratch" not in argv and "--timeout" not in argv


@pytest.mark.parametrize("flags, message", [
    ({"in_container": True, "native": True}, "--in-container and --native exclude each other"),
    ({"c_only": True, "py_only": True}, "--c-only and --py-only exclude each other"),
    ({"image": "x:y"}, "--image names the image for --in-container"),
    ({"engine_options": {("py", "dtype"): "float16"}}, "--py-dtype float16: must be float32"),
])
def test_contradictory_requests_are_refused(flags, message, tmp_path):
    with pytest.raises(UserError, match=message):
        make_request(SPEC, repo=ROOT, bundles=tmp_path, **flags)


def test_in_container_dry_run_plans_and_runs_nothing(tmp_path):
    request = make_request(SPEC, repo=ROOT, bundles=tmp_path / "b", in_container=True,
                           dry_run=True, keep_scratch=True)
    outcome = execute(request)
    assert outcome.summary is None
    lines = outcome.plan.lines()
    assert lines[0].startswith("# in container nb-evidence:")
    assert any(line.startswith("nb-evidence capture /repo/") and "--keep-scratch" in line
               for line in lines)
    assert any(line.startswith("[run-py]") for line in lines)
    assert not (tmp_path / "b").exists()


def test_cli_in_container_dry_run_needs_no_docker_engine(tmp_path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    proc = subprocess.run([sys.executable, "-m", "cli", "capture", str(SPEC), "--in-container",
                           "--dry-run", "--bundles", str(tmp_path / "b")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "# in container" in proc.stdout and "[run-c]" in proc.stdout
    assert not (tmp_path / "b").exists()


def test_inner_replay_mounts_the_source_and_passes_trust_and_timeout(tmp_path):
    from bundle.container.inner import inner_replay

    manifest = tmp_path / "archive" / "b.json"
    manifest.parent.mkdir()
    manifest.write_text("{}")
    argv, mounts = inner_replay(manifest, ROOT, tmp_path / "out", trust=True, timeout=30.0)
    params = _parse(argv)
    assert str(params["source"]) == "/source/b.json" and params["native"]
    assert params["trust"] and params["timeout"] == 30.0 and params["json_out"]
    assert {m.target: m.source for m in mounts}["/source"] == manifest.parent
