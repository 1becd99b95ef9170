"""Trace lines: the 40 keys of nanobragg-facts §5, formatted as the C engine prints them.

Pure formatting; the values come from the engine's recording of the traced pixel.
"""

from __future__ import annotations

TRACE_KEYS = (
    "pix0_vector_meters", "fdet_vec", "sdet_vec", "pixel_pos_meters", "R_distance_meters",
    "omega_pixel_sr", "close_distance_meters", "obliquity_factor", "diffracted_vec",
    "incident_vec", "lambda_meters", "lambda_angstroms", "scattering_vec_A_inv",
    "rot_a_angstroms", "rot_b_angstroms", "rot_c_angstroms", "rot_a_star_A_inv",
    "rot_b_star_A_inv", "rot_c_star_A_inv", "hkl_frac", "hkl_rounded", "F_latt_a", "F_latt_b",
    "F_latt_c", "F_latt", "F_cell", "I_before_scaling", "r_e_meters", "r_e_sqr",
    "fluence_photons_per_m2", "steps", "oversample_thick", "oversample_polar",
    "oversample_omega", "capture_fraction", "polar", "omega_pixel", "cos_2theta",
    "I_pixel_final", "floatimage_accumulated",
)

INT_KEYS = frozenset({"hkl_rounded", "steps", "oversample_thick", "oversample_polar", "oversample_omega"})


def _number(key: str, value: float | int) -> str:
    return "%d" % value if key in INT_KEYS else "%.15g" % value


def trace_lines(prefix: str, pixel: tuple[int, int], values: dict[str, tuple]) -> list[str]:
    """The free TRACE_CONFIG line, then one `PREFIX key v1 [v2 v3]` line per key, in order."""
    slow, fast = pixel
    lines = [f"TRACE_CONFIG: tracing pixel (spixel={slow}, fpixel={fast})"]
    for key in TRACE_KEYS:
        lines.append(f"{prefix} {key} " + " ".join(_number(key, v) for v in values[key]))
    return lines
