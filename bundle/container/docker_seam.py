"""The container seam: the only module that talks to a Docker engine (and imports ``docker``).

Everything the engine says comes out as our own types: results are frozen dataclasses, failures are
:class:`~bundle.model.errors.ContainerError` with a one-line message, and progress (builder output, a
container's stdout and stderr lines) goes to an optional ``on_event`` callback as
:class:`ContainerEvent`. Nothing here prints.

The image
    ``Dockerfile`` at the repo root, built with the legacy builder (what the Docker API's ``/build``
    endpoint runs; the SDK speaks no BuildKit). Its build context is what ``.dockerignore`` admits.
    Its *content tag* is ``nb-evidence:<hash12>``: the first 12 hex digits of a sha256 over every
    context file except the wheel files themselves (so: the Dockerfile, ``wheels/requirements.lock``,
    which pins every wheel by sha256, and the project's source), each as ``path NUL sha256 LF`` in
    path order. The same inputs give the same tag; any change to them gives a new one, so an image
    found under the tag is the image those files build. The hashes also go on the image as
    ``nb-evidence.*`` labels, and :class:`ImageInfo` reads them back from the image itself.

Running
    :func:`run` starts one container with no network (``network_mode="none"``), the invoking
    uid:gid, memory and pid limits, the mounts asked for (read-only unless said otherwise), HOME and
    MPLCONFIGDIR at /tmp (the uid has no passwd entry in the image), streams its output as events,
    waits, and removes it.
"""

from __future__ import annotations

import codecs
import collections
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import docker
import docker.errors
import docker.types
import requests
from docker.utils.build import exclude_paths

from bundle.model.hashing import sha256_file
from bundle.model.errors import ContainerError
from bundle.model.files import one_line
from bundle.container.handoff import Handoff
from bundle.container.seam import (ContainerBuildError, ContainerEvent, EventSink, ImageInfo,
                                   Mount, RunOutcome)

__all__ = ["ContainerBuildError", "ContainerEvent", "EventSink", "ImageInfo", "Mount",
           "RunOutcome", "Engine", "connect", "ensure_image", "run"]

REPOSITORY = "nb-evidence"
DOCKERFILE = "Dockerfile"
LOCK = "wheels/requirements.lock"
LABEL = "nb-evidence."
LOG_TAIL = 20
RUN_TAIL = 50

_SDK_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


@dataclass(frozen=True)
class Engine:
    """A Docker engine that answered a ping."""

    client: docker.DockerClient = field(repr=False, compare=False)
    host: str
    version: str
    api_version: str


@dataclass(frozen=True)
class ImageContent:
    """What an image built from a checkout is made of, by sha256."""

    tag: str
    content_sha256: str
    dockerfile_sha256: str
    lock_sha256: str
    files: tuple[str, ...]


# --------------------------------------------------------------------------------------- engine


def _one_line(exc: BaseException | str, limit: int = 240) -> str:
    return one_line(exc, limit)


