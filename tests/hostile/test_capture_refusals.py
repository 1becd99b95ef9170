"""Numbers and I/O errors are one line, exit 2, before anything runs and with nothing
half-written: bad tolerances and flags, a wrong --repo, inputs that exist nowhere, a full, read-only
or impossible bundles directory, a hostile manifest, a read-only ledger, and typer's own usage
errors, all in our one-line format."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from capture_hostile import (REPO_ROOT, bundles_in, cli_argv, cli_env, leftovers,
                             make_repo, one_error_line, run_cli)


@pytest.mark.parametrize("field, value", [
    ("rtol", "nan"), ("rtol", "inf"), ("atol", "nan"), ("atol", "+inf"), ("atol", "-inf")])
def test_a_tolerance_that_is_not_finite_is_refused_before_anything_runs(tmp_path, field, value):
    repo = make_repo(tmp_path, extra=f"[tolerance]\n{field} = {value}\n")
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(tmp_path / "b"),
                   cwd=repo)
    assert f"tolerance.{field} must be a finite number" in one_error_line(proc)
    assert not (tmp_path / "b").exists()


def test_a_per_key_tolerance_that_is_not_finite_is_refused(tmp_path):
    repo = make_repo(tmp_path, extra="[tolerance.keys.steps]\nrtol = nan\n")
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--dry-run", cwd=repo)
    assert "tolerance.keys.steps.rtol must be a finite number" in one_error_line(proc)


@pytest.mark.parametrize("flags, named", [
    (["--timeout", "nan"], "--timeout nan"), (["--timeout", "inf"], "--timeout inf"),
    (["--timeout", "-1"], "--timeout -1"), (["--timeout", "0"], "--timeout 0"),
    (["--c-threads", "0"], "--c-threads 0"), (["--c-threads", "-3"], "--c-threads -3")])
def test_bad_numbers_on_the_command_line_are_refused(tmp_path, flags, named):
    repo = make_repo(tmp_path)
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(tmp_path / "b"),
                   *flags, cwd=repo)
    assert one_error_line(proc).startswith(f"error: {named}:")
    assert not (tmp_path / "b").exists()


def test_a_repo_without_nanobragg_c_says_what_is_missing(tmp_path):
    empty = tmp_path / "not-nanobragg"
    empty.mkdir()
    proc = run_cli("capture", str(REPO_ROOT / "manifests" / "cli-flags-003-phase-j.toml"),
                   "--target", "nanobragg", "--repo", str(empty), "--bundles",
                   str(tmp_path / "b"), cwd=tmp_path)
    line = one_error_line(proc)
    assert "golden_suite_generator/nanoBragg.c not found" in line and str(empty) in line
    assert not (tmp_path / "b").exists()


def test_an_input_that_exists_nowhere_is_refused(tmp_path):
    repo = make_repo(tmp_path, extra='[inputs]\nfiles = ["A.mat"]\n')
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(tmp_path / "b"),
                   cwd=repo)
    assert "input file A.mat" in one_error_line(proc)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("prepare", ['["true"]', '["false"]'])
def test_an_input_its_prepare_command_does_not_make_is_refused(tmp_path, prepare):
    repo = make_repo(tmp_path, extra=f'[inputs]\nfiles = ["A.mat"]\nprepare = {prepare}\n')
    bundles = tmp_path / "b"
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(bundles), cwd=repo)
    assert "input file A.mat is not in the repo and inputs.prepare did not make it" in \
        one_error_line(proc)
    assert bundles_in(bundles) == [] and leftovers(bundles) == []


def test_bundles_under_a_file_is_one_line(tmp_path):
    repo = make_repo(tmp_path)
    (tmp_path / "plain").write_text("a file\n")
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles",
                   str(tmp_path / "plain" / "b"), cwd=repo)
    assert str(tmp_path) in one_error_line(proc)
    assert (tmp_path / "plain").read_text() == "a file\n"


def _in_own_mount(options: str, mountpoint: Path, listing: Path, argv: list[str],
                  cwd: Path) -> subprocess.CompletedProcess:
    """Run ``argv`` in a private mount namespace in which ``mountpoint`` is a fresh tmpfs mounted
    with ``options`` (a real small or read-only file system, gone when the process ends); what
    is left on it afterwards is listed into ``listing``."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to give the test a private mount namespace")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here (needs CAP_SYS_ADMIN): "
                    f"{probe.stderr.decode().strip()}")
    script = ('mount -t tmpfs -o "$1" nbtest "$2" || exit 99; d="$2"; out="$3"; shift 3; '
              '"$@"; rc=$?; (cd "$d" && find . -mindepth 1) > "$out"; exit $rc')
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                           "sh", options, str(mountpoint), str(listing), *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=180, env=cli_env())


@pytest.mark.parametrize("options, why", [("size=48k", "No space left on device"),
                                          ("ro", "Read-only file system")])
def test_a_full_or_read_only_bundles_directory_is_one_line_and_keeps_nothing(tmp_path, options,
                                                                             why):
    repo = make_repo(tmp_path)
    bundles = tmp_path / "b"
    bundles.mkdir()
    listing = tmp_path / "left.txt"
    # 48k holds the staging directory and its first files, not the whole bundle
    argv = cli_argv("capture", "spec.toml", "--repo", ".", "--bundles", str(bundles), "--quiet")
    proc = _in_own_mount(options, bundles, listing, argv, repo)
    line = one_error_line(proc)
    assert str(bundles) in line and why in line
    assert listing.read_text().split() in ([], ["./.staging"]), "nothing half-written is kept"


def test_typer_usage_errors_are_one_line_in_our_format(tmp_path):
    for args, says in [(["capture"], "Missing argument"),
                       (["capture", "x.toml", "--bogus"], "No such option: --bogus"),
                       (["capture", "x.toml", "--timeout", "soon"], "'--timeout'"),
                       (["show"], "Missing argument"), (["nonsense"], "No such command")]:
        proc = run_cli(*args, cwd=tmp_path)
        line = one_error_line(proc)
        assert says in line and "--help" in line, line


def test_a_manifest_nested_100000_deep_is_one_line(tmp_path):
    bundle = tmp_path / "deep"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    for command in ("show", "replay"):
        proc = run_cli(command, str(bundle), cwd=tmp_path)
        assert "nested too deeply" in one_error_line(proc)


def test_attach_to_a_read_only_ledger_refuses(tmp_path):
    repo = make_repo(tmp_path)
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(tmp_path / "b"),
                   "--quiet", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    [bundle] = bundles_in(tmp_path / "b")
    ledger = tmp_path / "fix_plan.md"
    ledger.write_text("# Fix plan\n\n## [TINY-001] tiny\n- Status: open\n- Attempts History:\n  * none yet\n")
    ledger.chmod(0o444)
    before = ledger.read_bytes(), ledger.stat().st_ino
    proc = run_cli("attach", str(bundle), "--fix-plan", str(ledger), "--item", "TINY-001",
                   cwd=tmp_path)
    assert "read-only" in one_error_line(proc) and str(ledger) in proc.stderr
    assert (ledger.read_bytes(), ledger.stat().st_ino) == before
