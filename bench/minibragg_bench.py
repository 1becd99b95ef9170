"""Benchmark: the FULL supervisor command (nanobragg-facts §2) on both minibragg engines.

Builds the C engine, writes the inputs (python -m minibragg.inputs), then runs, one after the
other in a scratch directory:
  - C, OMP_NUM_THREADS=2 (or --threads)
  - PyTorch -dtype float64 -device cpu
  - PyTorch -dtype float32 -device cpu
and prints wall seconds and peak RSS of each (os.wait4 on the child: its own ru_maxrss), plus
how the float images compare with C's. It prints figures and asserts nothing.

    .venv/bin/python bench/minibragg_bench.py [--repeat N] [--threads N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from minibragg.inputs import write_inputs  # noqa: E402
from minibragg.supervisor import FPIXELS, SPIXELS, TRACE_PIXEL, supervisor_args  # noqa: E402

C_FLAGS = ["-O2", "-fno-fast-math", "-ffp-contract=off", "-fopenmp"]


def build_c(out: Path) -> Path:
    binary = out / "minibragg"
    subprocess.run(["gcc", *C_FLAGS, "-o", str(binary), str(REPO / "minibragg" / "minibragg.c"), "-lm"],
                   check=True)
    return binary


def timed(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit status) of one child process."""
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024.0, proc.returncode  # ru_maxrss is KiB on Linux


def compare(reference: Path, other: Path) -> str:
    a = np.fromfile(reference, dtype="<f4").astype(np.float64)
    b = np.fromfile(other, dtype="<f4").astype(np.float64)
    if a.size != b.size:
        return f"size {b.size} != {a.size}"
    pearson = np.corrcoef(a, b)[0, 1]
    return (f"pearson={pearson:.12f} sum_ratio={b.sum() / a.sum():.12f} "
            f"identical_pixels={np.count_nonzero(a == b)}/{a.size}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per engine (best and all printed)")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS for the C engine")
    parser.add_argument("--keep", help="scratch directory to use and keep (default: a temp dir)")
    args = parser.parse_args()

    scratch = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="minibragg-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        binary = build_c(scratch)
        mat, hkl = write_inputs(str(scratch))
        print(f"supervisor command, full image {SPIXELS} slow x {FPIXELS} fast, 10 phi steps, "
              f"traced pixel {TRACE_PIXEL}; {os.cpu_count()} CPUs; scratch {scratch}")
        base_env = dict(os.environ, KMP_DUPLICATE_LIB_OK="TRUE", PYTHONPATH=str(REPO))
        trace = ["-trace_pixel", str(TRACE_PIXEL[0]), str(TRACE_PIXEL[1])]
        runs = {
            "C (OMP_NUM_THREADS=%d)" % args.threads: (
                [str(binary), *supervisor_args(mat, hkl, str(scratch / "c.bin")), *trace],
                dict(base_env, OMP_NUM_THREADS=str(args.threads)), scratch / "c.bin"),
            "PyTorch float64 cpu": (
                [sys.executable, "-m", "minibragg", *supervisor_args(mat, hkl, str(scratch / "py64.bin")),
                 *trace, "-dtype", "float64", "-device", "cpu"], base_env, scratch / "py64.bin"),
            "PyTorch float32 cpu": (
                [sys.executable, "-m", "minibragg", *supervisor_args(mat, hkl, str(scratch / "py32.bin")),
                 *trace, "-dtype", "float32", "-device", "cpu"], base_env, scratch / "py32.bin"),
        }
        results = {}
        for name, (argv, env, _) in runs.items():
            walls, rsss = [], []
            for i in range(args.repeat):
                wall, rss, rc = timed(argv, scratch, env, scratch / f"{name.split()[0]}-{i}.log")
                if rc != 0:
                    print(f"{name}: exit status {rc}, see {scratch}")
                walls.append(wall)
                rsss.append(rss)
            results[name] = (walls, rsss)
            print(f"{name:28s} wall {min(walls):7.2f} s (runs: {', '.join(f'{w:.2f}' for w in walls)})"
                  f"   peak RSS {max(rsss):7.1f} MiB", flush=True)
        reference = runs[next(iter(runs))][2]
        for name, (_, _, image) in list(runs.items())[1:]:
            if image.exists() and reference.exists():
                print(f"{name:28s} vs C: {compare(reference, image)}")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
