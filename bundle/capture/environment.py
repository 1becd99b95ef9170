"""What the machine was: host, OS, CPU, toolchain versions, the repo's git state, the container.

Also the environment allow-list: a command we run sees, and a manifest records, only these
variables, so no secret in the user's shell can leak into a bundle.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Mapping

ALLOWED = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
           "KMP_DUPLICATE_LIB_OK", "CUDA_VISIBLE_DEVICES", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
           "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")
# A profile points these caches into the capture's scratch area (a fresh, writable place even on a
# read-only root file system, and no getpass lookup of a uid the image has no passwd entry for);
# a directory the user names on purpose wins, so a warm cache can be reused when they want it.
USER_WINS = ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")
ALLOWED_PREFIXES = ("NB_",)
# NB_* is allowed so users can steer their harness (NB_C_BIN), but a name that looks like a
# credential is recorded redacted even then.
SECRET = re.compile(r"(TOKEN|SECRET|PASSW|PASSWD|KEY|CREDENTIAL|AUTH)", re.IGNORECASE)
CONTAINER_VARS = {
    "image_id": "NB_CONTAINER_IMAGE_ID",
    "image_tag": "NB_CONTAINER_IMAGE_TAG",
    "repo_digests": "NB_CONTAINER_REPO_DIGESTS",
    "dockerfile_sha256": "NB_CONTAINER_DOCKERFILE_SHA256",
    "lock_sha256": "NB_CONTAINER_LOCK_SHA256",
    "engine_version": "NB_CONTAINER_ENGINE_VERSION",
    "build_args": "NB_CONTAINER_BUILD_ARGS",
}


def allowed(name: str) -> bool:
    return name in ALLOWED or name.startswith(ALLOWED_PREFIXES)


def command_env(extra: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a recorded command runs with: allow-listed inherited variables + extra."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if allowed(k)}
    env.update({k: v for k, v in extra.items() if not (k in USER_WINS and env.get(k))})
    return env


def redacted(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, "<redacted>" if SECRET.search(k) else v) for k, v in env.items()))


def _first_line(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state(repo: Path) -> dict:
    """Commit and a hash of uncommitted changes (tracked diff plus untracked file names+contents)."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, timeout=60)

    if shutil.which("git") is None:
        return {"repo_commit": None, "repo_dirty": None, "repo_diff_sha256": None}
    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return {"repo_commit": None, "repo_dirty": None, "repo_diff_sha256": None}
    diff = git("diff", "HEAD", "--binary").stdout
    untracked = git("ls-files", "--others", "--exclude-standard", "-z").stdout
    h = hashlib.sha256(diff)
    for name in sorted(n for n in untracked.split(b"\0") if n):
        h.update(b"\0" + name + b"\0")
        try:
            with open(repo / name.decode(errors="surrogateescape"), "rb") as fh:
                h.update(hashlib.file_digest(fh, "sha256").digest())
        except OSError:
            pass
    dirty = bool(diff) or bool(untracked)
    return {
        "repo_commit": head.stdout.decode().strip(),
        "repo_dirty": dirty,
        "repo_diff_sha256": h.hexdigest() if dirty else None,
    }


def container_info(env: Mapping[str, str] | None = None) -> dict | None:
    """The image we run in, as the host side passed it in through NB_CONTAINER_* variables."""
    env = os.environ if env is None else env
    if "NB_CONTAINER_IMAGE_ID" not in env:
        return None
    info = {field: env.get(var) for field, var in CONTAINER_VARS.items()}
    info["repo_digests"] = [d for d in (info["repo_digests"] or "").split(",") if d]
    return info


def torch_cuda_version() -> str | None:
    """``torch.version.cuda`` of the installed torch, read from torch/version.py without importing
    torch (seconds); None for a CPU build or no torch."""
    from importlib.util import find_spec

    try:
        spec = find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        try:
            text = (Path(root) / "version.py").read_text()
        except OSError:
            continue
        found = re.search(r"^cuda\s*(?::\s*[^=]+)?=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
        return found.group(1) if found else None
    return None


def gpu_driver_version() -> str | None:
    """The NVIDIA kernel driver's version (/proc/driver/nvidia/version), None without one."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return None
    found = re.search(r"Kernel Module(?: for [^ ]+)?\s+([0-9][0-9.]*)", text)
    return found.group(1) if found else text.splitlines()[0].strip() if text.strip() else None


def gpu_present() -> bool:
    """Whether this machine has an NVIDIA GPU, from its device nodes (no torch import)."""
    return Path("/dev/nvidiactl").exists() or Path("/dev/dxg").exists()


def collect(python: str, cuda: Mapping | None = None) -> dict:
    """Host facts. Versions of torch/numpy are read from package metadata (no import, no cost)."""
    gcc = _first_line(["gcc", "-dumpfullversion"])
    cuda = {**(cuda or {"available": None, "device": None}),
            "torch_cuda": torch_cuda_version(), "driver": gpu_driver_version()}
    return {
        "host": platform.node(),
        "os": f"{platform.system()} {platform.release()} ({platform.platform()})",
        "cpu": _cpu(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "versions": {
            "python": platform.python_version(),
            "python_executable": python,
            "gcc": gcc,
            "torch": _version("torch"),
            "numpy": _version("numpy"),
            "nb_evidence": _version("nb-evidence"),
        },
        "cuda": cuda,
        "container": container_info(),
    }
