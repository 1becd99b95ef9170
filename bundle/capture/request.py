"""What a caller asks of one capture, as a record: the spec, the options, and the mode (native or
in the pinned container; run, or only show the plan). The library decides from this record what
happens (bundle.pipeline.execute), so no command-line branch can combine the modes wrongly."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from bundle.capture.options import CaptureOptions
from bundle.capture.spec import Spec, load_spec, with_engine_option
from bundle.capture.target import TargetProfile, load_target
from bundle.model.errors import UserError

# (engine, option) -> the capture flag that sets it; the in-container argv is built from this.
ENGINE_FLAGS = {("py", "dtype"): "--py-dtype", ("py", "device"): "--py-device",
                ("c", "threads"): "--c-threads"}
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class CaptureRequest:
    spec_path: Path
    options: CaptureOptions
    target: str | None = None  # a built-in target's name or a profile TOML; None: the spec's
    engine_options: tuple[tuple[str, str, str | int], ...] = ()  # (engine, option, value)
    in_container: bool = False
    image: str | None = None  # for in_container; None: this checkout's content tag
    dry_run: bool = False

    def option(self, engine: str, option: str) -> str | int | None:
        """The value a flag gave one engine option (``--py-device`` -> ("py", "device")), if any."""
        return next((v for e, o, v in self.engine_options if (e, o) == (engine, option)), None)


def make_request(spec_path: Path, *, repo: Path | None = None, bundles: Path = Path("bundles"),
                 target: str | None = None, c_bin: Path | None = None,
                 c_log: Path | None = None, c_only: bool = False, py_only: bool = False,
                 engine_options: dict[tuple[str, str], str | int | None] | None = None,
                 timeout: float | None = None, in_container: bool = False,
                 native: bool = False, image: str | None = None, dry_run: bool = False,
                 keep_scratch: bool = False) -> CaptureRequest:
    """The request the capture flags make; a contradiction raises UserError naming the flags."""
    if in_container and native:
        raise UserError("--in-container and --native exclude each other")
    if c_only and py_only:
        raise UserError("--c-only and --py-only exclude each other")
    if image is not None and not in_container:
        raise UserError("--image names the image for --in-container; add --in-container")
    chosen = tuple((e, o, v) for (e, o), v in (engine_options or {}).items() if v is not None)
    for engine, option, value in chosen:
        if (engine, option) not in ENGINE_FLAGS:
            raise UserError(f"no capture flag sets {engine} option {option}")
        if option == "dtype" and value not in DTYPES:
            raise UserError(f"--py-dtype {value}: must be float32 or float64")
        if option == "threads" and (isinstance(value, bool) or not isinstance(value, int)
                                    or value < 1):
            raise UserError(f"{ENGINE_FLAGS[(engine, option)]} {value}: must be a positive integer")
    check_timeout(timeout)
    options = CaptureOptions(
        repo=(repo or default_repo(spec_path, target)).resolve(), bundles=bundles,
        engines=("c",) if c_only else ("py",) if py_only else None,
        prebuilt={"c": str(c_bin)} if c_bin else {},
        reuse_logs={"c": str(c_log)} if c_log else {},
        timeout=timeout, keep_scratch=keep_scratch)
    return CaptureRequest(spec_path=spec_path, options=options, target=target,
                          engine_options=chosen, in_container=in_container, image=image,
                          dry_run=dry_run)


def check_timeout(timeout: float | None) -> None:
    """``--timeout`` must be a positive, finite number of seconds (nan would never fire; inf and
    negatives are not limits)."""
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise UserError(f"--timeout {timeout:g}: must be a positive number of seconds")


def default_repo(spec_path: Path, target: str | None) -> Path:
    """minibragg's repo is the nb-evidence checkout that ships it; anything else: the cwd."""
    if load_target(target or load_spec(spec_path).target).name == "minibragg":
        # bundle/ and minibragg/ are siblings, in a checkout and in site-packages alike.
        root = Path(__file__).resolve().parents[2]
        if (root / "minibragg" / "minibragg.c").is_file():
            return root
    return Path.cwd()


def load_request(request: CaptureRequest) -> tuple[Spec, TargetProfile]:
    """The spec (with the request's engine options applied) and the target profile."""
    spec = load_spec(request.spec_path)
    profile = load_target(request.target or spec.target)
    for engine, option, value in request.engine_options:
        spec = with_engine_option(spec, engine, option, value)
    return spec, profile