def connect(timeout_s: float = 10.0) -> Engine:
    """The engine DOCKER_HOST (or the default socket) names, once it answers a ping."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        probe = docker.DockerClient.from_env(timeout=timeout_s)
        probe.ping()
        version = probe.version()
        # A second client without a read timeout: builds and containers may be silent for long.
        client = docker.DockerClient.from_env(timeout=None, version=probe.api.api_version)
        probe.close()
    except _SDK_ERRORS as exc:
        raise ContainerError(
            f"no Docker engine answers ({host}: {_one_line(exc, 160)}); "
            "start one (e.g. `sudo dockerd &`) or use --native"
        ) from None
    return Engine(
        client=client,
        host=host,
        version=str(version.get("Version", "unknown")),
        api_version=str(version.get("ApiVersion", probe.api.api_version)),
    )


# --------------------------------------------------------------------------------------- image


def _sha256_file(path: Path) -> str:
    return sha256_file(path)[1]


def _dockerignore(root: Path) -> list[str]:
    # The same reading as the SDK's own build(): stripped lines, no blanks, no comments.
    path = root / ".dockerignore"
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def image_content(repo_root: Path | str, dockerfile: str = DOCKERFILE, lock: str = LOCK) -> ImageContent:
    """The content tag and hashes of the image ``dockerfile`` builds from the context ``repo_root``.

    The defaults are the CPU image's; ``make image-cuda`` passes Dockerfile.cuda and its lock.
    """
    root = Path(repo_root)
    for name in (dockerfile, lock):
        if not (root / name).is_file():
            hint = " (run `make wheels`)" if name == lock else ""
            raise ContainerError(f"{root / name}: not found; cannot compute the image's content tag{hint}")
    included = exclude_paths(str(root), _dockerignore(root), dockerfile=dockerfile)
    files = sorted(
        rel
        for rel in included
        if rel != ".dockerignore" and not rel.endswith(".whl") and (root / rel).is_file()
    )
    digest = hashlib.sha256()
    for rel in files:
        digest.update(f"{rel}\0{_sha256_file(root / rel)}\n".encode())
    content = digest.hexdigest()
    return ImageContent(
        tag=f"{REPOSITORY}:{content[:12]}",
        content_sha256=content,
        dockerfile_sha256=_sha256_file(root / dockerfile),
        lock_sha256=_sha256_file(root / lock),
        files=tuple(files),
    )


def image_tag(repo_root: Path | str) -> str:
    """``nb-evidence:<hash12>``: see the module docstring for what the hash covers."""
    return image_content(repo_root).tag


def image_labels(
    repo_root: Path | str,
    build_args: Mapping[str, str] | None = None,
    dockerfile: str = DOCKERFILE,
    lock: str = LOCK,
) -> dict[str, str]:
    """The labels an image built from this context carries (``make image`` sets the same)."""
    content = image_content(repo_root, dockerfile, lock)
    return {
        LABEL + "content-tag": content.tag,
        LABEL + "content-sha256": content.content_sha256,
        LABEL + "dockerfile-sha256": content.dockerfile_sha256,
        LABEL + "lock-sha256": content.lock_sha256,
        LABEL + "build-args": json.dumps(dict(build_args or {}), sort_keys=True),
    }


def _image_info(engine: Engine, tag: str, image) -> ImageInfo:
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    try:
        build_args = tuple(sorted(json.loads(labels.get(LABEL + "build-args", "{}")).items()))
    except (ValueError, AttributeError):
        build_args = ()
    return ImageInfo(
        tag=tag,
        id=image.id,
        repo_digests=tuple(image.attrs.get("RepoDigests") or ()),
        dockerfile_sha256=labels.get(LABEL + "dockerfile-sha256"),
        lock_sha256=labels.get(LABEL + "lock-sha256"),
        content_sha256=labels.get(LABEL + "content-sha256"),
        base_image=labels.get(LABEL + "base-image"),
        build_args=tuple((str(k), str(v)) for k, v in build_args),
        engine_version=engine.version,
    )


def _emit(on_event: EventSink | None, kind: str, message: str) -> None:
    if on_event is not None:
        on_event(ContainerEvent(kind, message))


def _find(engine: Engine, tag: str):
    try:
        return engine.client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    except _SDK_ERRORS as exc:
        raise ContainerError(f"cannot inspect image {tag}: {_one_line(exc)}") from None


LOCAL_BASE = "local/debian:bookworm"


def default_base(engine: Engine) -> str | None:
    """The base to build on when none is named: NB_BASE_IMAGE, else the debootstrapped
    ``local/debian:bookworm`` when this engine has it (no registry needed), else the Dockerfile's
    pinned public default (None)."""
    if os.environ.get("NB_BASE_IMAGE"):
        return os.environ["NB_BASE_IMAGE"]
    return LOCAL_BASE if _find(engine, LOCAL_BASE) is not None else None


def project_root() -> Path:
    """The nb-evidence checkout this module runs from (where Dockerfile and wheels/ live)."""
    return Path(__file__).resolve().parents[2]


def ensure_image(
    engine: Engine,
    repo_root: Path | str | None = None,
    tag: str | None = None,
    base_image: str | None = None,
    on_event: EventSink | None = None,
) -> ImageInfo:
    """The image to run captures in, built first when this checkout's content tag is missing.

    ``repo_root`` is the nb-evidence checkout (default: :func:`project_root`), not the target repo
    a capture reads. ``tag`` None means the content tag. A tag that exists is used as it is; a
    missing tag is built only when it is the content tag (anything else names an image we cannot
    know how to make).
    ``base_image`` overrides the Dockerfile's BASE_IMAGE build argument (e.g. local/debian:bookworm,
    from ``make base-image``, where no registry answers).
    """
    root = Path(repo_root) if repo_root is not None else project_root()
    content = image_content(root)
    wanted = tag or content.tag
    image = _find(engine, wanted)
    if image is not None:
        _emit(on_event, "image", f"using {wanted} ({image.id})")
        return _image_info(engine, wanted, image)
    if wanted != content.tag:
        raise ContainerError(
            f"image {wanted} is not on the engine and cannot be built here: it is not this "
            f"checkout's content tag {content.tag}; build that with `make image`, or pull/load {wanted}"
        )
    return build_image(engine, root, base_image=base_image, on_event=on_event).info


@dataclass(frozen=True)
class BuiltImage:
    info: ImageInfo  # under the content tag
    tags: tuple[str, ...]
    size: int  # bytes, as the engine reports it
    seconds: float


def build_image(
    engine: Engine,
    repo_root: Path | str | None = None,
    base_image: str | None = None,
    extra_tags: Sequence[str] = (),
    network: str | None = None,
    on_event: EventSink | None = None,
) -> BuiltImage:
    """Build the checkout's Dockerfile under its content tag (and ``extra_tags``, e.g.
    ``nb-evidence:cpu``) with the legacy builder. The one build path: ensure_image (a capture
    --in-container) and ``make image`` (``nb-evidence image build``) both come here.
    ``network``: the build containers' network mode (e.g. ``host`` where the default bridge
    cannot reach the Debian mirror)."""
    root = Path(repo_root) if repo_root is not None else project_root()
    tag = image_content(root).tag
    build_args = {"BASE_IMAGE": base_image} if base_image else {}
    on_base = f" on {base_image}" if base_image else ""
    _emit(on_event, "image", f"building {tag} from {root / DOCKERFILE}{on_base}")
    started = time.monotonic()
    image_id = _build(engine, root, tag, build_args, image_labels(root, build_args), on_event,
                      network)
    image = _find(engine, tag)
    if image is None or (image_id and image.id != image_id):
        raise ContainerError(
            f"the engine reported building {image_id or 'an image'} but {tag} does not name it"
        )
    for extra in extra_tags:
        repository, _, name = extra.rpartition(":") if ":" in extra else (extra, "", "latest")
        try:
            image.tag(repository, name)
        except _SDK_ERRORS as exc:
            raise ContainerError(f"cannot tag {tag} as {extra}: {_one_line(exc)}") from None
    return BuiltImage(info=_image_info(engine, tag, image), tags=(tag, *extra_tags),
                      size=int(image.attrs.get("Size") or 0),
                      seconds=time.monotonic() - started)


def _build(
    engine: Engine,
    root: Path,
    tag: str,
    build_args: Mapping[str, str],
    labels: Mapping[str, str],
    on_event: EventSink | None,
    network: str | None = None,
) -> str | None:
    tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL)
    image_id = None
    try:
        stream = engine.client.api.build(
            path=str(root),
            dockerfile=DOCKERFILE,
            tag=tag,
            buildargs=dict(build_args),
            labels=dict(labels),
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            use_config_proxy=False,
            network_mode=network,
        )
        for chunk in stream:
            if "error" in chunk:
                error = _one_line(chunk.get("error") or chunk.get("errorDetail", {}).get("message", "?"))
                tail.append(error)
                raise ContainerBuildError(f"building {tag} failed: {error}{_build_hint(error)}", tail)
            if "stream" in chunk:
                for line in str(chunk["stream"]).splitlines():
                    if line.strip():
                        tail.append(line.rstrip())
                        _emit(on_event, "build", line.rstrip())
                        found = re.match(r"Successfully built ([0-9a-f]+)", line.strip())
                        if found and image_id is None:
                            image_id = found.group(1)
            elif "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
                image_id = chunk["aux"]["ID"]
            elif "status" in chunk and "progressDetail" not in chunk:
                line = " ".join(str(chunk.get(k, "")) for k in ("id", "status")).strip()
                tail.append(line)
                _emit(on_event, "pull", line)
    except ContainerBuildError:
        raise
    except docker.errors.BuildError as exc:
        raise ContainerBuildError(f"building {tag} failed: {_one_line(exc)}", tail) from None
    except _SDK_ERRORS as exc:
        error = _one_line(exc)
        raise ContainerBuildError(f"building {tag} failed: {error}{_build_hint(error)}", tail) from None
    if image_id is None:
        raise ContainerBuildError(f"building {tag} ended without an image id", tail)
    if image_id.startswith("sha256:"):
        return image_id
    # "Successfully built <short id>": the full id comes from the tag.
    return None


def _build_hint(error: str) -> str:
    low = error.lower()
    missing = ("no source files", "not found", "no such file")
    if "wheels" in low and any(word in low for word in missing):
        return " (the wheelhouse is empty: run `make wheels`)"
    unreachable = ("pull access", "registry", "manifest", "dial tcp", "lookup ", "no such host")
    if any(word in low for word in unreachable):
        return (
            " (the base image could not be pulled: `make base-image` makes local/debian:bookworm;"
            " build on it)"
        )
    return ""


# --------------------------------------------------------------------------------------- run


def invoking_user() -> str:
    """``uid:gid`` of this process: what files a container writes on a mount will belong to."""
    return f"{os.getuid()}:{os.getgid()}"


class _Lines:
    """Turns a byte stream's chunks into complete text lines (UTF-8, invalid bytes replaced)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""
        self.text: list[str] = []

    def feed(self, data: bytes, final: bool = False) -> list[str]:
        chunk = self._decoder.decode(data, final=final)
        self.text.append(chunk)
        self._pending += chunk
        *lines, self._pending = self._pending.split("\n")
        if final and self._pending:
            lines.append(self._pending)
            self._pending = ""
        return [line.rstrip("\r") for line in lines]


