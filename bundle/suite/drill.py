"""The drill-down pixel of a run: where to trace both engines.

Failing run: among the bright pixels (either engine >= BRIGHT_FRACTION of that engine's
maximum), the one with the largest |py - c| (the first in memory order on a tie); the run's own
pixel wins when it has one. ``--trace all``: the run's pixel, else the brightest C pixel.
``choose_pixel`` is pure over arrays; ``member_images`` reads a member bundle's images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bundle.analysis.metrics import load_float_image

BRIGHT_FRACTION = 1e-3
OWN = "the run's pixel"
LARGEST = "largest |py - c| among bright pixels"
BRIGHTEST = "brightest C pixel"


def largest_difference(c: np.ndarray, py: np.ndarray) -> tuple[int, int] | None:
    """(slow, fast) of the largest finite |py - c| among bright pixels; None when none is."""
    c64, p64 = c.astype(np.float64), py.astype(np.float64)
    with np.errstate(all="ignore"):
        # a nan or inf on either side counts as bright: it is the worst difference there is
        bright = ((c64 >= BRIGHT_FRACTION * np.nanmax(c64)) | (p64 >= BRIGHT_FRACTION * np.nanmax(p64))
                  | ~np.isfinite(c64) | ~np.isfinite(p64))
        diff = np.where(bright, np.abs(p64 - c64), -np.inf)
    diff = np.where(np.isnan(diff), np.inf, diff)  # a nan pixel is the worst difference
    if not np.isfinite(diff).any() and not np.isposinf(diff).any():
        return None
    k = int(np.argmax(diff))
    return divmod(k, c.shape[1])


def brightest(c: np.ndarray) -> tuple[int, int]:
    flat = np.nan_to_num(c.reshape(-1).astype(np.float64), nan=-np.inf)
    return divmod(int(np.argmax(flat)), c.shape[1])


def choose_pixel(mode: str, own: tuple[int, int] | None, c: np.ndarray | None,
                 py: np.ndarray | None) -> tuple[tuple[int, int] | None, str]:
    """(pixel, why) for ``mode`` "failing" (a failing run) or "all"; (None, why) when there is
    no image to choose from."""
    if own is not None:
        return own, OWN
    if mode == "all":
        if c is None:
            return None, "no C image to choose a pixel from"
        return tuple(int(v) for v in brightest(c)), BRIGHTEST
    if c is None or py is None:
        return None, "no pair of images to choose a pixel from"
    pixel = largest_difference(c, py)
    if pixel is None:
        return None, "no bright pixel"
    return (int(pixel[0]), int(pixel[1])), LARGEST


def member_images(bundle: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The C and PyTorch images of a member bundle (images/<engine>.bin, float32 (slow, fast)
    with the shape its manifest's metrics record); None for one that is not there."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    metrics = (manifest.get("result") or {}).get("metrics") or {}
    shape = (metrics.get("slow"), metrics.get("fast"))
    if not all(isinstance(v, int) and v > 0 for v in shape):
        return None, None
    out = []
    for engine in ("c", "py"):
        path = bundle / "images" / f"{engine}.bin"
        out.append(load_float_image(path, *shape) if path.is_file() else None)
    return out[0], out[1]
