"""bisect over 32 commits of the minibragg ROI spec: wall and rounds on one worker against
(⌈log2 32⌉ + 2) × one capture's wall, and the rounds on two workers (issue 14's speed goal).

The history (tests/bisect_repo.py) is minibragg as shipped, then 32 commits: docs-only ones,
C-comment-only ones (the build cache rebuilds for each distinct C file only) and one that injects
a fault into the PyTorch engine. One capture's wall is a plain capture of the same spec on the
same repository, first without and then with a warm build cache (a probe that reuses the binary
costs the second).

Prints figures; asserts nothing.

    python bench/bisect_bench.py
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bisect_repo import ROI_SPEC, make_history  # noqa: E402
from bundle.bisect.model import BisectRequest  # noqa: E402
from bundle.bisect.predicate import Predicate  # noqa: E402
from bundle.bisect.run import run_bisect  # noqa: E402

N = 32
FAULT_AT = 21
KINDS = [("fault" if i == FAULT_AT else "c-comment" if i % 5 == 0 else "docs")
         for i in range(1, N + 1)]


def one_capture(repo: Path, bundles: Path, cache: str | None) -> float:
    from bundle.capture.options import CaptureOptions
    from bundle.capture.spec import load_spec
    from bundle.capture.target import load_target
    from bundle.pipeline import capture

    spec = load_spec(ROI_SPEC)
    t0 = time.perf_counter()
    capture(spec, load_target(spec.target), CaptureOptions(repo=repo, bundles=bundles,
                                                           build_cache=cache))
    return time.perf_counter() - t0


def bisect(repo: Path, bundles: Path, workers: int):
    request = BisectRequest(spec=ROI_SPEC, repo=repo, good="main~32", bad="main",
                            predicate=Predicate("verdict"), bundles=bundles, workers=workers)
    t0 = time.perf_counter()
    outcome = run_bisect(request)
    return outcome, time.perf_counter() - t0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="nb-bench-bisect-") as tmp:
        tmp = Path(tmp)
        repo, shas = make_history(tmp, KINDS)
        cold = one_capture(repo, tmp / "b", str(tmp / "cache"))
        warm = one_capture(repo, tmp / "b", str(tmp / "cache"))
        bound = math.ceil(math.log2(N)) + 2
        print(f"   one capture of {ROI_SPEC.name}: {cold:.2f} s (C built), {warm:.2f} s "
              f"(C from the build cache)")
        for workers in (1, 2):
            outcome, wall = bisect(repo, tmp / f"b{workers}", workers)
            found = outcome.commits[outcome.answer.first_bad].sha == shas[FAULT_AT]
            built = sum(p.build in ("built", "failed") for p in outcome.probes)
            print(f"   bisect over {N} commits, {workers} worker(s): {wall:.1f} s, "
                  f"{outcome.rounds} rounds, {len(outcome.probes)} probes ({built} C builds), "
                  f"first bad found: {found}")
            if workers == 1:
                print(f"     goal: <= ({bound} probes) x one capture = {bound * cold:.1f} s "
                      f"(cold) / {bound * warm:.1f} s (warm): "
                      f"{wall / (bound * cold):.2f} / {wall / (bound * warm):.2f} of it")
                one_rounds = outcome.rounds
            else:
                print(f"     rounds against one worker: {outcome.rounds} / {one_rounds} = "
                      f"{outcome.rounds / one_rounds:.2f} (k probes a round cut the range "
                      f"k+1 times: ⌈log3 31⌉ + 1 against ⌈log2 31⌉ + 1 at best)")


if __name__ == "__main__":
    main()
