"""A run's member capture: the Spec one run of a suite is captured with. Pure.

The engines still receive one identical argument list: the run's args, plus the profile's image
flag with a relative file name when the args name no image output (the engines write it in their
own cwd, and the capture puts it into the bundle).
"""

from __future__ import annotations

import re
from typing import Any

from bundle.capture.spec import Spec, parse_spec
from bundle.capture.target import TargetProfile, load_target
from bundle.suite.model import Run, Suite

IMAGE_FILE = "image.bin"


def member_name(suite: Suite, run: Run) -> str:
    """``<suite>-<case>-<run>``, in the characters a bundle id keeps."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{suite.name}-{run.case}-{run.name}").strip("-")


def member_args(run: Run, profile: TargetProfile) -> tuple[str, ...]:
    if profile.image_flag in run.args:
        return run.args
    return (*run.args, profile.image_flag, IMAGE_FILE)


def member_spec(suite: Suite, run: Run, *, pixel: tuple[int, int] | None = None,
                threads: int = 1, profile: TargetProfile | None = None) -> Spec:
    """The member capture's Spec: traced at ``pixel`` (None: untraced, the image only); every
    engine's ``threads`` option (OMP_NUM_THREADS) is ``threads``, where the profile has one; the suite's shared ``inputs``,
    ``tolerance`` and ``engines`` as a spec file would give them."""
    profile = profile or load_target(suite.target)
    defaults = dict(suite.spec_defaults)
    engines: dict[str, dict[str, Any]] = {k: dict(v) for k, v in
                                          (defaults.pop("engines", None) or {}).items()}
    for engine in profile.engines:
        if "threads" in engine.option_env or "threads" in engine.option_flags:
            engines.setdefault(engine.name, {})["threads"] = threads
    data: dict[str, Any] = {"name": member_name(suite, run), "target": suite.target,
                            "args": list(member_args(run, profile)), "engines": engines,
                            **{k: v for k, v in defaults.items() if k in ("inputs", "tolerance")}}
    if run.description:
        data["description"] = run.description
    if pixel is not None:
        data["pixel"] = [int(pixel[0]), int(pixel[1])]
    return parse_spec(data, source=f"{suite.source}#{run.case}/{run.name}")
