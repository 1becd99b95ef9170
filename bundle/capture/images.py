"""An engine's float image, read as soon as the engine's run ends: loaded, summarized for the
metrics and pooled for display.

A capture runs its engines one after another, so the reference engine's image is read in the
background while the candidate engine runs (its start-up leaves a core idle), and after the
last engine only the candidate's share of this work is left. A thread, not a process: the main
thread is only waiting on a child process meanwhile, numpy releases the GIL for the bulk of the
work, and the arrays stay in this process's memory with nothing pickled.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bundle.analysis.metrics import ImageSummary, load_float_image, summarize_image
from bundle.analysis.pooling import display_block, pool_max
from bundle.model.errors import ImageError


@dataclass(frozen=True, eq=False)
class EngineImage:
    """One engine's image, or why it could not be read (``error``, one line naming the file)."""

    engine: str
    path: Path
    image: np.ndarray | None = None
    summary: ImageSummary | None = None
    pooled: np.ndarray | None = None  # pooled with display_block(shape), for the image plots
    error: str | None = None


def read_engine_image(engine: str, path: Path, shape: tuple[int, int]) -> EngineImage:
    try:
        image = load_float_image(path, *shape)
    except ImageError as exc:
        return EngineImage(engine, path, error=str(exc))
    return EngineImage(engine, path, image, summarize_image(image),
                       pool_max(image, display_block(shape)))


class EngineImages:
    """read_engine_image for each engine, started when its run ends, on the caller's executor."""

    def __init__(self, executor: ThreadPoolExecutor, shape: tuple[int, int]):
        self._executor = executor
        self._shape = shape
        self._started: dict[str, Future] = {}

    def start(self, engine: str, path: Path) -> None:
        self._started[engine] = self._executor.submit(read_engine_image, engine, path, self._shape)

    def get(self, engine: str) -> EngineImage | None:
        """The engine's image (waiting for it), or None when none was started."""
        started = self._started.get(engine)
        return started.result() if started is not None else None
