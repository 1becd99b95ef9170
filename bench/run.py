"""`make bench`: every measured speed and memory figure, printed (nothing asserted).

Runs, in order: the minibragg engines on the full supervisor image (C, PyTorch float64 and
float32: wall seconds and peak RSS), the capture overhead against the bare commands, and the
verify throughput on a bundle with full-size images, the key-graph classification and plot, the
offline compare's peak memory and throughput on two 1 GB logs (2 GB of temporary disk), the diff
of two shipped-spec bundles (in process and as a CLI process), bisect, the shipped suite on a
LocalCluster (packing, resume, coordinator memory), and
in-container against native for a port that calls torch.compile (skipped, saying so, when no Docker
engine answers).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in ("minibragg_bench.py", "capture_bench.py", "verify_bench.py", "roots_bench.py",
               "compare_bench.py", "diff_bench.py", "bisect_bench.py", "suite_bench.py",
               "inductor_bench.py"):
    print(f"== {script}", flush=True)
    if script == "inductor_bench.py" and (shutil.which("docker") is None or subprocess.call(
            ["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) != 0):
        print("   skipped: no Docker engine answers (`docker info` failed)", flush=True)
        continue
    code = subprocess.call([sys.executable, str(HERE / script)])
    if code != 0:
        print(f"   {script} exited {code}", flush=True)