def run(
    engine: Engine,
    image: ImageInfo,
    argv: Sequence[str],
    mounts: Iterable[Mount] = (),
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    workdir: str = "/tmp",
    on_event: EventSink | None = None,
    mem_limit: str = "4g",
    pids_limit: int = 512,
    entrypoint: Sequence[str] | None = None,
    timeout_s: float | None = None,
    gpus: bool = False,
) -> RunOutcome:
    """Run ``argv`` (the arguments after the image's entrypoint) in a fresh container, then remove it.

    Confined (container_security): no network, no capabilities, no privilege gain, a read-only
    root with a tmpfs /tmp. ``user`` defaults to the invoking uid:gid; a root caller runs as the
    image's unprivileged user instead, its writable mounts handed over (bundle.container's
    Handoff) and given back to root afterwards. ``env`` is all the container gets besides
    HOME=/tmp and MPLCONFIGDIR=/tmp (which it may override). ``entrypoint`` replaces the image's
    (``nb-evidence``) for probes. A run past ``timeout_s`` is killed and reported ``timed_out``.
    ``gpus`` asks the engine for every GPU (needs the NVIDIA container toolkit on the host).
    """
    mounts = list(mounts)
    handoff = None
    if user is None and os.getuid() == 0:
        user = image_user(engine, image)
        handoff = Handoff(mounts)
        mounts = handoff.mounts
    if (user or invoking_user()).split(":")[0] in ("0", "root"):
        raise ContainerError("a container never runs as uid 0")
    try:
        options = _container_options(image, argv, mounts, env, user or invoking_user(), workdir,
                                     mem_limit, pids_limit, entrypoint, gpus)
        try:
            container = engine.client.containers.create(**options)
        except _SDK_ERRORS as exc:
            raise ContainerError(f"cannot create a container from {image.tag}: {_one_line(exc)}") from None
        return _run_created(container, image, options["user"], on_event, mem_limit, timeout_s)
    finally:
        if handoff is not None:
            handoff.give_back(os.getuid(), os.getgid())


