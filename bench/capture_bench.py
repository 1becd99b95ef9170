"""Capture overhead: the full capture of a spec against the same commands run bare.

Bare = the plan's own build and engine commands run directly with subprocess (same argv, same
env, same scratch layout), nothing recorded, parsed, compared or written. Capture = `capture()`
end to end (recording, hashing, traces, comparison, metrics, plots, report, tables, crate,
manifest, rename). Each is run twice, alternating, and the faster of each pair is reported.
Prints figures; asserts nothing.

    python bench/capture_bench.py [SPEC]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bundle.capture import CaptureOptions, capture, plan_capture  # noqa: E402
from bundle.environment import command_env  # noqa: E402
from bundle.spec import load_spec  # noqa: E402
from bundle.target import load_target  # noqa: E402


def bare(spec, target, options) -> float:
    scratch = Path(tempfile.mkdtemp(prefix="nb-bench-bare-"))
    try:
        plan = plan_capture(spec, target, options, scratch)
        t0 = time.perf_counter()
        for step in plan.steps:
            cwd = Path(step.cwd)
            cwd.mkdir(parents=True, exist_ok=True)
            for src, dst in step.stage:
                shutil.copyfile(src, cwd / dst)
            subprocess.run(step.argv, cwd=cwd, env=command_env(dict(step.env)),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def full(spec, target, options) -> float:
    t0 = time.perf_counter()
    capture(spec, target, options)
    return time.perf_counter() - t0


def main() -> None:
    spec_path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "manifests/cli-flags-003-phase-j.toml"
    spec = load_spec(spec_path)
    target = load_target(spec.target)
    bundles = Path(tempfile.mkdtemp(prefix="nb-bench-bundles-"))
    options = CaptureOptions(repo=ROOT, bundles=bundles)
    try:
        bare_t, full_t = [], []
        for _ in range(2):
            bare_t.append(bare(spec, target, options))
            full_t.append(full(spec, target, options))
        b, f = min(bare_t), min(full_t)
        print(f"capture overhead ({spec.name}, target {target.name}):")
        print(f"  bare commands (build + engines), best of 2: {b:8.2f} s   runs: "
              + ", ".join(f"{x:.2f}" for x in bare_t))
        print(f"  full capture,                    best of 2: {f:8.2f} s   runs: "
              + ", ".join(f"{x:.2f}" for x in full_t))
        print(f"  overhead: {f - b:+.2f} s = {100 * (f - b) / b:+.1f} %  (goal: <= 5 %)")
    finally:
        shutil.rmtree(bundles, ignore_errors=True)


if __name__ == "__main__":
    main()
