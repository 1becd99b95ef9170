"""`make bench`: every measured speed and memory figure, printed (nothing asserted).

Runs, in order: the minibragg engines on the full supervisor image (C, PyTorch float64 and
float32: wall seconds and peak RSS), the capture overhead against the bare commands, and the
verify throughput on a bundle with full-size images, and the key-graph classification and plot.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in ("minibragg_bench.py", "capture_bench.py", "verify_bench.py", "roots_bench.py"):
    print(f"== {script}", flush=True)
    code = subprocess.call([sys.executable, str(HERE / script)])
    if code != 0:
        print(f"   {script} exited {code}", flush=True)
