"""Shared by the replay and verify hostile tests: real captures (the built-in minibragg target
and the tiny test engines), and forging a copy of a bundle the way a hostile user would."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parents[2]
ROI_SPEC = REPO_ROOT / "manifests" / "minibragg-roi.toml"


def clean_env() -> dict[str, str]:
    # What a user's shell hands over; minibragg imported in a test worker leaks allow-listed vars.
    keep = ("PATH", "HOME", "TMPDIR")
    return {"LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            **{k: os.environ[k] for k in keep if k in os.environ}}


def nb(*args: str, cwd: Path, timeout: float = 600,
       env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**clean_env(), **(env_extra or {})})


def bundles_in(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def capture_roi(where: Path) -> Path:
    """One real capture of manifests/minibragg-roi.toml (built-in target, prepare command)."""
    proc = nb("capture", str(ROI_SPEC), "--native", "--quiet", "--bundles", str(where / "b"),
              cwd=where)
    assert proc.returncode == 0, proc.stderr
    [bundle] = bundles_in(where / "b")
    return bundle


def forge(bundle: Path, dst: Path, edit: Callable[[dict], None]) -> Path:
    """A copy of ``bundle`` whose manifest.json was edited (manifest.json holds no hash of itself,
    so the copy still passes the byte check)."""
    copy = dst / bundle.name
    shutil.copytree(bundle, copy)
    data = json.loads((copy / "manifest.json").read_text())
    edit(data)
    (copy / "manifest.json").write_text(json.dumps(data, indent=2))
    return copy


def relist(bundle: Path, rel: str) -> None:
    """After a file was rewritten: put its new size and sha256 into the manifest, as a forger
    who knows the format would."""
    data = json.loads((bundle / "manifest.json").read_text())
    raw = (bundle / rel).read_bytes()
    for f in data["files"]:
        if f["path"] == rel:
            f["size"], f["sha256"] = len(raw), hashlib.sha256(raw).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(data, indent=2))


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]
