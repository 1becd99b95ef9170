"""Capture overhead: a full capture of a spec against the same commands run bare.

Bare = the plan's own build and engine commands run directly with subprocess (same argv, same
env, same scratch layout), nothing recorded, parsed, compared or written. Two captures:

- library: ``capture()`` called in this process (modules imported once, as a tool built on the
  library would): recording, hashing, traces, comparison, metrics, plots, report, tables,
  crate, manifest, rename;
- CLI: ``nb-evidence capture SPEC --native --quiet`` as a fresh process, which adds Python's
  start-up, the CLI's imports and argument parsing, and the interpreter's teardown.

Each is run ROUNDS times, interleaved. Printed: the fastest and the median of each and the
overhead they give, and each capture's own time: its wall time minus the wall time of the
commands it ran, as recorded in its manifest. On a shared machine one engine run can be 10 %
off the next, which swamps a few-percent difference between two totals; the own time is what
the capture adds, measured inside each capture. Whether a capture slows the engines themselves
shows in the per-command medians, printed last.

Prints figures; asserts nothing.

    python bench/capture_bench.py [SPEC]
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bundle.capture.options import CaptureOptions  # noqa: E402
from bundle.pipeline import capture, plan_capture  # noqa: E402
from bundle.capture.environment import command_env  # noqa: E402
from bundle.capture.spec import load_spec  # noqa: E402
from bundle.capture.target import load_target  # noqa: E402

ROUNDS = 4


def bare(spec, target, options) -> tuple[float, dict[str, float]]:
    """(total wall, wall per command)"""
    scratch = Path(tempfile.mkdtemp(prefix="nb-bench-bare-"))
    try:
        plan = plan_capture(spec, target, options, scratch)
        per = {}
        t0 = time.perf_counter()
        for step in plan.steps:
            cwd = Path(step.cwd)
            cwd.mkdir(parents=True, exist_ok=True)
            for src, dst in step.stage:
                shutil.copyfile(src, cwd / dst)
            t = time.perf_counter()
            subprocess.run(step.argv, cwd=cwd, env=command_env(dict(step.env)),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            per[step.name] = time.perf_counter() - t
        return time.perf_counter() - t0, per
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def library(spec, target, options) -> tuple[float, dict[str, float]]:
    """(total wall, wall per command as the capture recorded it)"""
    t0 = time.perf_counter()
    result, _bundle = capture(spec, target, options)
    return time.perf_counter() - t0, {c.step: c.wall_s for c in result.commands}


def cli(spec_path: Path, bundles: Path) -> tuple[float, dict[str, float]]:
    """(total wall, wall per command as the capture recorded it)"""
    before = set(bundles.iterdir())
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cli", "capture", str(spec_path), "--native", "--quiet",
                    "--bundles", str(bundles)], cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t0
    (made,) = [p for p in bundles.iterdir() if p not in before and not p.name.startswith(".")]
    manifest = json.loads((made / "manifest.json").read_text())
    return wall, {c["step"]: c["wall_s"] for c in manifest["commands"]}


def report(name: str, runs: list, bare_t: list[float]) -> None:
    times = [t for t, _per in runs]
    own = [t - sum(per.values()) for t, per in runs]
    b, mb = min(bare_t), statistics.median(bare_t)
    f, mf = min(times), statistics.median(times)
    print(f"  {name:8} capture:  best {f:6.2f} s, median {mf:6.2f} s   runs: "
          + ", ".join(f"{x:.2f}" for x in times))
    print(f"           overhead on the totals: best {100 * (f - b) / b:+.1f} %, median "
          f"{100 * (mf - mb) / mb:+.1f} %;  own time: median {statistics.median(own):.2f} s = "
          f"{100 * statistics.median(own) / mb:.1f} % of the bare median (goal: <= 5 %)   runs: "
          + ", ".join(f"{x:.2f}" for x in own))


def main() -> None:
    spec_path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "manifests/cli-flags-003-phase-j.toml"
    spec = load_spec(spec_path)
    target = load_target(spec.target)
    bundles = Path(tempfile.mkdtemp(prefix="nb-bench-bundles-"))
    options = CaptureOptions(repo=ROOT, bundles=bundles)
    try:
        library(spec, target, options)  # imports and first-use costs, as a long-lived tool has
        bare_runs, lib_runs, cli_runs = [], [], []
        for _ in range(ROUNDS):
            bare_runs.append(bare(spec, target, options))
            lib_runs.append(library(spec, target, options))
            cli_runs.append(cli(spec_path, bundles))
        bare_t = [t for t, _per in bare_runs]
        print(f"capture overhead ({spec.name}, target {target.name}), {ROUNDS} rounds:")
        print(f"  bare commands (build + engines): best {min(bare_t):6.2f} s, median "
              f"{statistics.median(bare_t):6.2f} s   runs: " + ", ".join(f"{x:.2f}" for x in bare_t))
        report("library", lib_runs, bare_t)
        report("CLI", cli_runs, bare_t)
        steps = list(bare_runs[0][1])
        print("  per command, median wall bare -> library -> CLI: " + ", ".join(
            f"{s} {statistics.median(p[s] for _t, p in bare_runs):.2f} -> "
            f"{statistics.median(p.get(s, float('nan')) for _t, p in lib_runs):.2f} -> "
            f"{statistics.median(p.get(s, float('nan')) for _t, p in cli_runs):.2f}"
            for s in steps))
    finally:
        shutil.rmtree(bundles, ignore_errors=True)


if __name__ == "__main__":
    main()
