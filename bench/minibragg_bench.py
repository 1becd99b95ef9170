"""Benchmark: the FULL supervisor command (nanobragg-facts §2) on both minibragg engines.

Builds the C engine, writes the inputs (python -m minibragg.inputs), then runs, one after the
other in a scratch directory, each with -trace_pixel 1039 685:
  c       C, OMP_NUM_THREADS=2 (or --threads)
  py64    PyTorch -dtype float64 -device cpu
  py32    PyTorch -dtype float32 -device cpu
  cuda64  PyTorch -dtype float64 -device cuda   (only when asked: --engines)
  cuda32  PyTorch -dtype float32 -device cuda
--repeat times (default 3), round-robin, and prints the best wall seconds and the peak RSS of
each (os.wait4 on the child: its own ru_maxrss), then how each image and trace compares with
C's. It prints figures and asserts nothing.

    .venv/bin/python bench/minibragg_bench.py [--engines c,py64,py32] [--repeat N] [--threads N] [--keep DIR]
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


def trace_values(log: Path, prefix: str) -> dict[str, list[float]]:
    values = {}
    for line in log.read_text().splitlines():
        if line.startswith(prefix + " "):
            parts = line.split()
            values[parts[1]] = [float(v) for v in parts[2:]]
    return values


def worst_key(reference: dict[str, list[float]], other: dict[str, list[float]]) -> str:
    if not reference or list(reference) != list(other):
        return "trace keys differ or missing"
    worst, where = 0.0, ""
    for key, a_vals in reference.items():
        for a, b in zip(a_vals, other[key]):
            diff = abs(a - b) / max(abs(a), abs(b), 1e-300)
            if diff > worst:
                worst, where = diff, key
    return f"worst trace key rel diff {worst:.3e} ({where or 'all identical'})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine, interleaved (best and all printed)")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS for the C engine")
    parser.add_argument("--keep", help="scratch directory to use and keep (default: a temp dir)")
    parser.add_argument("--engines", default="c,py64,py32",
                        help="comma-separated, from c, py64, py32, cuda64, cuda32 (c is the reference)")
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
        def py(tag: str, dtype: str, device: str):
            return ([sys.executable, "-m", "minibragg", *supervisor_args(mat, hkl, str(scratch / f"{tag}.bin")),
                     *trace, "-dtype", dtype, "-device", device], base_env, scratch / f"{tag}.bin", "TRACE_PY:")

        known = {
            "c": ("C (OMP_NUM_THREADS=%d)" % args.threads,
                  ([str(binary), *supervisor_args(mat, hkl, str(scratch / "c.bin")), *trace],
                   dict(base_env, OMP_NUM_THREADS=str(args.threads)), scratch / "c.bin", "TRACE_C:")),
            "py64": ("PyTorch float64 cpu", py("py64", "float64", "cpu")),
            "py32": ("PyTorch float32 cpu", py("py32", "float32", "cpu")),
            "cuda64": ("PyTorch float64 cuda", py("cuda64", "float64", "cuda")),
            "cuda32": ("PyTorch float32 cuda", py("cuda32", "float32", "cuda")),
        }
        runs = {known[tag][0]: known[tag][1] for tag in args.engines.split(",")}
        logs = {}
        walls: dict[str, list[float]] = {name: [] for name in runs}
        rsss: dict[str, list[float]] = {name: [] for name in runs}
        # Round-robin (c, py64, py32, c, ...): a shared machine's load drifts over minutes, and
        # interleaving spreads it over every engine alike.
        for i in range(args.repeat):
            for name, (argv, env, _, _) in runs.items():
                logs[name] = scratch / f"{name.split()[0]}-{name.split()[1]}-{i}.log"
                wall, rss, rc = timed(argv, scratch, env, logs[name])
                if rc != 0:
                    print(f"{name}: exit status {rc}, see {scratch}")
                walls[name].append(wall)
                rsss[name].append(rss)
        for name in runs:
            print(f"{name:28s} wall {min(walls[name]):7.2f} s (best of {args.repeat}; runs: "
                  f"{', '.join(f'{w:.2f}' for w in walls[name])})   peak RSS "
                  f"{max(rsss[name]):7.1f} MiB", flush=True)
        first = next(iter(runs))
        reference, ref_trace = runs[first][2], trace_values(logs[first], runs[first][3])
        for name, (_, _, image, prefix) in list(runs.items())[1:]:
            if image.exists() and reference.exists():
                print(f"{name:28s} vs {first.split()[0]}: {compare(reference, image)}; "
                      f"{worst_key(ref_trace, trace_values(logs[name], prefix))}")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
