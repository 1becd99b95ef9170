"""What a caller chooses for one capture beyond the spec and the target: where, which engines,
reused logs and binaries, limits. A frozen record, passed down unchanged."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping


@dataclass(frozen=True)
class CaptureOptions:
    repo: Path
    bundles: Path
    python: str = sys.executable
    engines: tuple[str, ...] | None = None  # run only these (--c-only / --py-only)
    prebuilt: Mapping[str, str] = field(default_factory=dict)  # engine -> binary (--c-bin)
    reuse_logs: Mapping[str, str] = field(default_factory=dict)  # engine -> log (--c-log)
    timeout: float | None = None
    keep_scratch: bool = False
    replay_of: str | None = None
    trusted: bool = False  # a replay ran foreign commands (--trust): the manifest says so
    reproduce: str | None = None
    notes: tuple[str, ...] = ()
    # A directory of cached C builds (bundle.capture.buildcache); None builds every time.
    build_cache: str | None = None  # put in the bundle as they are (e.g. the preflight's warning)
