"""Writing a bundle: the one place that touches the bundle directory's final name.

A bundle is assembled in ``<bundles>/.staging/<id>/`` (logs land there while commands run), then
renamed to ``<bundles>/<id>/`` in one ``rename``. A capture killed at any point therefore leaves
at most a directory under ``.staging/``, never a half-bundle among the bundles; an existing bundle
is never overwritten because the rename target must not exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from bundle.model.errors import BundleError
from bundle.model.files import write_atomic
from bundle.model.hashing import digest
from bundle.model.records import CaptureResult, FileDigest

if TYPE_CHECKING:
    import numpy as np

STAGING = ".staging"


def new_bundle_id(spec_name: str, args_sha256: str, start: datetime) -> str:
    stamp = start.strftime("%Y%m%dT%H%M%SZ")
    h = hashlib.sha256(f"{args_sha256}\0{start.isoformat()}\0{os.getpid()}".encode()).hexdigest()
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in spec_name)
    return f"{stamp}-{safe}-{h[:8]}"


def open_staging(bundles_root: Path, bundle_id: str) -> Path:
    """A fresh ``.staging/<id>/`` with its lock beside it (``<id>.lock``, holding our pid), after
    removing what captures killed outright (SIGKILL, power loss) left there."""
    final = bundles_root / bundle_id
    if final.exists():
        raise BundleError(f"{final}: a bundle with this id already exists; it is never overwritten")
    staging = bundles_root / STAGING / bundle_id
    locked = False
    try:
        staging.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(staging.parent)
        write_atomic(_lock(staging), f"{os.getpid()} {socket.gethostname()}\n".encode(),
                     exclusive=True)
        locked = True
        staging.mkdir()
    except OSError as exc:
        if locked:
            _lock(staging).unlink(missing_ok=True)
        if isinstance(exc, FileExistsError):
            raise BundleError(f"{staging}: staging directory already exists") from None
        raise BundleError(f"{bundles_root}: cannot create a bundle there ({exc.strerror})") from None
    return staging


def _lock(staging: Path) -> Path:
    # Beside the directory, not in it: everything in it becomes the bundle.
    return staging.with_name(staging.name + ".lock")


def discard_staging(staging: Path) -> None:
    """Remove a staging directory and its lock (a capture that failed or was interrupted)."""
    shutil.rmtree(staging, ignore_errors=True)
    _lock(staging).unlink(missing_ok=True)


def remove_stale_staging(staging_root: Path) -> list[Path]:
    """Remove each staging directory whose lock names a process of this host that is gone;
    returns those removed. A lock from another host (a container, a shared file system) is left:
    its pid says nothing here."""
    removed = []
    for lock in staging_root.glob("*.lock"):
        try:
            pid_text, _, host = lock.read_text().strip().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        if host != socket.gethostname() or _alive(pid):
            continue
        staging = lock.with_name(lock.name[: -len(".lock")])
        discard_staging(staging)
        removed.append(staging)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, alive
        return True
    return True


def list_files(directory: Path, known: Mapping[str, FileDigest] | None = None) -> list[FileDigest]:
    """Every file under the bundle except manifest.json, sorted, hashed. ``known`` digests (by
    bundle-relative path) are taken as they are while the file's size still matches."""
    known = known or {}
    out = []
    for root, _dirs, files in os.walk(directory):
        for name in files:
            p = Path(root) / name
            rel = p.relative_to(directory).as_posix()
            if rel == "manifest.json":
                continue
            k = known.get(rel)
            out.append(k if k is not None and k.size == p.stat().st_size else digest(p, rel, "bundle"))
    return sorted(out, key=lambda d: d.path)


def write_tables(staging: Path, tables: Mapping) -> None:
    import pyarrow.parquet as pq  # here, not at the top: a capture imports it in the background

    for name, table in tables.items():
        pq.write_table(table, staging / name)


def fsync_file(path: Path) -> None:
    """Flush one file to disk (a capture flushes the big images early, in the background, so the
    final flush of the whole tree before the rename is quick)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(directory: Path) -> None:
    for root, _dirs, files in os.walk(directory):
        for name in files:
            fsync_file(Path(root) / name)


def finish(staging: Path, bundles_root: Path, result: CaptureResult,
           manifest_for: Callable[[list[FileDigest]], dict],
           known: Mapping[str, FileDigest] | None = None) -> Path:
    """Write manifest.json last (it lists every other file), then rename into place."""
    files = list_files(staging, known)
    manifest = manifest_for(files)
    write_atomic(staging / "manifest.json",
                 (json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False) + "\n").encode())
    return publish(staging, bundles_root, result.bundle_id)


def publish(staging: Path, bundles_root: Path, bundle_id: str) -> Path:
    """Flush the staged tree to disk and rename it to ``<bundles>/<id>/`` in one step (never over
    an existing bundle); the staging lock goes with it. Every bundle kind ends here."""
    _fsync_tree(staging)
    final = bundles_root / bundle_id
    if final.exists():
        raise BundleError(f"{final}: a bundle with this id already exists; it is never overwritten")
    os.rename(staging, final)
    _lock(staging).unlink(missing_ok=True)
    return final


def publish_indexed(staging: Path, bundles_root: Path, bundle_id: str, index: str,
                    data: dict) -> Path:
    """For the bundle kinds whose index is a JSON file listing every other file (suite.json,
    bisect.json): ``data["files"]`` filled from the staged tree, the index written last, then
    publish."""
    data["files"] = [{"path": f.path, "size": f.size, "sha256": f.sha256}
                     for f in list_files(staging)]
    write_atomic(staging / index,
                 (json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode())
    return publish(staging, bundles_root, bundle_id)


def write_bundle(staging: Path, bundles: Path, result: CaptureResult,
                 images: Mapping[str, np.ndarray], *, target: Mapping, arguments: Mapping,
                 engines: list, inputs: list, bundle_path: str,
                 replay_of: str | None = None, trusted: bool = False, plot_paths: Mapping[str, str] | None = None,
                 known: Mapping[str, FileDigest] | None = None) -> Path:
    """Render everything a result owes the reader into staging, then finish the bundle.

    ``plot_paths``: plots already drawn into staging/plots; None draws them here. ``known``:
    digests of bundle files already hashed (by bundle-relative path), not hashed again."""
    from bundle.present import crate as crate_mod
    from bundle.present import plots
    from bundle.present import report
    from bundle.present.manifest import build_manifest
    from bundle.present.tables import tables

    if plot_paths is None:
        plot_paths = (plots.render_plots(result, images, staging / "plots")
                      if (result.comparison or images) else {})
    (staging / "report.md").write_text(report.report_markdown(result, plot_paths), encoding="utf-8")
    write_tables(staging, tables(result))
    # The crate describes every other file; the manifest (written last by finish) lists the crate too.
    crate_mod.write_crate(staging, crate_mod.crate_metadata(result, list_files(staging, known)))
    return finish(staging, bundles, result, lambda files: build_manifest(
        result, target=target, arguments=arguments, engines=engines, inputs=inputs,
        files=files, bundle_path=bundle_path, replay_of=replay_of,
        extra={"trusted": True} if trusted else None), known=known)


def user_path(path: Path) -> str:
    """Relative to the working directory when inside it (what a user would type), else absolute."""
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


