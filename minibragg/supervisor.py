"""The supervisor command of nanobragg-facts §2: the case the whole workflow is about.

Kept in one place so the inputs generator, the tests and the benchmark run the same arguments.
"""

from __future__ import annotations

TRACE_PIXEL = (1039, 685)  # (slow, fast)
SPIXELS, FPIXELS = 2527, 2463

A_MATRIX_TEXT = (
    "-0.02837711 -0.00305386 0.02535816\n"
    "-0.02871390 0.01019549 -0.01400049\n"
    "0.01050048 -0.03209440 -0.01036054\n"
)


def supervisor_args(mat: str = "A.mat", hkl: str = "scaled.hkl", floatfile: str = "img.bin") -> list[str]:
    return [
        "-mat", mat, "-floatfile", floatfile, "-hkl", hkl, "-nonoise", "-nointerpolate",
        "-oversample", "1", "-exposure", "1", "-flux", "1e18", "-beamsize", "1.0",
        "-spindle_axis", "-1", "0", "0", "-Xbeam", "217.742295", "-Ybeam", "213.907080",
        "-distance", "231.274660", "-lambda", "0.976800", "-pixel", "0.172",
        "-detpixels_x", str(FPIXELS), "-detpixels_y", str(SPIXELS),
        "-odet_vector", "-0.000088", "0.004914", "-0.999988",
        "-sdet_vector", "-0.005998", "-0.999970", "-0.004913",
        "-fdet_vector", "0.999982", "-0.005998", "-0.000118",
        "-pix0_vector_mm", "-216.336293", "215.205512", "-230.200866",
        "-beam_vector", "0.00051387949", "0.0", "-0.99999986",
        "-Na", "36", "-Nb", "47", "-Nc", "29", "-osc", "0.1", "-phi", "0", "-phisteps", "10",
        "-detector_rotx", "0", "-detector_roty", "0", "-detector_rotz", "0", "-twotheta", "0",
    ]
