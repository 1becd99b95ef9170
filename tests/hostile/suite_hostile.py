"""What the suite's hostile tests share: a suite over the tiny test engines whose py engine is
slow (it records its pid and its grandchild's, then sleeps), so runs are certainly mid-flight."""

from __future__ import annotations

from pathlib import Path

from capture_hostile import SLOW_PROFILE, make_repo

# The py engine: a pid file per run (engine pid, grandchild pid), then it sleeps ``{sleep}`` s
# and prints a trace line, so a run that is let be finishes.
ENGINE = ("import os, subprocess, sys, time; "
          "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep({sleep})']); "
          "open(os.path.join('{pids}', str(os.getpid())), 'w').write(f'{{os.getpid()}} {{child.pid}}'); "
          "time.sleep({sleep}); child.wait(); "
          "open(sys.argv[sys.argv.index('-floatfile') + 1], 'wb').write(bytes(256)); "
          "print('TRACE_PY: steps 10', flush=True)")

SUITE = """name = "slow"
target = "{profile}"

[thresholds]
corr_min = 0.5

[[cases]]
id = "c"
args = ["-fluence", "1e18", "-detpixels", "8"]
{runs}
"""


def slow_suite(root: Path, runs: int, sleep: float) -> tuple[Path, Path, Path]:
    """(the repo, the suite file, the pid directory)."""
    repo = make_repo(root)
    pids = root / "pids"
    pids.mkdir()
    profile = root / "slow.toml"
    profile.write_text(SLOW_PROFILE.format(code=ENGINE.format(pids=pids, sleep=sleep)))
    body = "".join(f'\n[[cases.runs]]\nname = "r{i}"\nargs = []\n' for i in range(runs))
    suite = root / "suite.toml"
    suite.write_text(SUITE.format(profile=profile, runs=body))
    return repo, suite, pids


def engine_pids(pids: Path) -> list[int]:
    return [int(n) for f in pids.iterdir() for n in f.read_text().split()]
