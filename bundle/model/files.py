"""The two small things every writer and every error path needs, once: a file written so that no
reader ever sees it half-written, and an error turned into one line."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable


def one_line(value: BaseException | str, limit: int = 240) -> str:
    """Whitespace (newlines included) collapsed to single spaces, cut at ``limit`` characters with
    an ellipsis; an exception with no message is named by its type."""
    text = " ".join(str(value).split())
    if not text and isinstance(value, BaseException):
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_bytes(path: Path, what: str, error: type[Exception]) -> bytes:
    """A user's file (a spec, a ledger), or ``error`` with one line naming it and what is wrong."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None


def decode_utf8(raw: bytes, path: Path, what: str, error: type[Exception]) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from None


def write_atomic(path: Path | str, data: bytes, *, exclusive: bool = False,
                 mode: int | None = None, check: Callable[[], None] | None = None) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then put it in place
    in one step, so ``path`` holds either its old content or all of the new.

    ``exclusive``: never replace; FileExistsError (naming ``path``) if it exists, even when it
    appears meanwhile (a hard link, or an exclusive create where the file system has none).
    ``mode``: the permission bits; default: those of the file replaced, else 0o644. ``check``
    runs just before the file is put in place and may raise to leave everything untouched.
    """
    target = Path(os.path.realpath(path))
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if check is not None:
            check()
        if exclusive:
            _link_exclusive(tmp, target, data, str(path))
        else:
            os.replace(tmp, target)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _link_exclusive(tmp: str, target: Path, data: bytes, shown: str) -> None:
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "file exists", shown) from None
    except OSError:  # file systems without hard links: exclusive create instead
        try:
            with open(target, "xb") as f:
                f.write(data)
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, "file exists", shown) from None
