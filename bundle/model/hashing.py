"""File digests: sha256 streamed in large chunks, so a multi-GB image is never held in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bundle.model.records import FileDigest


def sha256_file(path: Path) -> tuple[int, str]:
    """(size in bytes, sha256 hex) of a file, read in chunks by hashlib.file_digest."""
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256")
        size = fh.tell()
    return size, digest.hexdigest()


def digest(path: Path, rel: str, root: str) -> FileDigest:
    size, sha = sha256_file(path)
    return FileDigest(path=rel, size=size, sha256=sha, root=root)


def trace_digest(trace) -> str | None:
    """sha256 over a trace's key lines as parsed (key and tokens), blind to every free line, so
    replay can tell an identical trace from one whose timings or banners changed."""
    if trace is None:
        return None
    h = hashlib.sha256()
    for e in trace.entries:
        h.update(("\t".join((e.key, *e.tokens)) + "\n").encode())
    return h.hexdigest()
