"""The shipped suite (manifests/minibragg-parity-suite.toml) on a LocalCluster: issue 13's goals.

- packing: the suite's wall against (sum of its runs' bare engine walls ÷ workers), goal ≤ 1.15×;
  the bare engine walls are the member manifests' ``run-*`` commands (not build, prepare or the
  capture's own work);
- resume: ``--resume`` of the unchanged suite against the first wall, goal ≤ 10 %;
- memory: the coordinating process's peak RSS (psutil, sampled every 50 ms; the Dask workers are
  other processes), goal ≤ 500 MB.

Prints figures; asserts nothing.

    python bench/suite_bench.py [--workers N]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "manifests" / "minibragg-parity-suite.toml"


def run(bundles: Path, workers: int, *extra: str) -> tuple[float, int, dict]:
    """(wall s, coordinator peak RSS bytes, suite.json data) of one `nb-evidence suite`."""
    argv = [sys.executable, "-m", "cli", "suite", str(SUITE), "--bundles", str(bundles),
            "--workers", str(workers), "--json", *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak = [0]

    def sample() -> None:
        try:
            me = psutil.Process(proc.pid)
            while proc.poll() is None:
                peak[0] = max(peak[0], me.memory_info().rss)
                time.sleep(0.05)
        except psutil.NoSuchProcess:
            pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.join()
    if proc.returncode not in (0, 1):
        sys.exit(f"suite exited {proc.returncode}: {err[-2000:]}")
    return wall, peak[0], json.loads(out)


def engine_walls(bundles: Path, data: dict) -> float:
    """Sum of the members' engine run commands' walls."""
    total = 0.0
    for m in data["members"]:
        for bundle in (m.get("bundle"), m.get("trace_bundle")):
            if bundle:
                manifest = json.loads((bundles / bundle / "manifest.json").read_text())
                total += sum(c["wall_s"] for c in manifest["commands"] if c["role"] == "run")
    return total


def main() -> None:
    workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv \
        else max(1, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="nb-suite-bench-") as tmp:
        bundles = Path(tmp) / "bundles"
        wall, rss, data = run(bundles, workers)
        bare = engine_walls(bundles, data)
        s = data["summary"]
        print(f"suite {data['name']}: {s['runs']} runs ({s['passed']} pass), {workers} workers")
        print(f"  wall {wall:.1f} s; bare engine walls {bare:.1f} s / {workers} = "
              f"{bare / workers:.1f} s; packing {wall / (bare / workers):.2f}x (goal <= 1.15x)")
        print(f"  coordinator peak RSS {rss / 2**20:.0f} MB (goal <= 500 MB)")
        again, rss2, data2 = run(bundles, workers, "--resume")
        print(f"  --resume unchanged: {again:.2f} s = {100 * again / wall:.1f} % of the first "
              f"(goal <= 10 %), {data2['summary']['reused']} of {data2['summary']['runs']} reused, "
              f"coordinator peak RSS {rss2 / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
