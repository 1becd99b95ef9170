"""In-container against native wall time for a users' port that calls torch.compile (issue 17).

The fixture is tests/test_inductor.py's: a nanobragg-layout checkout whose PyTorch package runs the
solid angle through torch.compile, so inductor compiles C++ on the first run. Printed, per round
(interleaved, the machine is shared): the whole capture's wall and the run-py step's wall for
  native cold      fresh scratch, so an empty inductor cache: the first-compile cost is in it
  native warm      TORCHINDUCTOR_CACHE_DIR given explicitly, already filled by an earlier run
  container cold   --in-container (a fresh container and scratch: always cold)
and the ratios in-container / native (cold against cold) and the first-compile cost (cold minus
warm run-py). Goal: in-container <= 1.2 x native. Nothing is asserted. NB_BENCH_ROUNDS (default 2).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_inductor import PRESENT, SPEC, _repo  # noqa: E402  (the very fixture the tests use)


def capture(repo: Path, bundles: Path, *extra: str, env: dict | None = None) -> tuple[float, float]:
    """(whole capture wall s, run-py step wall s) of one CLI capture."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "cli", "capture", str(SPEC), "--target", "nanobragg",
                           "--repo", str(repo), "--bundles", str(bundles), "--json", "--quiet", *extra],
                          cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"inductor_bench: capture {' '.join(extra)} exited {proc.returncode}: "
                         f"{proc.stderr.strip().splitlines()[-1:]}")
    out = json.loads(proc.stdout)
    manifest = json.loads((Path(out["bundle"]) / "manifest.json").read_text())
    run_py = next(c for c in manifest["commands"] if c["step"] == "run-py")
    return wall, run_py["wall_s"]


def main() -> None:
    rounds = int(os.environ.get("NB_BENCH_ROUNDS", "2"))
    with tempfile.TemporaryDirectory(prefix="nb-inductor-bench-") as tmp:
        tmp = Path(tmp)
        repo = _repo(tmp / "fixture", PRESENT, compiled=True)
        bundles = tmp / "bundles"
        warm_env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp / "inductor-warm")}
        capture(repo, bundles, "--native", env=warm_env)  # fills the explicit cache
        capture(repo, bundles, "--in-container")  # the image exists (built if missing) before timing
        got: dict[str, list[tuple[float, float]]] = {"native cold": [], "native warm": [],
                                                       "container cold": []}
        for i in range(rounds):
            got["native cold"].append(capture(repo, bundles, "--native"))
            got["native warm"].append(capture(repo, bundles, "--native", env=warm_env))
            got["container cold"].append(capture(repo, bundles, "--in-container"))
            print(f"   round {i + 1}: " + "; ".join(
                f"{k} {v[-1][0]:.1f} s (run-py {v[-1][1]:.1f} s)" for k, v in got.items()), flush=True)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(p for _, p in v))
           for k, v in got.items()}
    for k, (wall, py) in med.items():
        print(f"   {k:15s} median capture {wall:6.1f} s   run-py {py:6.1f} s")
    ratio = med["container cold"][0] / med["native cold"][0]
    ratio_py = med["container cold"][1] / med["native cold"][1]
    print(f"   in-container / native (cold): capture {ratio:.2f}x, run-py {ratio_py:.2f}x  (goal <= 1.2x: "
          f"{'met' if ratio <= 1.2 else 'not met'})")
    print(f"   first-compile cost (native run-py cold - warm): {med['native cold'][1] - med['native warm'][1]:.1f} s")


if __name__ == "__main__":
    main()