def _run_created(container, image: ImageInfo, user: str, on_event: EventSink | None,
                 mem_limit: str, timeout_s: float | None) -> RunOutcome:
    """Start a created container, follow it to its end, and remove it, whatever happens: on a
    signal (bundle.model.errors.Interrupted) it is first stopped, so the capture inside gets
    SIGTERM and cleans up its own staging and engines."""
    timed_out = threading.Event()
    timer = None
    started = time.monotonic()
    try:
        try:
            stream: Iterator = container.attach(stdout=True, stderr=True, stream=True, logs=True, demux=True)
            container.start()
        except _SDK_ERRORS as exc:
            raise ContainerError(f"cannot start a container from {image.tag}: {_one_line(exc)}") from None
        _emit(on_event, "run", f"started {container.short_id} from {image.tag} as {user}")
        if timeout_s is not None:
            timer = _kill_after(container, timeout_s, timed_out)
        try:
            out, err, tail, status = _follow(container, stream, on_event)
        except BaseException:
            _stop(container)
            raise
        exit_code = int(status.get("StatusCode", -1))
        oom = bool((container.attrs.get("State") or {}).get("OOMKilled"))
        duration = time.monotonic() - started
        note = f"exit {exit_code} after {duration:.1f}s"
        if oom:
            note += f" (killed: out of memory, limit {mem_limit})"
        if timed_out.is_set():
            note += f" (killed: past {timeout_s}s)"
        _emit(on_event, "run", note)
        return RunOutcome(exit_code=exit_code, logs_tail=tuple(tail), stdout="".join(out.text),
                          stderr="".join(err.text), duration_s=duration, oom_killed=oom,
                          timed_out=timed_out.is_set())
    finally:
        if timer is not None:
            timer.cancel()
        try:
            container.remove(force=True)
        except _SDK_ERRORS:
            pass


def _stop(container, grace_s: int = 10) -> None:
    try:
        container.stop(timeout=grace_s)
    except _SDK_ERRORS:
        pass


