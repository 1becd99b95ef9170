"""Real captures of the minibragg pair for the diff and gate tests: a copy of this checkout's
minibragg/ in a tmp git repository (``--repo`` points a capture at it), optionally with a fault
patched into the PyTorch engine, captured through the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "manifests" / "minibragg-roi.toml"

# The fluence ten times too high in the PyTorch engine: far beyond rtol 1e-6 (tests/test_roots_faults.py).
FLUENCE = ("config.py", "        return config.flux * config.exposure / (beam_m * beam_m)\n",
           "        return 10.0 * config.flux * config.exposure / (beam_m * beam_m)\n")


def make_repo(root: Path, fault: tuple[str, str, str] | None = None) -> Path:
    root.mkdir(parents=True)
    shutil.copytree(REPO / "minibragg", root / "minibragg",
                    ignore=shutil.ignore_patterns("__pycache__"))
    if fault:
        inject(root, fault)
    git = ["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "fixture"], check=True)
    return root


def inject(repo: Path, fault: tuple[str, str, str]) -> None:
    name, old, new = fault
    path = repo / "minibragg" / name
    text = path.read_text()
    assert old in text, f"{name}: the fault's anchor is gone"
    path.write_text(text.replace(old, new))


def cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd or REPO, capture_output=True,
                          text=True, timeout=300, env=env)


def capture(repo: Path, bundles: Path, spec: Path = SPEC) -> Path:
    proc = cli("capture", str(spec), "--repo", str(repo), "--bundles", str(bundles), "--json")
    assert proc.returncode in (0, 1), proc.stderr
    return Path(json.loads(proc.stdout)["bundle"])
