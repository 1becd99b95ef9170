"""The container seam's vocabulary: what a Docker engine's work comes back as (our own frozen
records, events and errors), and the protocol the Docker implementation (docker_seam) fulfils.
Nothing here imports ``docker``: the in-container capture's argv and mounts are built and tested
with these types alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Protocol, Sequence

from bundle.model.errors import ContainerError


@dataclass(frozen=True)
class ContainerEvent:
    """One line of progress. kind: image | build | pull | run | stdout | stderr."""

    kind: str
    message: str


EventSink = Callable[[ContainerEvent], None]


class ContainerBuildError(ContainerError):
    """An image build failed; ``log_tail`` holds the builder's last lines."""

    def __init__(self, message: str, log_tail: Sequence[str]):
        super().__init__(message)
        self.log_tail = tuple(log_tail)


@dataclass(frozen=True)
class ImageInfo:
    """An image as the engine reports it, with the nb-evidence labels it was built with.

    The hash fields and ``build_args`` are None / empty for an image that lacks our labels.
    """

    tag: str
    id: str
    repo_digests: tuple[str, ...]
    dockerfile_sha256: str | None
    lock_sha256: str | None
    content_sha256: str | None
    base_image: str | None
    build_args: tuple[tuple[str, str], ...]
    engine_version: str

    def env(self) -> dict[str, str]:
        """The NB_CONTAINER_* variables a capture inside this image records in its manifest."""
        values = {
            "NB_CONTAINER_IMAGE_ID": self.id,
            "NB_CONTAINER_IMAGE_TAG": self.tag,
            "NB_CONTAINER_REPO_DIGESTS": ",".join(self.repo_digests),
            "NB_CONTAINER_DOCKERFILE_SHA256": self.dockerfile_sha256,
            "NB_CONTAINER_LOCK_SHA256": self.lock_sha256,
            "NB_CONTAINER_ENGINE_VERSION": self.engine_version,
            "NB_CONTAINER_BUILD_ARGS": json.dumps(dict(self.build_args), sort_keys=True),
        }
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class Mount:
    """A host path bind-mounted at ``target``; read-only unless ``read_only=False``."""

    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class RunOutcome:
    """How a container run ended. ``logs_tail``: the last lines of stdout and stderr, interleaved."""

    exit_code: int
    logs_tail: tuple[str, ...]
    stdout: str
    stderr: str
    duration_s: float
    oom_killed: bool = False
    timed_out: bool = False


class ContainerSeam(Protocol):
    """What a capture needs of a container engine; bundle.container.docker_seam.DockerSeam is
    the implementation (and the only code that imports ``docker``)."""

    version: str

    def ensure_image(self, repo_root: Path | str | None = None, tag: str | None = None,
                     base_image: str | None = None,
                     on_event: EventSink | None = None) -> ImageInfo: ...

    def default_base(self) -> str | None: ...

    def run(self, image: ImageInfo, argv: Sequence[str], mounts: Iterable[Mount] = (),
            env: Mapping[str, str] | None = None,
            on_event: EventSink | None = None, gpus: bool = False) -> RunOutcome: ...