def image_user(engine: Engine, image: ImageInfo) -> str:
    """The user an image runs as (its USER), refused when that is root: a root caller's
    container must still not run as uid 0."""
    try:
        user = (engine.client.images.get(image.id).attrs.get("Config") or {}).get("User") or ""
    except _SDK_ERRORS as exc:
        raise ContainerError(f"cannot inspect {image.tag}: {_one_line(exc)}") from None
    if user.split(":")[0] in ("", "0", "root"):
        raise ContainerError(f"{image.tag} has no unprivileged USER; nb-evidence never runs a "
                             f"container as uid 0")
    return user


def container_security(mem_limit: str) -> dict:
    """The confinement every container gets (the README's trust model): no capabilities, no
    privilege gain through setuid files, a read-only root file system. /tmp is a tmpfs, with
    exec: the capture's scratch lives there, and it runs the C engine it builds and loads the
    modules inductor compiles there (bundle/capture/profiles/nanobragg.toml)."""
    return dict(cap_drop=["ALL"], security_opt=["no-new-privileges"], read_only=True,
                tmpfs={"/tmp": f"rw,exec,nosuid,nodev,size={mem_limit}"})


def _container_options(image: ImageInfo, argv: Sequence[str], mounts: Iterable[Mount],
                       env: Mapping[str, str] | None, user: str, workdir: str, mem_limit: str,
                       pids_limit: int, entrypoint: Sequence[str] | None, gpus: bool) -> dict:
    docker_mounts = []
    for m in mounts:
        source = Path(m.source).resolve()
        if not source.exists():
            raise ContainerError(f"mount source {source}: no such file or directory")
        docker_mounts.append(
            docker.types.Mount(target=m.target, source=str(source), type="bind", read_only=m.read_only)
        )
    environment = {"HOME": "/tmp", "MPLCONFIGDIR": "/tmp"}
    environment.update(env or {})
    options = dict(
        image=image.id, command=list(argv), user=user, working_dir=workdir,
        environment=environment, mounts=docker_mounts, network_mode="none",
        mem_limit=mem_limit, memswap_limit=mem_limit, pids_limit=pids_limit,
        labels={LABEL + "role": "run", LABEL + "image-tag": image.tag}, detach=True,
        **container_security(mem_limit),
    )
    if entrypoint is not None:
        options["entrypoint"] = list(entrypoint)
    if gpus:
        options["device_requests"] = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    return options


def _kill_after(container, timeout_s: float, timed_out: threading.Event) -> threading.Timer:
    def kill() -> None:
        timed_out.set()
        try:
            container.kill()
        except _SDK_ERRORS:
            pass

    timer = threading.Timer(timeout_s, kill)
    timer.daemon = True
    timer.start()
    return timer


def _follow(container, stream: Iterator, on_event: EventSink | None):
    """Stream the container's output as events until it exits; its lines, tail and status."""
    out, err = _Lines(), _Lines()
    tail: collections.deque[str] = collections.deque(maxlen=RUN_TAIL)
    try:
        for chunk_out, chunk_err in stream:
            for kind, lines_of, data in (("stdout", out, chunk_out), ("stderr", err, chunk_err)):
                if data:
                    for line in lines_of.feed(data):
                        tail.append(line)
                        _emit(on_event, kind, line)
        for kind, lines_of in (("stdout", out), ("stderr", err)):
            for line in lines_of.feed(b"", final=True):
                tail.append(line)
                _emit(on_event, kind, line)
        status = container.wait()
        container.reload()
    except _SDK_ERRORS as exc:
        raise ContainerError(
            f"lost the container {container.short_id} while it ran: {_one_line(exc)}"
        ) from None
    return out, err, tail, status


class DockerSeam:
    """The ContainerSeam protocol over one connected Docker engine."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.version = engine.version

    def ensure_image(self, repo_root: Path | str | None = None, tag: str | None = None,
                     base_image: str | None = None, on_event: EventSink | None = None) -> ImageInfo:
        return ensure_image(self.engine, repo_root, tag=tag, base_image=base_image,
                            on_event=on_event)

    def default_base(self) -> str | None:
        return default_base(self.engine)

    def run(self, image: ImageInfo, argv: Sequence[str], mounts: Iterable[Mount] = (),
            env: Mapping[str, str] | None = None, on_event: EventSink | None = None,
            gpus: bool = False) -> RunOutcome:
        return run(self.engine, image, argv, mounts=mounts, env=env, on_event=on_event, gpus=gpus)


def connect_seam(timeout_s: float = 10.0) -> DockerSeam:
    """The engine DOCKER_HOST names, behind the ContainerSeam protocol."""
    return DockerSeam(connect(timeout_s))
