"""Image statistics over the computed pixels (the ROI), as both engines print them.

Computed from the float32 values stored in the image (what -floatfile holds), in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ImageStats:
    max_I: float
    max_slow: int
    max_fast: int
    mean: float
    rms: float
    rmsd: float


def image_stats(image: torch.Tensor, roi: tuple[int, int, int, int]) -> ImageStats:
    xmin, xmax, ymin, ymax = roi
    flat = image[ymin:ymax + 1, xmin:xmax + 1].reshape(-1).to(torch.float64, copy=True)
    where = int(torch.argmax(flat))  # the first maximum in memory order
    ncols = xmax - xmin + 1
    n = flat.numel()
    mean = float(flat.sum()) / n
    rms = math.sqrt(float(torch.dot(flat, flat)) / n)
    max_I = float(flat[where])
    flat -= mean  # two passes, as the C engine: the deviations from the mean, then their rms
    rmsd = math.sqrt(float(torch.dot(flat, flat)) / n)
    return ImageStats(max_I=max_I, max_slow=ymin + where // ncols, max_fast=xmin + where % ncols,
                      mean=mean, rms=rms, rmsd=rmsd)


def stats_lines(stats: ImageStats) -> list[str]:
    return [
        "max_I = %.9g at slow %d fast %d" % (stats.max_I, stats.max_slow, stats.max_fast),
        "mean= %.9g rms= %.9g rmsd= %.9g" % (stats.mean, stats.rms, stats.rmsd),
    ]
