"""What the capture-side hostile tests share: a throw-away git checkout with the tiny test engines
(a C program built by real gcc, a Python program), and the real CLI run in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ENGINES = Path(__file__).resolve().parent.parent / "engines"
PROFILE = ENGINES / "tiny-profile.toml"
REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC = """\
name = "tiny"
target = "{profile}"
pixel = [3, 5]
args = {args}
{extra}
"""
ARGS = ["-fluence", "1e18", "-detpixels", "8", "-floatfile", "img.bin"]
# A profile whose C engine is the tiny one and whose py engine runs ``code`` (python -c): a slow
# or misbehaving engine for the signal and container tests.
SLOW_PROFILE = """\
name = "slow"
[[engines]]
name = "c"
prefix = "TRACE_C:"
build = ["gcc", "-O2", "-o", "{{build}}/tiny", "{{repo}}/tiny.c", "-lm"]
run = ["{{build}}/tiny", "{{args}}"]
trace = ["-trace_pixel", "{{slow}}", "{{fast}}"]
[[engines]]
name = "py"
prefix = "TRACE_PY:"
run = ["{{python}}", "-c", "{code}", "{{args}}"]
trace = []
"""


def spec_text(args=ARGS, extra: str = "", profile: Path = PROFILE) -> str:
    quoted = "[" + ", ".join(f'"{a}"' for a in args) + "]"
    return SPEC.format(profile=profile, args=quoted, extra=extra)


def make_repo(root: Path, args=ARGS, extra: str = "") -> Path:
    repo = root / "repo"
    repo.mkdir()
    (repo / "tiny.c").write_bytes((ENGINES / "tiny.c").read_bytes())
    (repo / "tiny.py").write_bytes((ENGINES / "tiny.py").read_bytes())
    (repo / "spec.toml").write_text(spec_text(args, extra))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t",
                    "commit", "-qm", "init"], check=True)
    return repo


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def cli_env(**extra: str) -> dict[str, str]:
    # the checkout's cli/ and bundle/, whatever the cwd
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def run_cli(*args: str, cwd: Path, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli_argv(*args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=cli_env(**env))


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The refusal: exit 2, no traceback, exactly one line on stderr, ``error: ...``."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def bundles_in(directory: Path) -> list[Path]:
    if not directory.exists():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def leftovers(bundles: Path) -> list[str]:
    """Whatever a capture left in its bundles directory besides finished bundles."""
    staging = bundles / ".staging"
    return sorted(p.name for p in staging.iterdir()) if staging.exists() else []
