"""Which repo files an engine *is*: the sources its profile lists and, for a Python source that
lives in a package, every ``*.py`` of that package (the engine imports them: a fault in
``config.py`` is a different engine even though the profile lists only ``__main__.py``). One
rule for what a capture hashes into its run records, what the build cache keys on, and what a
suite's run key says changed."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable


def package_files(repo: Path, rel: str) -> list[str]:
    """``rel`` and, when it is a ``.py`` file inside a package directory of the repo (one with
    ``__init__.py`` or ``__main__.py``, not the repo root itself), the package's other ``*.py``
    files, sorted; ``__pycache__`` left out."""
    path = repo / rel
    package = path.parent
    if not rel.endswith(".py") or package.resolve() == repo.resolve() or not package.is_dir() \
            or not ((package / "__init__.py").is_file() or (package / "__main__.py").is_file()):
        return [rel]
    found = sorted(p.relative_to(repo).as_posix() for p in package.rglob("*.py")
                   if "__pycache__" not in p.parts and p.is_file())
    return [rel] + [f for f in found if f != rel]


def engine_files(repo: Path, sources: Iterable[str]) -> list[str]:
    """Every file of ``sources`` expanded by package_files, each once, in order."""
    out: list[str] = []
    for rel in sources:
        for f in package_files(repo, rel):
            if f not in out:
                out.append(f)
    return out
