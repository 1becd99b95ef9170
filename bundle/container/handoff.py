"""When root asks for a container, the container still runs as the image's unprivileged user; its
writable mounts are handed to that user and given back to root afterwards.

The unprivileged user cannot write into root's directories, and we will not change the owner or
mode of a directory of the user's. So each writable mount is swapped for a fresh directory made
inside it (``.nb-handoff-*/w``, open to the container; its parent closed to everyone else on the
host), and afterwards everything the container left there is chowned to the caller and renamed
into the real directory: a finished bundle arrives in one rename, as it would natively.
Nothing here imports ``docker``: the seam (docker_seam) calls it around a run.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from bundle.container.seam import Mount
from bundle.model.errors import ContainerError

PREFIX = ".nb-handoff-"


class Handoff:
    """The mounts as the container gets them (``mounts``), and ``give_back`` for afterwards."""

    def __init__(self, mounts: Sequence[Mount]):
        refuse_unreadable(mounts)
        self.places: list[tuple[Path, Path]] = []  # (handed-over directory, the real one)
        self.mounts: list[Mount] = []
        try:
            for m in mounts:
                self.mounts.append(self._hand_over(m))
        except OSError as exc:
            self.give_back(os.getuid(), os.getgid())
            raise ContainerError(f"mount source {exc.filename}: cannot hand it to the "
                                 f"container's user ({exc.strerror})") from None

    def _hand_over(self, mount: Mount) -> Mount:
        source = Path(mount.source).resolve()
        if mount.read_only or not source.is_dir():
            return mount
        parent = Path(tempfile.mkdtemp(prefix=PREFIX, dir=source))  # 0700: the host's others out
        handed = parent / "w"
        handed.mkdir()
        # open to the container's user, whose uid we need not know; reachable only through parent
        os.chmod(handed, 0o777)
        self.places.append((handed, source))
        return replace(mount, source=handed)

    def give_back(self, uid: int, gid: int) -> None:
        """Everything the container wrote, owned by ``uid:gid`` and moved into the real mount;
        the handed-over directories removed."""
        for handed, source in self.places:
            try:
                _chown_tree(handed, uid, gid)
                _merge(handed, source)
            finally:
                shutil.rmtree(handed.parent, ignore_errors=True)
        self.places = []


def refuse_unreadable(mounts: Sequence[Mount]) -> None:
    """A read-only mount the unprivileged user cannot read or enter is refused in one line, before
    any container starts, rather than failing inside with a permission error."""
    for m in mounts:
        source = Path(m.source).resolve()
        if not m.read_only or not source.exists():
            continue
        mode = source.stat().st_mode
        need = (stat.S_IROTH | stat.S_IXOTH) if source.is_dir() else stat.S_IROTH
        if mode & need != need:
            raise ContainerError(f"mount source {source}: not readable by the container's "
                                 f"unprivileged user (mode {stat.filemode(mode)}); make it "
                                 f"readable to others (chmod o+rX) or run as a non-root user")


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def _merge(src: Path, dst: Path) -> None:
    """Rename each entry of ``src`` into ``dst``; a directory both have is merged; a file ``dst``
    already has is left as it is (nothing of the user's is replaced)."""
    for entry in src.iterdir():
        target = dst / entry.name
        if not target.exists() and not target.is_symlink():
            os.rename(entry, target)
        elif target.is_dir() and not target.is_symlink() and entry.is_dir():
            _merge(entry, target)
