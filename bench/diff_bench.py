"""How fast is `diff` on two shipped-spec bundles (goal: ≤ 0.5 s)?

Captures manifests/minibragg-roi.toml twice into a temporary directory, then times
bundle.diff.load.diff_paths in this process (both bundles verified, manifests and comparison
tables read, the diff built and rendered to Markdown) and the whole `nb-evidence diff A B --json`
process (interpreter start and imports included). Prints medians; asserts nothing.

    .venv/bin/python bench/diff_bench.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_S = 0.5


def _capture(bundles: Path) -> Path:
    proc = subprocess.run([sys.executable, "-m", "cli", "capture", "manifests/minibragg-roi.toml",
                           "--bundles", str(bundles), "--json"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"capture failed: {proc.stderr.strip()}")
    return Path(json.loads(proc.stdout)["bundle"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    from bundle.diff.load import diff_paths
    from bundle.diff.markdown import markdown

    with tempfile.TemporaryDirectory() as tmp:
        a, b = _capture(Path(tmp) / "b"), _capture(Path(tmp) / "b")
        inproc, process = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            markdown(diff_paths(a, b))
            inproc.append(time.perf_counter() - t)
        for _ in range(args.repeat):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cli", "diff", str(a), str(b), "--json"], cwd=ROOT,
                           capture_output=True, check=False)
            process.append(time.perf_counter() - t)
    for what, times in (("diff_paths + markdown (in process)", inproc),
                        ("nb-evidence diff --json (process)", process)):
        med = statistics.median(times)
        print(f"   {what}: median {med:.3f} s over {len(times)} "
              f"(goal ≤ {GOAL_S} s: {'met' if med <= GOAL_S else 'NOT met'})", flush=True)


if __name__ == "__main__":
    main()
