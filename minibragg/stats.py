"""Image statistics over the computed pixels (the ROI), as both engines print them.

Computed from the float32 values stored in the image (what -floatfile holds), in float64.
"""

from __future__ import annotations

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
    region = image[ymin:ymax + 1, xmin:xmax + 1].to(torch.float64)
    flat = region.reshape(-1)
    where = int(torch.argmax(flat))  # the first maximum in memory order
    ncols = xmax - xmin + 1
    mean = flat.mean()
    rms = torch.sqrt((flat * flat).mean())
    rmsd = torch.sqrt(((flat - mean) ** 2).mean())
    return ImageStats(max_I=float(flat[where]), max_slow=ymin + where // ncols,
                      max_fast=xmin + where % ncols, mean=float(mean), rms=float(rms), rmsd=float(rmsd))


def stats_lines(stats: ImageStats) -> list[str]:
    return [
        "max_I = %.9g at slow %d fast %d" % (stats.max_I, stats.max_slow, stats.max_fast),
        "mean= %.9g rms= %.9g rmsd= %.9g" % (stats.mean, stats.rms, stats.rmsd),
    ]
