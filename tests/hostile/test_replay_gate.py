"""Replay runs only what this checkout would run (issue 11): a real capture of the built-in
minibragg target, its manifest rewritten as a hostile user would, replayed for real. Every
refusal is checked by a canary the foreign command would have touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trust_replay_helpers import REPO_ROOT, bundles_in, capture_roi, forge, nb, one_error_line


@pytest.fixture(scope="module")
def roi(tmp_path_factory) -> Path:
    return capture_roi(tmp_path_factory.mktemp("roi"))


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("the user's data\n")
    return victim


def _set_prepare(argv: list[str]):
    def edit(m: dict) -> None:
        m["spec"]["inputs"]["prepare"] = argv
        m["arguments"]["templates"]["prepare-inputs"] = argv
    return edit


def _refused(proc, tmp_path: Path, *words: str) -> str:
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert "refusing to replay without --trust" in line
    for w in words:
        assert w in line, line
    assert bundles_in(tmp_path / "r") == []
    return line


@pytest.mark.xdist_group("capture")
def test_rm_rf_prepare_is_refused_before_anything_runs(roi, tmp_path):
    victim = _victim(tmp_path)
    forged = forge(roi, tmp_path, _set_prepare(["sh", "-c", f"rm -rf {victim}"]))
    proc = nb("replay", str(forged), "--bundles", str(tmp_path / "r"), cwd=tmp_path)
    _refused(proc, tmp_path, "step prepare-inputs", "token 1", "'sh'")
    assert (victim / "precious.txt").is_file()


@pytest.mark.xdist_group("capture")
def test_python_prepare_is_refused(roi, tmp_path):
    canary = tmp_path / "canary"
    forged = forge(roi, tmp_path, _set_prepare(
        ["{python}", "-c", f"open({str(canary)!r}, 'w')", "--out", "{inputs}"]))
    proc = nb("replay", str(forged), "--bundles", str(tmp_path / "r"), cwd=tmp_path)
    # The program is ours ({python}); the second token is where it parts from the shipped spec.
    _refused(proc, tmp_path, "step prepare-inputs", "token 2", "'-c'", "'-m'")
    assert not canary.exists()


@pytest.mark.xdist_group("capture")
def test_unknown_target_never_runs_its_embedded_profile(roi, tmp_path):
    canary = tmp_path / "canary"

    def edit(m: dict) -> None:
        m["target"]["name"] = "evil"
        m["target"]["profile"]["name"] = "evil"
        for e in m["target"]["profile"]["engines"]:
            e["run"] = ["sh", "-c", f"touch {canary}", "{args}"]
    forged = forge(roi, tmp_path, edit)
    proc = nb("replay", str(forged), "--bundles", str(tmp_path / "r"), cwd=tmp_path)
    _refused(proc, tmp_path, "'evil'", "not a built-in profile")
    assert not canary.exists()


@pytest.mark.xdist_group("capture")
def test_changed_run_template_names_step_and_token(roi, tmp_path):
    canary = tmp_path / "canary"

    def edit(m: dict) -> None:
        t = m["arguments"]["templates"]["run-py"]
        t[1:3] = ["-c", f"open({str(canary)!r}, 'w')"]
    forged = forge(roi, tmp_path, edit)
    proc = nb("replay", str(forged), "--bundles", str(tmp_path / "r"), cwd=tmp_path)
    _refused(proc, tmp_path, "step run-py", "token 2", "'-c'")
    assert not canary.exists()


@pytest.mark.xdist_group("capture")
def test_env_outside_the_allow_list_is_refused(roi, tmp_path):
    def edit(m: dict) -> None:
        m["commands"][-1]["env"]["LD_PRELOAD"] = str(tmp_path / "evil.so")
    forged = forge(roi, tmp_path, edit)
    proc = nb("replay", str(forged), "--bundles", str(tmp_path / "r"), cwd=tmp_path)
    _refused(proc, tmp_path, "env LD_PRELOAD", "allow-list")


@pytest.mark.xdist_group("capture")
def test_argument_leaving_the_repo_is_refused(roi, tmp_path):
    def edit(m: dict) -> None:
        m["spec"]["args"] += ["-hkl", "../../../etc/passwd"]
        for step, trace_flag in (("run-c", "-dump_pixel"), ("run-py", "-trace_pixel")):
            t = m["arguments"]["templates"][step]
            at = t.index(trace_flag)
            t[at:at] = ["-hkl", "../../../etc/passwd"]  # the shared list ends where tracing begins
    forged = forge(roi, tmp_path, edit)
    proc = nb("replay", str(forged), "--bundles", str(tmp_path / "r"), cwd=tmp_path)
    _refused(proc, tmp_path, "leaves the repo")


@pytest.mark.xdist_group("capture")
def test_dry_run_marks_builtin_and_foreign_and_runs_nothing(roi, tmp_path):
    proc = nb("replay", str(roi), "--dry-run", "--bundles", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    steps = [line.split()[1] for line in lines]
    assert steps == ["[prepare-inputs]", "[build-c]", "[run-c]", "[run-py]"]
    assert all(line.startswith("builtin ") for line in lines), lines
    assert "minibragg.inputs" in lines[0] and "/minibragg/minibragg.c" in lines[1]

    victim = _victim(tmp_path)
    forged = forge(roi, tmp_path, _set_prepare(["sh", "-c", f"rm -rf {victim}"]))
    proc = nb("replay", str(forged), "--dry-run", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    planned = {c["step"]: c for c in json.loads(proc.stdout)["commands"]}
    assert planned["prepare-inputs"]["origin"] == "foreign"
    assert "rm -rf" in planned["prepare-inputs"]["command"]
    assert {planned[s]["origin"] for s in ("build-c", "run-c", "run-py")} == {"builtin"}
    assert (victim / "precious.txt").is_file() and not (tmp_path / "r").exists()


@pytest.mark.xdist_group("capture")
def test_tampered_bundle_is_refused_with_exit_1(roi, tmp_path):
    def edit(m: dict) -> None:
        m["result"]["verdict"] = "divergence"
    forged = forge(roi, tmp_path, edit)
    proc = nb("replay", str(forged), "--bundles", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc.stderr)
    assert "TAMPERED" in line and "result.verdict" in line
    assert bundles_in(tmp_path / "r") == []


@pytest.mark.xdist_group("capture")
def test_builtin_bundle_replays_without_trust(roi, tmp_path):
    proc = nb("replay", str(roi), "--bundles", str(tmp_path / "r"), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["reproduced"] is True and out["trusted"] is False
    [new] = bundles_in(tmp_path / "r")
    assert "trusted" not in json.loads((new / "manifest.json").read_text())


@pytest.mark.xdist_group("capture")
def test_containerized_replay_is_vetted_before_any_container(roi, tmp_path):
    # No engine answers at DOCKER_HOST: the refusal must come first, from this machine's plan.
    canary = tmp_path / "canary"

    def edit(m: dict) -> None:
        m["environment"]["container"] = {"image_id": "sha256:" + "0" * 64}
        m["target"]["host_repo"] = str(REPO_ROOT)
        _set_prepare(["{python}", "-c", f"open({str(canary)!r}, 'w')"])(m)
    forged = forge(roi, tmp_path, edit)
    proc = nb("replay", str(forged), "--in-container", "--bundles", str(tmp_path / "r"),
              cwd=tmp_path, env_extra={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    _refused(proc, tmp_path, "step prepare-inputs")
    assert not canary.exists()
