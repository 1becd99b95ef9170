"""Check a bundle against its own manifest: every listed file present with its size and sha256,
nothing else present but ``manifest.json``, and the manifest valid against the schema.

Hashing streams each file (bundle.model.hashing; never a whole file in memory) and runs files in parallel threads: hashlib releases the GIL while it digests, so a bundle's two
25 MB images are hashed at the same time.
"""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from bundle.model.hashing import sha256_file
from bundle.model.errors import BundleError
from bundle.store.schema import MANIFEST_NAME, read_manifest, validate_manifest

_MAX_THREADS = 8


@dataclass(frozen=True)
class VerifyResult:
    """What ``verify_bundle`` found. Paths are bundle-relative POSIX strings, sorted.

    missing: listed in the manifest, absent from the directory.
    changed: present but a different size or sha256 (or not a regular file).
    extra: present but not listed (``manifest.json`` itself is never extra).
    schema_problems: the manifest's departures from bundle/manifest.schema.json.
    claims: checked only when the files and schema are sound: each field of the manifest's
    result, comparison.parquet, chain.parquet or report.md that the logs contradict.
    """

    bundle: Path
    intact: bool
    missing: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    schema_problems: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()  # where result, tables or report disagree with logs/ (bundle.store.claims)
    files_checked: int = 0
    bytes_hashed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "intact": self.intact,
            "missing": list(self.missing),
            "changed": list(self.changed),
            "extra": list(self.extra),
            "schema_problems": list(self.schema_problems),
            "claims": list(self.claims),
            "files_checked": self.files_checked,
            "bytes_hashed": self.bytes_hashed,
        }


def file_sha256(path: Path | str) -> str:
    """sha256 hex digest of a file, streamed (see bundle.model.hashing)."""
    return sha256_file(Path(path))[1]


def is_safe_relpath(path: str) -> bool:
    """A bundle-relative POSIX path that cannot leave the bundle directory."""
    if not path or "\\" in path or "\x00" in path or path.startswith("/"):
        return False
    parts = path.split("/")
    return all(p not in ("", ".", "..") for p in parts)


def _present_files(root: Path) -> set[str]:
    """Every non-directory entry under ``root`` (symlinks included, never followed)."""
    found: set[str] = set()
    stack = [(root, PurePosixPath())]
    while stack:
        here, rel = stack.pop()
        with os.scandir(here) as it:
            for entry in it:
                relpath = rel / entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), relpath))
                else:
                    found.add(relpath.as_posix())
    return found


def _check_one(root: Path, rel: str, size: Any, sha: Any) -> tuple[str, str, int]:
    """('ok' | 'missing' | 'changed', rel, bytes hashed) for one listed file."""
    path = root.joinpath(*rel.split("/"))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing", rel, 0
    except NotADirectoryError:
        return "missing", rel, 0
    if not stat.S_ISREG(st.st_mode):
        return "changed", rel, 0
    if not isinstance(size, int) or st.st_size != size:
        return "changed", rel, 0
    try:
        digest = file_sha256(path)
    except OSError:
        return "changed", rel, 0
    return ("ok" if digest == sha else "changed"), rel, st.st_size


def _listed(files: Any) -> Iterable[tuple[str, Any, Any]]:
    if not isinstance(files, list):
        return []
    out = []
    for entry in files:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            out.append((entry["path"], entry.get("size"), entry.get("sha256")))
    return out


def verify_bundle(bundle_dir: Path | str) -> VerifyResult:
    """Check ``bundle_dir`` against its manifest.json.

    Raises BundleError when ``bundle_dir`` is not a directory or has no manifest.json at all.
    A manifest that exists but does not parse is reported as a schema problem (the bundle is
    then not intact), so that a damaged manifest reads as tampering, not as a usage error.
    """
    root = Path(bundle_dir)
    if root.name == MANIFEST_NAME and root.is_file():
        root = root.parent
    if not root.is_dir():
        raise BundleError(f"{root}: not a bundle directory")
    if not (root / MANIFEST_NAME).is_file():
        raise BundleError(f"{root / MANIFEST_NAME}: missing (is {root} a bundle directory?)")

    try:
        data = read_manifest(root)
    except BundleError as e:
        return VerifyResult(bundle=root, intact=False, schema_problems=(str(e),))

    problems = list(validate_manifest(data))
    listed: dict[str, tuple[Any, Any]] = {}
    for rel, size, sha in _listed(data.get("files")):
        if not is_safe_relpath(rel):
            problems.append(f"files: path {rel!r} escapes the bundle; not checked")
            continue
        listed.setdefault(rel, (size, sha))

    missing: list[str] = []
    changed: list[str] = []
    hashed = 0
    threads = max(1, min(_MAX_THREADS, os.cpu_count() or 1, len(listed)))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        jobs = [pool.submit(_check_one, root, rel, s, h) for rel, (s, h) in listed.items()]
        for job in jobs:
            state, rel, n = job.result()
            hashed += n
            if state == "missing":
                missing.append(rel)
            elif state == "changed":
                changed.append(rel)

    extra = sorted(_present_files(root) - set(listed) - {MANIFEST_NAME})
    claims: list[str] = []
    if not (missing or changed or extra or problems):
        from bundle.store.claims import claim_problems

        claims = claim_problems(root, data)
    intact = not (missing or changed or extra or problems or claims)
    return VerifyResult(
        bundle=root,
        intact=intact,
        missing=tuple(sorted(missing)),
        changed=tuple(sorted(changed)),
        extra=tuple(extra),
        schema_problems=tuple(problems),
        claims=tuple(claims),
        files_checked=len(listed),
        bytes_hashed=hashed,
    )


def require_intact(bundle_dir: Path | str) -> VerifyResult:
    """verify_bundle, raising BundleError (one line) unless the bundle is intact."""
    result = verify_bundle(bundle_dir)
    if not result.intact:
        parts = []
        for label, names in (
            ("missing", result.missing),
            ("changed", result.changed),
            ("extra", result.extra),
        ):
            if names:
                shown = ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
                parts.append(f"{label}: {shown}")
        if result.schema_problems:
            parts.append(f"manifest: {result.schema_problems[0]}")
        if result.claims:
            parts.append(f"manifest: {result.claims[0]}")
        raise BundleError(
            f"{result.bundle}: bundle is not intact ({'; '.join(parts)}); see `nb-evidence verify`"
        )
    return result
