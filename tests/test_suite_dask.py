"""``--scheduler``: a real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1
(connection through a scheduler file). A suite completes on them; one worker killed by pid in
the middle of a run: Dask runs that run elsewhere, the suite completes, no half member bundle is
listed and every member verifies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "hostile"))
from capture_hostile import cli_argv, cli_env  # noqa: E402
from suite_hostile import engine_pids, slow_suite  # noqa: E402

from bundle.store.verify import verify_bundle  # noqa: E402
from bundle.suite.store import is_suite_bundle, verify_suite  # noqa: E402

pytestmark = pytest.mark.xdist_group("suite")


def _dask(module: str, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", f"distributed.cli.{module}", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)


@pytest.fixture
def cluster(tmp_path):
    """(scheduler address, the two worker processes): stopped, by pid, afterwards."""
    env = cli_env(TMPDIR=str(tmp_path))
    file = tmp_path / "scheduler.json"
    procs = [_dask("dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--scheduler-file", str(file), env=env)]
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (file.exists() and file.read_text().strip()):
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        workers = [_dask("dask_worker", "--scheduler-file", str(file), "--nworkers", "1",
                         "--nthreads", "1", "--host", "127.0.0.1", "--no-nanny",
                         "--no-dashboard", "--name", f"w{i}", env=env) for i in range(2)]
        procs += workers
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _listed(bundles: Path) -> list[Path]:
    return [p for p in bundles.iterdir() if not p.name.startswith(".")]


def test_a_suite_on_a_scheduler_survives_a_killed_worker(tmp_path, cluster):
    address, workers = cluster
    (tmp_path / "w").mkdir()
    repo, suite, pids = slow_suite(tmp_path / "w", runs=4, sleep=3)
    bundles = tmp_path / "bundles"
    proc = subprocess.Popen(cli_argv("suite", str(suite), "--repo", str(repo), "--bundles",
                                     str(bundles), "--scheduler", address, "--trace", "none",
                                     "--json"),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env(TMPDIR=str(tmp_path)))
    orphans = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(pids.iterdir()):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        engine = psutil.Process(engine_pids(pids)[0])
        worker = engine.parent()
        assert worker.pid in {w.pid for w in workers}, worker.cmdline()
        orphans = [engine.pid] + [c.pid for c in engine.children(recursive=True)]
        worker.kill()  # mid-run: its engine is sleeping
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in orphans:  # the killed worker's engine, reparented: ours to stop
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass
    assert proc.returncode in (0, 1), err[-3000:]
    assert "filesystem every worker shares" in err
    data = json.loads(out)
    assert data["executor"]["kind"] == "scheduler" and data["executor"]["address"] == address
    assert [m["status"] for m in data["members"]] != [] and all(
        m["status"] in ("pass", "fail") and m["bundle"] for m in data["members"]), data["members"]
    assert len({m["worker"] for m in data["members"]}) >= 1
    assert verify_suite(bundles / data["suite_id"]).intact
    members = {m["bundle"] for m in data["members"]}
    for listed in _listed(bundles):  # nothing half-made is listed: every directory is whole
        if is_suite_bundle(listed):
            continue
        assert listed.name in members, listed
        assert verify_bundle(listed).intact
