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
