"""A capture never touches a path it did not create: every file an engine is told to write stays
inside the capture's scratch directory, and the capture never moves or deletes a user's file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from bundle.capture.plan import confine_outputs
from bundle.capture.spec import parse_spec
from bundle.capture.target import load_target, parse_profile
from bundle.model.errors import SpecError, TargetError
from capture_hostile import ARGS, bundles_in, make_repo, one_error_line, run_cli


def _fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.mark.parametrize("where", ["absolute", "parent"])
def test_an_image_path_outside_scratch_is_refused_and_the_users_file_survives(tmp_path, where):
    users = tmp_path / "mine" / "img.bin"
    users.parent.mkdir()
    users.write_bytes(b"the user's own image, not to be lost\n")
    before = _fingerprint(users)
    value = str(users) if where == "absolute" else "../../mine/img.bin"
    args = [a if a != "img.bin" else value for a in ARGS]
    repo = make_repo(tmp_path, args=args)
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(tmp_path / "b"),
                   cwd=repo)
    line = one_error_line(proc)
    assert f"-floatfile {value}" in line and "scratch" in line
    assert _fingerprint(users) == before
    assert not (tmp_path / "b").exists(), "refused before anything ran or was written"


def test_the_refusal_comes_with_dry_run_too(tmp_path):
    args = [a if a != "img.bin" else "/etc/passwd" for a in ARGS]
    repo = make_repo(tmp_path, args=args)
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--dry-run", cwd=repo)
    assert "-floatfile /etc/passwd" in one_error_line(proc)


@pytest.mark.parametrize("value", ["/tmp/x.img", "../x.img", "a/../../x.img", "~/x.img", ""])
def test_nanobraggs_other_outputs_are_confined_too(value):
    spec = parse_spec({"name": "s", "target": "nanobragg",
                       "args": ["-detpixels", "8", "-intfile", value]}, "s.toml")
    with pytest.raises(SpecError, match="-intfile"):
        confine_outputs(spec, load_target("nanobragg"))


@pytest.mark.parametrize("value", ["img.bin", "out/img.bin", "./img.bin"])
def test_relative_paths_inside_scratch_are_accepted(value):
    spec = parse_spec({"name": "s", "target": "nanobragg",
                       "args": ["-floatfile", value, "-noisefile", value]}, "s.toml")
    confine_outputs(spec, load_target("nanobragg"))  # no error


def test_a_profile_declares_its_output_flags():
    data = {"name": "p", "output_flags": ["-dump"], "engines": [
        {"name": "a", "prefix": "A:", "run": ["a", "{args}"]},
        {"name": "b", "prefix": "B:", "run": ["b", "{args}"]}]}
    profile = parse_profile(data, "p.toml")
    assert profile.written_flags() == ("-floatfile", "-dump")
    spec = parse_spec({"name": "s", "target": "p", "args": ["-dump", "/home/u/trace.txt"]}, "s.toml")
    with pytest.raises(SpecError, match="-dump /home/u/trace.txt"):
        confine_outputs(spec, profile)
    with pytest.raises(TargetError, match="output_flags"):
        parse_profile({**data, "output_flags": "-dump"}, "p.toml")


def test_a_capture_leaves_the_users_same_named_file_alone(tmp_path):
    repo = make_repo(tmp_path)
    users = repo / "img.bin"  # the relative image path, in the directory the user runs from
    users.write_bytes(b"mine\n")
    before = _fingerprint(users)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(tmp_path / "b"),
                   "--quiet", cwd=repo, TMPDIR=str(tmp))
    assert proc.returncode == 0, proc.stderr
    assert _fingerprint(users) == before
    [bundle] = bundles_in(tmp_path / "b")
    assert (bundle / "images" / "c.bin").is_file()  # the engines' images came from scratch
    assert os.listdir(tmp) == [], "the scratch directory is removed after the capture"
