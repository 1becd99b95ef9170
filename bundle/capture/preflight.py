"""Preflight: does the environment the engines will run in have what the target repo declares?

A user's port declares its run-time dependencies in ``pyproject.toml`` (``[project].dependencies``).
Inside the pinned image a missing one would only show up minutes later as an ImportError half-way
through the PyTorch run, so an in-container capture refuses up front, naming every missing one and
the image; a native capture runs in the user's own environment, which they may know better than
their pyproject, so there it is a warning and a note in the bundle.

Parsing and checking are pure functions over text and a name -> version mapping; the only I/O
(reading the file, listing installed distributions) sits in :func:`preflight`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from bundle.model.errors import SpecError

try:  # packaging is in every environment we ship (both image locks) but not one of our declared deps
    from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement
except ImportError:  # pragma: no cover - exercised only where packaging is absent
    Requirement = None  # type: ignore[assignment,misc]

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class Unmet:
    """A declared requirement the environment does not satisfy. ``installed`` None: absent."""

    requirement: str
    name: str
    installed: str | None

    def describe(self) -> str:
        if self.installed is None:
            return f"{self.requirement} (not installed)"
        return f"{self.requirement} (installed {self.installed})"


@dataclass(frozen=True)
class Preflight:
    """What the target repo declares and what of it is unmet. ``source`` None: nothing declared."""

    source: str | None
    declared: tuple[str, ...]
    unmet: tuple[Unmet, ...]
    error: str | None = None  # the declaration could not be read (bad TOML, bad requirement)

    @property
    def ok(self) -> bool:
        return not self.unmet and self.error is None


def canonical(name: str) -> str:
    """PEP 503 normalized distribution name, so ``Foo_Bar`` and ``foo-bar`` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_dependencies(pyproject_text: str, source: str) -> tuple[str, ...]:
    """``[project].dependencies`` of a pyproject.toml's text; () when it declares none.
    Raises SpecError naming ``source`` when the text is not TOML or the field is not a list of
    strings."""
    try:
        data = tomllib.loads(pyproject_text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML ({exc})") from None
    deps = (data.get("project") or {}).get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise SpecError(f"{source}: [project].dependencies must be a list of strings")
    return tuple(deps)


def check(requirements: tuple[str, ...], installed: Mapping[str, str]) -> tuple[Unmet, ...]:
    """The requirements ``installed`` (canonical name -> version) does not satisfy.

    A requirement whose environment marker is false here is not needed here and never unmet.
    Pre-releases and local versions (``2.13.0+cpu``) count as satisfying a specifier. Without
    ``packaging`` only presence is checked. Raises SpecError for a requirement that does not parse.
    """
    unmet = []
    for text in requirements:
        if Requirement is None:
            found = _NAME.match(text)
            if found is None:
                raise SpecError(f"dependency {text!r} does not parse")
            name = canonical(found.group(1))
            if name not in installed:
                unmet.append(Unmet(text, name, None))
            continue
        try:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate():
                continue
        except (InvalidRequirement, InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as exc:
            raise SpecError(f"dependency {text!r} does not parse ({exc})") from None
        name = canonical(req.name)
        have = installed.get(name)
        if have is None or (req.specifier and not req.specifier.contains(have, prereleases=True)):
            unmet.append(Unmet(text, name, have))
    return tuple(unmet)


def installed_distributions() -> dict[str, str]:
    """Canonical name -> version of every distribution this interpreter can import."""
    from importlib import metadata

    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            out.setdefault(canonical(name), dist.version)
    return out


def preflight(repo: Path, installed: Mapping[str, str] | None = None) -> Preflight:
    """Read ``repo/pyproject.toml`` (when there is one) and check it against ``installed``
    (default: this interpreter's distributions, which is where the engines run)."""
    path = repo / "pyproject.toml"
    if not path.is_file():
        return Preflight(source=None, declared=(), unmet=())
    try:
        declared = declared_dependencies(path.read_text(encoding="utf-8"), str(path))
        unmet = check(declared, installed_distributions() if installed is None else installed)
    except (SpecError, OSError, UnicodeDecodeError) as exc:
        return Preflight(source=str(path), declared=(), unmet=(), error=str(exc))
    return Preflight(source=str(path), declared=declared, unmet=unmet)


def summary(result: Preflight, where: str) -> str:
    """One line: what is unmet (or unreadable) and in which environment."""
    if result.error is not None:
        return f"preflight: {result.error}"
    names = ", ".join(u.describe() for u in result.unmet)
    return f"{result.source} declares dependencies {where} lacks: {names}"


def enforce(repo: Path, container: Mapping | None) -> tuple[str, ...]:
    """The capture's preflight. In a container (``container`` is the image record) an unmet or
    unreadable declaration raises SpecError (exit 2, one line naming each and the image tag);
    natively it comes back as a note for the bundle, which the CLI also shows as a warning."""
    result = preflight(repo)
    if result.ok:
        return ()
    host_repo = os.environ.get("NB_HOST_REPO")
    if container and host_repo and result.source:
        # /repo means nothing to the user: name their checkout
        result = replace(result, source=result.source.replace(str(repo), host_repo, 1))
        if result.error:
            result = replace(result, error=result.error.replace(str(repo), host_repo, 1))
    if container:
        tag = container.get("image_tag") or container.get("image_id") or "the image"
        raise SpecError(summary(result, f"the image {tag}") + "; add them to the image "
                        "(requirements-target.txt, then `make wheels-lock image`) or run --native")
    return ("warning: " + summary(result, "this environment"),)


def wants_gpu(spec, py_device: str | None = None) -> bool:
    """Whether any engine of ``spec`` (or the --py-device flag) asks for a CUDA device."""
    devices = {str(options.get("device", "")) for options in spec.engines.values()}
    return py_device == "cuda" or any(d.startswith("cuda") for d in devices)


def device_refusal(spec, gpu_present: bool, py_device: str | None = None) -> str | None:
    """The one line refusing a CUDA capture on a machine without a GPU, before anything runs
    (the engine would otherwise fail minutes in, after the C side ran); None when fine."""
    if gpu_present or not wants_gpu(spec, py_device):
        return None
    flag = "--py-device cuda" if py_device == "cuda" else f"{spec.source}: device cuda"
    return (f"{flag}: no NVIDIA GPU on this machine (no /dev/nvidiactl); "
            "use --py-device cpu or run where a GPU is")
