"""One run of the PyTorch engine, as data: Config -> Result. The CLI prints and writes it.

Everything that can be refused (flags, files, the device) is checked before any pixel is
computed, so a refused run costs nothing and leaves no image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import Config
from .errors import MinibraggError
from .scene import Scene, load_scene

ODET_WARNING = "WARNING: auto-generating odet_vector"


@dataclass(frozen=True)
class Result:
    image: np.ndarray  # (spixels, fpixels) float32, host memory
    trace: dict[str, tuple] | None
    stats: object  # stats.ImageStats
    warnings: tuple[str, ...]


def check_device(device: str) -> None:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise MinibraggError("-device cuda: no CUDA device is available")


def warnings_for(scene: Scene) -> tuple[str, ...]:
    """The WARNING lines both engines print before computing (same words as the C engine)."""
    lines = [ODET_WARNING] if scene.detector.odet_auto else []
    if scene.trace_pixel is not None:
        slow, fast = scene.trace_pixel
        xmin, xmax, ymin, ymax = scene.roi
        if not (ymin <= slow <= ymax and xmin <= fast <= xmax):
            lines.append(f"WARNING: trace pixel (slow {slow}, fast {fast}) is outside the ROI; "
                         "its image value is 0")
    return tuple(lines)


def prepare(config: Config) -> Scene:
    """Read the inputs and check the device: every refusal happens here."""
    scene = load_scene(config)
    check_device(config.device)
    return scene


def run(config: Config, scene: Scene) -> Result:
    from .engine import render
    from .stats import image_stats

    rendering = render(scene, dtype=config.dtype, device=config.device)
    stats = image_stats(rendering.image, scene.roi)
    return Result(image=rendering.image.cpu().numpy(), trace=rendering.trace, stats=stats,
                  warnings=warnings_for(scene))
