"""Replay for real: capture with the tiny engines, then re-run the bundle's manifest."""

from __future__ import annotations

import json
from pathlib import Path

from test_capture import bundles_in, make_repo, run_cli


def _capture(repo: Path, bundles: Path) -> Path:
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(bundles), "-q", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    [bundle] = bundles_in(bundles)
    return bundle


def test_fresh_bundle_replays_as_reproduced(tmp_path):
    repo = make_repo(tmp_path)
    original = _capture(repo, tmp_path / "b")
    # The tiny engines' profile is a custom one: only --trust replays it (issue 11).
    proc = run_cli("replay", str(original), "--bundles", str(tmp_path / "r"), "--json", "--trust", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["reproduced"] is True
    assert out["replay_of"] == original.name
    verdicts = {(o["engine"], o["output"]): o["verdict"] for o in out["outputs"]}
    assert verdicts == {("c", "trace"): "identical", ("c", "image"): "identical",
                        ("py", "trace"): "identical", ("py", "image"): "identical"}
    [new] = bundles_in(tmp_path / "r")
    manifest = json.loads((new / "manifest.json").read_text())
    assert manifest["replay_of"] == original.name
    # the new bundle is a bundle like any other
    assert run_cli("verify", str(new), cwd=repo).returncode == 0


def test_replay_after_source_change_names_the_key_that_moved(tmp_path):
    repo = make_repo(tmp_path)
    original = _capture(repo, tmp_path / "b")
    py = repo / "tiny.py"
    py.write_text(py.read_text().replace("polar, cap, steps = 7.94079248018965e-30, 1e-6, 0.75",
                                         "polar, cap, steps = 7.94079248018965e-30, 1e-6, 0.7501"))
    # The tiny engines' profile is a custom one: only --trust replays it (issue 11).
    proc = run_cli("replay", str(original), "--bundles", str(tmp_path / "r"), "--json", "--trust", cwd=repo)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["reproduced"] is False
    py_trace = next(o for o in out["outputs"] if o["engine"] == "py" and o["output"] == "trace")
    assert py_trace["verdict"] == "differs"
    assert py_trace["first_divergence"]["key"] == "polar"
    c_trace = next(o for o in out["outputs"] if o["engine"] == "c" and o["output"] == "trace")
    assert c_trace["verdict"] == "identical"


def test_foreign_program_and_escaping_path_are_refused_without_trust(tmp_path):
    repo = make_repo(tmp_path)
    original = _capture(repo, tmp_path / "b")
    manifest = json.loads((original / "manifest.json").read_text())

    foreign = json.loads(json.dumps(manifest))
    foreign["arguments"]["templates"]["run-py"][0] = "/bin/sh"
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(foreign))
    proc = run_cli("replay", str(path), "--repo", str(repo), "--bundles", str(tmp_path / "r"), cwd=repo)
    assert proc.returncode == 2
    assert "refusing to replay without --trust" in proc.stderr and "tiny" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists() or bundles_in(tmp_path / "r") == []

    escaping = json.loads(json.dumps(manifest))
    escaping["spec"]["args"] = escaping["spec"]["args"] + ["-hkl", "../../etc/passwd"]
    escaping["arguments"]["templates"]["run-c"][-3:-3] = ["-hkl", "../../etc/passwd"]
    path = tmp_path / "escaping.json"
    path.write_text(json.dumps(escaping))
    proc = run_cli("replay", str(path), "--repo", str(repo), "--bundles", str(tmp_path / "r"), cwd=repo)
    assert proc.returncode == 2
    # Refused already for its custom target; tests/hostile/ shows the path rule on a built-in one.
    assert "refusing to replay without --trust" in proc.stderr


def test_archived_manifest_replays_against_a_repo(tmp_path):
    repo = make_repo(tmp_path)
    original = _capture(repo, tmp_path / "b")
    proc = run_cli("archive", str(original), "--repo", str(repo), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    archived = repo / "manifests" / "archive" / f"{original.name}.json"
    assert archived.is_file()
    proc = run_cli("replay", str(archived), "--repo", str(repo), "--bundles",
                   str(tmp_path / "r"), "--json", "--trust", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # Only digests travel with an archived manifest: traces by their key-line digest, images by sha256.
    assert out["reproduced"] is True
    assert {o["verdict"] for o in out["outputs"]} == {"identical"}
