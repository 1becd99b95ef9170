#!/usr/bin/env python3
"""Fill a wheelhouse for the nb-evidence images and keep its hash lock.

    lock-wheels.py wheels      [--flavor cpu|cuda]   fetch the locked wheels; re-lock first when the
                                                     lock is missing, incomplete or its inputs changed
    lock-wheels.py lock        [--flavor cpu|cuda]   resolve again, download, rewrite the lock
    lock-wheels.py check       [--flavor cpu|cuda]   exit 1 unless the lock is complete and current

Flavors:
  cpu   wheels/*.whl, lock wheels/requirements.lock: requirements.txt and requirements-target.txt
        (the users' port's run-time imports: fabio, scipy, ...) under constraints.txt (torch
        2.13.0+cpu, which pip finds through the machine's find-links), plus pyproject.toml's
        [build-system] requires, for CPython 3.11 on manylinux x86_64 up to glibc 2.36 (Debian
        bookworm, the image's base).
  cuda  build/wheels-cuda/*.whl, lock wheels/requirements-cuda.lock: the same set with PyPI's default
        Linux torch 2.13.0 build (CUDA 13.0 runtime in nvidia-* wheels) instead of +cpu. Several GB;
        torch's own wheel must match the sha256 pinned below, established before any lock existed.
        pip runs --isolated against https://pypi.org/simple (NB_CUDA_INDEX_URL overrides; PIP_CERT
        is passed on), so no find-links copy of torch+cpu can stand in for it.

Every lock line is `name==version --hash=sha256:HEX`, hashed here with hashlib over the file pip
saved. The lock's header records a sha256 of its inputs, so a changed requirements.txt,
requirements-target.txt, constraints.txt or build-system table is seen and the lock re-resolved.
Only the standard library and `python -m pip` are used. Messages go to stderr, one line each;
exit 1 on failure.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Debian bookworm has glibc 2.36: every manylinux tag up to it runs in the image.
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]
TARGET_ARGS = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
for _platform in PLATFORMS:
    TARGET_ARGS += ["--platform", _platform]

# PyPI's torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl (CUDA 13.0 build), as pip reported it
# from the index's own hash when it fetched that file once to read its metadata (see the lock).
CUDA_TORCH = "torch==2.13.0"
CUDA_TORCH_SHA256 = "60fcdcb2f3876e21146cb4524ef06397d727ca9ad5f020818547e25075fe3cb7"

LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s+--hash=sha256:([0-9a-f]{64})\s*$")
INPUTS = re.compile(r"^# inputs-sha256: ([0-9a-f]{64})\s*$", re.M)


class LockFailure(Exception):
    pass


@dataclass(frozen=True)
class Flavor:
    name: str
    lock: Path
    dest: Path
    header: str

    def pip_options(self) -> list[str]:
        """For cuda: pip without this machine's config, whose find-links hold torch 2.13.0+cpu,
        which satisfies `torch==2.13.0` too (a local version label) and would win the resolution."""
        if self.name != "cuda":
            return []
        options = ["--isolated", "--index-url", os.environ.get("NB_CUDA_INDEX_URL", "https://pypi.org/simple")]
        if os.environ.get("PIP_CERT"):
            options += ["--cert", os.environ["PIP_CERT"]]
        return options

    def requirements(self) -> list[str]:
        """Top-level requirements: requirements.txt + requirements-target.txt (torch swapped for
        cuda) + build backend."""
        reqs = [ln for ln in _lines(REPO / "requirements.txt")]
        # The target runtime (the users' port: fabio, scipy, ...), images only; a name already in
        # requirements.txt is kept once (the same pin, or pip refuses the double requirement).
        target = REPO / "requirements-target.txt"
        if target.exists():
            seen = {_name(r) for r in reqs}
            reqs += [r for r in _lines(target) if _name(r) not in seen]
        if self.name == "cuda":
            reqs = [r for r in reqs if _name(r) != "torch"] + [CUDA_TORCH]
        pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
        reqs += list(pyproject.get("build-system", {}).get("requires", []))
        return reqs

    def constraints(self) -> list[str]:
        path = REPO / "constraints.txt"
        cons = _lines(path) if path.exists() else []
        if self.name == "cuda":
            # constraints.txt pins torch==2.13.0+cpu and the dev venv's closure; the CUDA build
            # brings its own dependency pins, so only the non-torch pins carry over.
            cons = [c for c in cons if _name(c) != "torch"]
        return cons

    def inputs_sha256(self) -> str:
        text = "\n".join(["requirements:", *self.requirements(), "constraints:", *self.constraints()])
        return hashlib.sha256(text.encode()).hexdigest()


FLAVORS = {
    "cpu": Flavor(
        "cpu",
        REPO / "wheels" / "requirements.lock",
        REPO / "wheels",
        "nb-evidence CPU image wheelhouse (Dockerfile): every wheel it installs, with its sha256.",
    ),
    "cuda": Flavor(
        "cuda",
        REPO / "wheels" / "requirements-cuda.lock",
        REPO / "build" / "wheels-cuda",
        "nb-evidence CUDA image wheelhouse (Dockerfile.cuda): every wheel it installs, with its sha256.",
    ),
}


def _lines(path: Path) -> list[str]:
    out = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[\s@]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _size(paths) -> str:
    total = sum(p.stat().st_size for p in paths)
    return f"{total / 1e6:.1f} MB" if total < 1e9 else f"{total / 1e9:.2f} GB"


def _wheel_name_version(path: Path) -> tuple[str, str]:
    parts = path.name[: -len(".whl")].split("-")
    if len(parts) < 5:
        raise LockFailure(f"{path.name}: not a wheel file name (name-version-python-abi-platform.whl)")
    return parts[0].lower().replace("_", "-"), parts[1]


def _log(message: str) -> None:
    print(f"lock-wheels: {message}", file=sys.stderr)


def _pip(args: list[str], options: list[str]) -> None:
    # options after the subcommand: pip takes its general ones (--isolated, --cert) there too, but
    # the index ones (--index-url) only there.
    cmd = [sys.executable, "-m", "pip", args[0], *options, *args[1:]]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = [ln for ln in proc.stdout.splitlines() if ln.strip() and not ln.startswith("WARNING: Location")]
        raise LockFailure("pip failed: " + " | ".join(tail[-6:]))


def read_lock(flavor: Flavor) -> tuple[dict[str, str], str | None, bool]:
    """(sha256 -> 'name==version', inputs-sha256 or None, complete?) of a lock file."""
    if not flavor.lock.exists():
        return {}, None, False
    text = flavor.lock.read_text()
    found = INPUTS.search(text)
    entries: dict[str, str] = {}
    complete = "# status: incomplete" not in text
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = LINE.match(line)
        if match is None:
            complete = False
            continue
        entries[match.group(3)] = f"{match.group(1)}=={match.group(2)}"
    return entries, (found.group(1) if found else None), complete and bool(entries)


def prune(flavor: Flavor, keep: set[str]) -> None:
    for path in flavor.dest.glob("*.whl"):
        if _sha256(path) not in keep:
            path.unlink()


def lock(flavor: Flavor) -> None:
    flavor.dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lock-wheels-") as scratch:
        reqs = Path(scratch) / "requirements.in"
        reqs.write_text("\n".join(flavor.requirements()) + "\n")
        cons = Path(scratch) / "constraints.in"
        cons.write_text("\n".join(flavor.constraints()) + "\n")
        # A fresh directory, so the lock names exactly what this resolution chose.
        got = Path(scratch) / "wheels"
        _log(f"resolving {flavor.name} wheels for cp311 manylinux x86_64 (pip download) ...")
        _pip(
            ["download", "--progress-bar", "off", "-d", str(got), "-r", str(reqs), "-c", str(cons), *TARGET_ARGS],
            flavor.pip_options(),
        )
        rows = []
        for path in sorted(got.glob("*.whl")):
            name, version = _wheel_name_version(path)
            sha = _sha256(path)
            if flavor.name == "cuda" and name == "torch" and sha != CUDA_TORCH_SHA256:
                raise LockFailure(f"{path.name} has sha256 {sha}, not the pinned {CUDA_TORCH_SHA256}")
            rows.append((name, version, sha))
            target = flavor.dest / path.name
            if not target.exists() or _sha256(target) != sha:
                path.replace(target)
    if not any(name == "torch" for name, _, _ in rows):
        raise LockFailure("the resolution holds no torch wheel")
    body = [f"{name}=={version} --hash=sha256:{sha}" for name, version, sha in rows]
    header = [
        f"# {flavor.header}",
        "# Generated by scripts/lock-wheels.py (make wheels-lock / make wheels-cuda-lock); do not edit.",
        "# Target: CPython 3.11 (cp311), manylinux x86_64 up to glibc 2.36 (Debian bookworm).",
        f"# inputs-sha256: {flavor.inputs_sha256()}",
    ]
    flavor.lock.write_text("\n".join(header + body) + "\n")
    prune(flavor, {sha for _, _, sha in rows})
    _log(
        f"wrote {flavor.lock.relative_to(REPO)} ({len(rows)} wheels) and filled {flavor.dest.relative_to(REPO)}/"
        f" ({_size(flavor.dest.glob('*.whl'))} of wheels)"
    )


def fetch(flavor: Flavor, entries: dict[str, str]) -> None:
    flavor.dest.mkdir(parents=True, exist_ok=True)
    have = {_sha256(p) for p in flavor.dest.glob("*.whl")}
    missing = set(entries) - have
    if missing:
        _log(f"fetching {len(missing)} of {len(entries)} locked {flavor.name} wheels (hash-checked) ...")
        _pip(
            [
                "download", "--progress-bar", "off", "--no-deps", "--require-hashes",
                "-d", str(flavor.dest), "-r", str(flavor.lock), *TARGET_ARGS,
            ],
            flavor.pip_options(),
        )
    have = {_sha256(p) for p in flavor.dest.glob("*.whl")}
    still = set(entries) - have
    if still:
        names = ", ".join(sorted(entries[s] for s in still))
        raise LockFailure(f"after download, no wheel in {flavor.dest} matches the lock for: {names}")
    prune(flavor, set(entries))
    _log(
        f"{flavor.dest.relative_to(REPO)}/ holds the {len(entries)} wheels of {flavor.lock.relative_to(REPO)}"
        f" ({_size(flavor.dest.glob('*.whl'))})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["wheels", "lock", "check"])
    parser.add_argument("--flavor", choices=sorted(FLAVORS), default="cpu")
    args = parser.parse_args(argv)
    flavor = FLAVORS[args.flavor]
    try:
        entries, inputs, complete = read_lock(flavor)
        current = complete and inputs == flavor.inputs_sha256()
        if args.action == "check":
            if not current:
                why = "missing" if not entries else ("incomplete" if not complete else "stale (inputs changed)")
                _log(f"{flavor.lock.relative_to(REPO)} is {why}; run: make {'wheels-lock' if flavor.name == 'cpu' else 'wheels-cuda-lock'}")
                return 1
            return 0
        if args.action == "lock" or not current:
            if args.action == "wheels":
                why = "missing" if not entries else ("incomplete" if not complete else "stale (inputs changed)")
                _log(f"{flavor.lock.relative_to(REPO)} is {why}: re-resolving; commit the new lock")
            lock(flavor)
            return 0
        fetch(flavor, entries)
        return 0
    except LockFailure as exc:
        _log(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
