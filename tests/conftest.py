"""Shared fixtures: the repository root, a real gcc build of minibragg's C engine, the venv python."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MINIBRAGG_C = REPO_ROOT / "minibragg" / "minibragg.c"
# The flags nanoBragg's users build with (nanobragg-facts.md §1), so our C engine is compiled alike.
C_FLAGS = ["-O2", "-fno-fast-math", "-ffp-contract=off", "-fopenmp", "-Wall", "-Wextra"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def minibragg_c(tmp_path_factory) -> Path:
    """A freshly compiled minibragg C binary (real gcc, once per test session)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is required for the test suite and was not found on PATH")
    out = tmp_path_factory.mktemp("minibragg-build") / "minibragg"
    proc = subprocess.run(
        [gcc, *C_FLAGS, "-o", str(out), str(MINIBRAGG_C), "-lm"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def docker_engine():
    """A Docker engine that answers; the test is skipped, saying so, only when none does."""
    from bundle.container import docker_seam as container
    from bundle.model.errors import ContainerError

    try:
        return container.connect()
    except ContainerError as exc:
        detail = str(exc).removeprefix("no Docker engine answers").strip()
        pytest.skip(f"no Docker engine answers: {detail}")
