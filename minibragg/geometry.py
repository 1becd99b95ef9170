"""The detector frame: unit vectors, pivot, pix0, close distance (facts §4 steps 1–3, CUSTOM path).

Pure double-precision set-up from a Config; the per-pixel positions are computed by the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config, beam_center_mm
from .vectors import Vec3, cross, dot, magnitude, unit

POLARIZATION_AXIS: Vec3 = (0.0, 0.0, 1.0)  # the CUSTOM convention's default


@dataclass(frozen=True)
class Detector:
    """Lengths in metres."""

    fdet: Vec3
    sdet: Vec3
    odet: Vec3
    beam: Vec3  # unit incident direction
    pix0: Vec3
    distance: float
    close_distance: float
    pixel: float
    fpixels: int
    spixels: int
    odet_auto: bool  # |odet| was not exactly 1: o was rebuilt as unit(f x s), warn about it


def detector_frame(config: Config) -> Detector:
    beam = unit(config.beam)
    fdet = unit(config.fdet)
    sdet = unit(config.sdet)
    # The contract (after nanoBragg) trusts odet only when its length is exactly 1.0.
    odet_auto = magnitude(config.odet) != 1.0
    odet = unit(cross(fdet, sdet)) if odet_auto else unit(config.odet)

    xbeam_mm, ybeam_mm = beam_center_mm(config)
    xbeam = xbeam_mm / 1000.0
    ybeam = ybeam_mm / 1000.0
    distance = config.distance_mm / 1000.0
    ratio = dot(beam, odet)

    if config.pivot == "SAMPLE":
        if config.close_distance_mm is not None:
            close_distance = config.close_distance_mm / 1000.0
            distance = close_distance / ratio
        else:
            close_distance = abs(ratio * distance)
        origin, length = odet, close_distance
    else:
        close_distance = abs(ratio * distance)
        origin, length = beam, distance

    pix0 = tuple(-xbeam * fdet[i] - ybeam * sdet[i] + length * origin[i] for i in range(3))
    return Detector(
        fdet=fdet,
        sdet=sdet,
        odet=odet,
        beam=beam,
        pix0=pix0,  # type: ignore[arg-type]
        distance=distance,
        close_distance=close_distance,
        pixel=config.pixel_mm / 1000.0,
        fpixels=config.fpixels,
        spixels=config.spixels,
        odet_auto=odet_auto,
    )
