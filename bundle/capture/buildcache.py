"""The C build cache: a build step whose command, sources and compiler are the same as an earlier
one's reuses what that build wrote instead of compiling again (bisect and suites capture many
commits or runs whose C side did not change). A spec's ``prepare-inputs`` step goes through the
same cache when its sources are known (``python -m MODULE``: the module's package, see
bundle.capture.plan); its "compiler" is then the interpreter. A prepare command whose sources
cannot be named is never cached: what it reads is unknown.

The key is sha256 over
- the step's argv TEMPLATE (``{repo}``, ``{scratch}`` kept: scratch paths differ every capture),
- the step's own env (the profile's; not the inherited allow-list, whose OMP_NUM_THREADS or TMPDIR
  differ between Dask workers and say nothing about what the compiler makes),
- each declared source file (``Step.sources``) by path and sha256,
- the compiler's identity: the resolved ``argv[0]`` (through the command's PATH), its binary's
  sha256 and the first line of ``argv[0] --version``; computed once per process and binary.

An entry ``<cache>/<key>/`` holds ``record.json`` (the original build's CommandRecord, the command
that really made the binary), ``logs/<step>.stdout|.stderr`` and ``outputs/`` (the files the build
wrote under its cwd). It is made in a temporary directory and renamed into place, under an
``flock`` on ``<cache>/<key>.lock`` so parallel processes build once. A build that ran and failed
is cached too (an unbuildable commit is tried once); one that timed out or could not start is not
(that says more about the machine than the sources).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from bundle.capture.environment import command_env
from bundle.capture.plan import Step
from bundle.capture.sources import package_files
from bundle.model.hashing import sha256_file
from bundle.model.records import CommandRecord, FileDigest

RECORD = "record.json"
_COMPILERS: dict[tuple[str, int, int], dict] = {}


@dataclass(frozen=True)
class Cached:
    """What one build step got from the cache: its record and whether it was reused."""

    record: CommandRecord
    key: str
    hit: bool

    @property
    def note(self) -> str | None:
        if not self.hit:
            return None
        if self.record.role == "prepare":
            return (f"{self.record.step}: reused the cached inputs {self.key[:12]} "
                    f"(same command, same module sources, same interpreter)")
        return (f"{self.record.step}: reused the cached build {self.key[:12]} "
                f"(same command, sources and compiler)")


def compiler_identity(program: str, path_env: str | None) -> dict:
    """The resolved program, its sha256 and its ``--version`` first line (memoised per process
    by path, size and mtime)."""
    found = shutil.which(program, path=path_env)
    if found is None:
        return {"program": program, "path": None}
    real = os.path.realpath(found)
    st = os.stat(real)
    memo = (real, st.st_size, st.st_mtime_ns)
    if memo not in _COMPILERS:
        _COMPILERS[memo] = {"program": program, "path": real, "sha256": sha256_file(Path(real))[1],
                            "version": _version_line(real)}
    return _COMPILERS[memo]


def _version_line(program: str) -> str | None:
    try:
        out = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=20,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def build_key(step: Step, roots: Mapping[str, str]) -> str:
    """The cache key of one build step (see the module docstring)."""
    sources = []
    for root, listed in step.sources:
        base = Path(roots["repo"]) if root == "repo" else Path(roots["scratch"]) / "inputs"
        for rel in package_files(base, listed) if root == "repo" else [listed]:
            f = base / rel
            sources.append([root, rel, sha256_file(f)[1] if f.is_file() else None])
    env = command_env(dict(step.env))
    material = {"step": step.name, "argv_template": list(step.argv_template), "env": sorted(step.env),
                "sources": sources,
                "compiler": compiler_identity(step.argv[0], env.get("PATH")) if step.argv else None}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def cached_build(step: Step, staging: Path, roots: Mapping[str, str], cache: Path,
                 run: Callable[[], CommandRecord]) -> Cached:
    """The build step's record: from the cache when its key is there (outputs copied into the
    step's cwd, logs into ``staging/logs``), else ``run()`` and store what it made."""
    key = build_key(step, roots)
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{key}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        entry = cache / key
        if (entry / RECORD).is_file():
            return Cached(record=_restore(entry, step, staging), key=key, hit=True)
        record = run()
        if record.exit_code is not None and not record.timed_out:
            _store(entry, step, staging, record)
        return Cached(record=record, key=key, hit=False)


def _store(entry: Path, step: Step, staging: Path, record: CommandRecord) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{entry.name[:12]}-", dir=entry.parent))
    try:
        (tmp / "logs").mkdir()
        for d in (record.stdout, record.stderr):
            if d is not None and (staging / d.path).is_file():
                shutil.copyfile(staging / d.path, tmp / "logs" / Path(d.path).name)
        for out in record.outputs:
            dst = tmp / "outputs" / out.path
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(step.cwd) / out.path, dst)  # keeps the executable bit
        (tmp / RECORD).write_text(json.dumps(record_data(record), indent=1) + "\n")
        os.rename(tmp, entry)
    except OSError:
        # A cache that cannot be written is no cache: the build itself stands.
        shutil.rmtree(tmp, ignore_errors=True)


def _restore(entry: Path, step: Step, staging: Path) -> CommandRecord:
    record = record_from_data(json.loads((entry / RECORD).read_text()))
    cwd = Path(step.cwd)
    cwd.mkdir(parents=True, exist_ok=True)
    for out in record.outputs:
        dst = cwd / out.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(entry / "outputs" / out.path, dst)
    (staging / "logs").mkdir(parents=True, exist_ok=True)
    for d in (record.stdout, record.stderr):
        if d is not None:
            shutil.copyfile(entry / "logs" / Path(d.path).name, staging / d.path)
    return record


def _file(d: FileDigest | None) -> dict | None:
    return None if d is None else {"path": d.path, "size": d.size, "sha256": d.sha256,
                                   "root": d.root}


def record_data(r: CommandRecord) -> dict:
    """A CommandRecord as plain JSON data (every field, so it reads back the same)."""
    return {"step": r.step, "role": r.role, "engine": r.engine, "argv": list(r.argv),
            "cwd": r.cwd, "env": [list(kv) for kv in r.env], "start_utc": r.start_utc,
            "end_utc": r.end_utc, "wall_s": r.wall_s, "exit_code": r.exit_code,
            "timed_out": r.timed_out, "error": r.error, "peak_rss_kb": r.peak_rss_kb,
            "stdout": _file(r.stdout), "stderr": _file(r.stderr),
            "inputs": [_file(d) for d in r.inputs], "outputs": [_file(d) for d in r.outputs]}


def record_from_data(data: Mapping) -> CommandRecord:
    def fd(d):
        return None if d is None else FileDigest(path=d["path"], size=d["size"],
                                                 sha256=d["sha256"], root=d["root"])

    return CommandRecord(
        step=data["step"], role=data["role"], engine=data["engine"], argv=tuple(data["argv"]),
        cwd=data["cwd"], env=tuple(tuple(kv) for kv in data["env"]), start_utc=data["start_utc"],
        end_utc=data["end_utc"], wall_s=data["wall_s"], exit_code=data["exit_code"],
        timed_out=data["timed_out"], error=data["error"], peak_rss_kb=data["peak_rss_kb"],
        stdout=fd(data["stdout"]), stderr=fd(data["stderr"]),
        inputs=tuple(fd(d) for d in data["inputs"]), outputs=tuple(fd(d) for d in data["outputs"]))
