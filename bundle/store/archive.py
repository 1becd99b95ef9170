"""Keep a bundle's manifest in the repository: ``manifests/archive/<bundle-id>.json``.

Bundles themselves are large and usually not committed; their manifests are small and hold every
file's sha256, so an archived manifest lets anyone later check (and replay) a bundle that was
copied around. An archived manifest is never overwritten: archiving the same bundle again is a
no-op, and a different file under the same name is refused.

Also here: the two path helpers the ledger and export use to name bundles the way a repository's
own documents do (relative to the repository root).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bundle.model.errors import BundleError, UserError
from bundle.store.schema import MANIFEST_NAME, load_manifest
from bundle.model.files import write_atomic

ARCHIVE_DIR = Path("manifests") / "archive"


def find_repo_root(start: Path | str) -> Path | None:
    """The nearest directory at or above ``start`` holding a ``.git`` entry, else None."""
    here = Path(start).resolve()
    if here.is_file():
        here = here.parent
    for d in (here, *here.parents):
        if (d / ".git").exists():
            return d
    return None


def display_path(path: Path | str, near: Path | str | None = None) -> str:
    """``path`` as a POSIX string relative to the repository root around ``near`` (else the
    current directory) when it lies inside it, else absolute."""
    target = Path(path).resolve()
    anchors: list[Path] = []
    if near is not None:
        root = find_repo_root(near)
        if root is not None:
            anchors.append(root)
    anchors.append(Path.cwd().resolve())
    for anchor in anchors:
        try:
            rel = target.relative_to(anchor)
        except ValueError:
            continue
        return rel.as_posix() if rel.parts else "."
    return target.as_posix()


@dataclass(frozen=True)
class ArchiveResult:
    """Where the manifest copy lives and whether this call created it (False: it was already
    there, byte for byte)."""

    path: Path
    created: bool
    bundle_id: str


def archive(bundle_dir: Path | str, repo_root: Path | str) -> ArchiveResult:
    """Copy ``bundle_dir/manifest.json`` byte for byte to
    ``repo_root/manifests/archive/<bundle-id>.json``.

    The manifest must be valid. An identical existing copy: nothing written (``created`` False).
    A different existing file: BundleError, nothing written.
    """
    bundle_dir = Path(bundle_dir)
    repo_root = Path(repo_root)
    if not repo_root.is_dir():
        raise UserError(f"{repo_root}: repository root is not a directory")
    manifest = load_manifest(bundle_dir)
    bundle_id = manifest["bundle_id"]
    source = bundle_dir / MANIFEST_NAME if bundle_dir.is_dir() else bundle_dir
    data = source.read_bytes()

    dest_dir = repo_root / ARCHIVE_DIR
    dest = dest_dir / f"{bundle_id}.json"
    if dest.exists():
        return _existing(dest, data, bundle_id)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{dest_dir}: cannot create: {e.strerror or e}") from e

    # Exclusive: a concurrent archive can never be overwritten or seen half-written.
    try:
        write_atomic(dest, data, exclusive=True, mode=0o644)
    except FileExistsError:
        return _existing(dest, data, bundle_id)
    return ArchiveResult(dest, True, bundle_id)


def _existing(dest: Path, data: bytes, bundle_id: str) -> ArchiveResult:
    if dest.is_file() and dest.read_bytes() == data:
        return ArchiveResult(dest, False, bundle_id)
    raise BundleError(
        f"{dest}: already exists and differs from this bundle's manifest.json; not overwritten"
    )
