"""Interrupted means cleaned up: SIGINT, SIGTERM or SIGHUP during an engine run kills the
engine's whole process group, removes scratch and staging, prints ``interrupted`` and exits
128 + the signal. What a SIGKILLed capture leaves in staging is removed by the next capture there
once its pid is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from capture_hostile import (SLOW_PROFILE, bundles_in, cli_argv, cli_env, leftovers, make_repo,
                             run_cli)

# The py engine writes its pid, starts a grandchild in its own process group, then sleeps.
ENGINE = ("import os, subprocess, sys, time; "
          "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
          "open('{pids}', 'w').write(f'{{os.getpid()}} {{child.pid}}'); "
          "print('TRACE_PY: steps 10', flush=True); time.sleep(120)")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def _start(repo: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path, Path, Path]:
    pids = tmp_path / "engine.pids"
    profile = tmp_path / "slow.toml"
    profile.write_text(SLOW_PROFILE.format(code=ENGINE.format(pids=pids)))
    bundles, scratch = tmp_path / "b", tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(cli_argv("capture", "spec.toml", "--target", str(profile), "--repo",
                                     ".", "--bundles", str(bundles), "--quiet"),
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(TMPDIR=str(scratch)))
    deadline = time.time() + 90
    while time.time() < deadline and not (pids.exists() and pids.read_text().strip()):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert pids.exists(), "the slow engine never started"
    return proc, pids, bundles, scratch


def _reap(pids: Path) -> list[int]:
    """The engine's pids still alive after a moment (and kill those, by pid: ours)."""
    numbers = [int(p) for p in pids.read_text().split()]
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(p) for p in numbers):
        time.sleep(0.05)
    alive = [p for p in numbers if _alive(p)]
    for p in alive:
        os.kill(p, signal.SIGKILL)
    return alive


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_kills_the_engines_and_leaves_nothing(tmp_path, sig):
    repo = make_repo(tmp_path)
    proc, pids, bundles, scratch = _start(repo, tmp_path)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert err.splitlines() == ["interrupted"]
    assert _reap(pids) == [], "engine processes outlived the capture"
    time.sleep(0.3)  # an orphaned engine would re-create its scratch directory about now
    assert os.listdir(scratch) == []
    assert bundles_in(bundles) == [] and leftovers(bundles) == []


def test_a_second_signal_does_not_cut_the_cleanup_short(tmp_path):
    repo = make_repo(tmp_path)
    proc, pids, bundles, scratch = _start(repo, tmp_path)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    # both pending at once, the kernel may deliver SIGINT first: either one wins, once
    assert proc.returncode in (130, 143) and err.splitlines() == ["interrupted"], err
    assert _reap(pids) == []
    assert os.listdir(scratch) == [] and leftovers(bundles) == []


def test_staging_of_a_sigkilled_capture_is_removed_by_the_next_one(tmp_path):
    repo = make_repo(tmp_path)
    proc, pids, bundles, _scratch = _start(repo, tmp_path)
    proc.kill()
    proc.communicate(timeout=30)
    _reap(pids)  # SIGKILL leaves the engine running: the test ends it
    killed = leftovers(bundles)
    assert len(killed) == 2 and killed[1] == killed[0] + ".lock", killed
    assert (bundles / ".staging" / killed[1]).read_text().split()[0] == str(proc.pid)
    live = bundles / ".staging" / "20990101T000000Z-live-00000000"
    live.mkdir()  # a capture still running (this test's pid) keeps its staging
    Path(f"{live}.lock").write_text(f"{os.getpid()} {os.uname().nodename}\n")
    done = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(bundles), "--quiet",
                   cwd=repo)
    assert done.returncode == 0, done.stderr
    assert leftovers(bundles) == [live.name, live.name + ".lock"]
    assert len(bundles_in(bundles)) == 1
