"""A capture run inside the pinned image: the host side.

The host builds (or finds) the image through the container seam, mounts the target repo
read-only and the bundles directory read-write, and runs ``nb-evidence capture ... --native``
inside, as the invoking uid:gid, with no network. The capture inside is the very same code as a
native one; it records the image (id, tag, repo digests, Dockerfile and lock sha256, build
arguments, engine version) from NB_CONTAINER_* variables the host passes in, so the bundle has the
same format either way. Its JSON result comes back on stdout.

A failed image build still leaves evidence: a partial bundle whose one command is the build, with
the builder's last lines as its log.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bundle.container import docker_seam as container
from bundle.capture.options import CaptureOptions
from bundle.capture.request import CaptureRequest
from bundle.container.inner import BUNDLES, inner_capture, inner_replay
from bundle.container.seam import (ContainerBuildError, ContainerEvent, ContainerSeam, ImageInfo,
                                   Mount)
from bundle.store.writer import user_path, write_bundle
from bundle.capture.environment import USER_WINS, allowed, collect, git_state
from bundle.capture.preflight import wants_gpu
from bundle.present.manifest import arguments_data, target_data
from bundle.model.errors import ContainerError, UserError
from bundle.model.records import CaptureResult, CommandRecord
from bundle.capture.runner import Event, EventSink, utc_now
from bundle.model.hashing import digest
from bundle.capture.spec import load_spec
from bundle.store.writer import new_bundle_id, open_staging


def image_names() -> dict[str | None, str | None]:
    """--image names for the two images we build: cpu is this checkout's content tag (built when
    missing, as with no --image); cuda what `make image-cuda` tags (NB_IMAGE_CUDA where it was
    tagged otherwise), never built unasked: 6 GB and minutes."""
    return {"cpu": None, "cuda": os.environ.get("NB_IMAGE_CUDA") or f"{container.REPOSITORY}:cuda"}


def missing_image(image: str | None, exc: ContainerError) -> ContainerError:
    """The one line for an image that is not there: for the CUDA image, how to build it."""
    if image == "cuda" and "is not on the engine" in str(exc):
        return UserError(f"--image cuda: {image_names()['cuda']} is not on the engine; build it with "
                         "`make image-cuda` (no GPU needed to build)")
    return exc


@dataclass(frozen=True)
class ContainerCapture:
    result: dict  # the capture's --json object, with the bundle path as the host sees it
    image: ImageInfo
    exit_code: int


def _events(sink: EventSink | None):
    if sink is None:
        return None

    def forward(ev: ContainerEvent) -> None:
        if ev.kind in ("image", "build", "run"):
            sink(Event("info", f"container {ev.kind}", ev.message))

    return forward


def _run_inside(engine: ContainerSeam, info: ImageInfo, argv: list[str],
                mounts: list[Mount], host_repo: Path, bundles: Path,
                on_event: EventSink | None, what: str, gpus: bool = False) -> tuple[dict, int]:
    """Run one nb-evidence command in the image; its --json object, bundle path as the host sees it."""
    # The host's allow-listed variables travel, except those that describe the host itself.
    env = {k: v for k, v in os.environ.items()
           if allowed(k) and k not in ("PATH", "HOME", "TMPDIR", "PYTHONPATH") + USER_WINS
           and not k.startswith("NB_CONTAINER_")}
    env.update(info.env())
    env["NB_HOST_REPO"] = str(host_repo)  # so the manifest can say which host checkout /repo was
    outcome = engine.run(info, argv, mounts=mounts, env=env, on_event=_events(on_event), gpus=gpus)
    try:
        data = json.loads(outcome.stdout)
    except json.JSONDecodeError:
        last = next((line for line in reversed(outcome.stderr.splitlines()) if line.strip()),
                    f"exit {outcome.exit_code}")
        if outcome.exit_code == 2 and last.startswith("error: "):
            raise UserError(last.removeprefix("error: ")) from None  # its own one-line refusal
        raise ContainerError(f"the {what} inside {info.tag} failed: {last}") from None
    if isinstance(data.get("bundle"), str) and data["bundle"].startswith(BUNDLES + "/"):
        data["bundle"] = user_path(bundles / data["bundle"][len(BUNDLES) + 1:])
    return data, outcome.exit_code


def failed_build_bundle(spec_path: Path, options: CaptureOptions, error: ContainerBuildError,
                        started: str) -> Path:
    """A partial bundle recording the failed image build (its last lines as the log)."""
    spec = load_spec(spec_path)
    start = datetime.now(timezone.utc)
    bundle_id = new_bundle_id(spec.name, spec.args_sha256(), start)
    bundles = options.bundles.resolve()
    staging = open_staging(bundles, bundle_id)
    logs = staging / "logs"
    logs.mkdir()
    (logs / "image-build.stdout").write_text("\n".join(error.log_tail) + "\n")
    (logs / "image-build.stderr").write_text(str(error) + "\n")
    record = CommandRecord(
        step="image-build", role="build", engine=None,
        argv=("docker", "build", "-f", "Dockerfile", str(container.project_root())),
        cwd=str(container.project_root()), env=(), start_utc=started, end_utc=utc_now(),
        wall_s=0.0, exit_code=1, error=str(error),
        stdout=digest(logs / "image-build.stdout", "logs/image-build.stdout", "bundle"),
        stderr=digest(logs / "image-build.stderr", "logs/image-build.stderr", "bundle"),
    )
    result = CaptureResult(
        bundle_id=bundle_id, status="partial", verdict="incomplete", spec=spec.to_data(),
        target=spec.target, pixel=spec.pixel, engines=(), comparison=None, metrics=None,
        commands=(record,), environment=collect(options.python),
        notes=(f"the container image could not be built: {error}",),
        reproduce=f"nb-evidence capture {spec_path} --in-container",
        created_utc=start.isoformat().replace("+00:00", "Z"),
        extra={"stderr_tails": {"image-build": "\n".join(error.log_tail[-15:])}},
    )
    repo = str(options.repo.resolve())
    return write_bundle(staging, bundles, result, {},
                        target=target_data(spec.target, {}, repo, git_state(options.repo)),
                        arguments=arguments_data(spec.args, spec.args_sha256(), {}, {},
                                                 {"repo": repo, "scratch": None,
                                                  "python": options.python}),
                        engines=[], inputs=[], bundle_path=user_path(bundles / bundle_id))


def capture_in_container(request: CaptureRequest, on_event: EventSink | None = None,
                         project: Path | None = None,
                         engine: ContainerSeam | None = None) -> ContainerCapture:
    """``project`` is the nb-evidence checkout whose Dockerfile makes the image (default: this
    one); ``engine`` the container engine (default: the Docker engine DOCKER_HOST names)."""
    loaded = load_spec(request.spec_path)  # bad input fails here, on the host, before any image work
    options = request.options
    engine = engine or container.connect_seam()
    started = utc_now()
    try:
        info = engine.ensure_image(project, tag=image_names().get(request.image, request.image),
                                   base_image=engine.default_base(), on_event=_events(on_event))
    except ContainerBuildError as exc:
        path = failed_build_bundle(request.spec_path, options, exc, started)
        raise ContainerError(f"image build failed ({exc}); partial bundle at {user_path(path)}") from None
    except ContainerError as exc:
        raise missing_image(request.image, exc) from None
    options.bundles.resolve().mkdir(parents=True, exist_ok=True)
    argv, mounts = inner_capture(request)
    result, exit_code = _run_inside(engine, info, argv, mounts, options.repo.resolve(),
                                    options.bundles.resolve(), on_event, "capture",
                                    gpus=wants_gpu(loaded, request.option("py", "device")))
    return ContainerCapture(result=result, image=info, exit_code=exit_code)


def replay_in_container(source: Path, manifest: dict, repo: Path | None, bundles: Path,
                        trust: bool = False, timeout: float | None = None,
                        on_event: EventSink | None = None) -> dict:
    """Replay a containerized bundle inside its recorded image (or, when that image is gone, one
    rebuilt from this checkout's Dockerfile, saying whether the id matches). The replay itself,
    judging included, is the same `nb-evidence replay --native` code, run inside."""
    recorded = (manifest.get("environment") or {}).get("container") or {}
    engine = container.connect_seam()
    image_note: dict = {"recorded": recorded.get("image_id"), "rebuilt": False}
    try:
        if not recorded.get("image_id"):
            raise ContainerError("the bundle records no image")
        info = engine.ensure_image(tag=recorded["image_id"], on_event=_events(on_event))
    except ContainerError:
        info = engine.ensure_image(base_image=engine.default_base(), on_event=_events(on_event))
        image_note["rebuilt"] = True
    image_note["used"] = info.id
    image_note["id_matches"] = info.id == recorded.get("image_id")

    target = manifest.get("target") or {}
    host_repo = Path(repo or target.get("host_repo") or target.get("repo")).resolve()
    if not host_repo.is_dir():
        raise ContainerError(f"--repo {host_repo}: not a directory; pass the checkout to replay against")
    bundles = bundles.resolve()
    bundles.mkdir(parents=True, exist_ok=True)
    argv, mounts = inner_replay(source, host_repo, bundles, trust=trust, timeout=timeout)
    summary, _code = _run_inside(engine, info, argv, mounts, host_repo, bundles, on_event, "replay")
    summary["image"] = image_note
    return summary
