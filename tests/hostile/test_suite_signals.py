"""SIGINT mid-suite: every pending and running run is cancelled, their engines (and the
engines' own children) killed, the Dask cluster closed; exit 130 with nothing left behind: no
process the suite started, no staging, no scratch."""

from __future__ import annotations

import signal
import subprocess
import time

import psutil
import pytest

from capture_hostile import cli_argv, cli_env, leftovers
from suite_hostile import engine_pids, slow_suite

pytestmark = pytest.mark.xdist_group("suite")


def _alive(pids: set[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def test_sigint_mid_suite_leaves_nothing_running(tmp_path):
    repo, suite, pids = slow_suite(tmp_path, runs=3, sleep=120)
    bundles, scratch = tmp_path / "bundles", tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(cli_argv("suite", str(suite), "--repo", str(repo), "--bundles",
                                     str(bundles), "--workers", "2", "--quiet"),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env(TMPDIR=str(scratch)))
    seen: set[int] = set()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(pids.iterdir())) < 2:
            assert proc.poll() is None, proc.communicate()
            seen |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
            time.sleep(0.1)
        assert len(list(pids.iterdir())) >= 2, "two runs never started"
        seen |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        seen |= set(engine_pids(pids))
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1] == "interrupted"
    deadline = time.time() + 15
    while time.time() < deadline and _alive(seen):
        time.sleep(0.2)
    left = _alive(seen)
    for pid in left:  # ours: cleaned up so a failure does not leak them
        psutil.Process(pid).kill()
    assert not left, [psutil.Process(p).cmdline() for p in left if psutil.pid_exists(p)]
    assert len(engine_pids(pids)) >= 4  # the engines (and their children) were among them
    assert [p for p in leftovers(bundles) if not p.endswith(".lock")] == []
    assert not list(scratch.glob("nb-evidence-*"))
    assert not [p for p in bundles.iterdir() if not p.name.startswith(".")]
