"""The PyTorch minibragg engine on its own: physics checked against hand computation (no C
engine involved), refused inputs, and the supervisor inputs generator.

The hand-computed case is a small cubic crystal (10 Å, 90°) on the default detector (beam along
+x, fast axis +z, slow axis -y, 100 mm, 0.1 mm pixels, 21 x 21 so that pixel (10, 10) is
centred on the direct beam).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from minibragg import inputs
from minibragg.__main__ import main
from minibragg.config import parse_args
from minibragg.engine import _constants, lattice_factor, lattice_sign, render, render_chunk, sincg_
from minibragg.hklgrid import build_grid
from minibragg.readers import read_hkl
from minibragg.scene import R_E_SQR, load_scene
from minibragg.supervisor import A_MATRIX_TEXT, supervisor_args
from minibragg.trace import TRACE_KEYS

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FLUENCE = 1.25932015286227e29
CUBIC = ["-cell", "10", "10", "10", "90", "90", "90", "-lambda", "1", "-distance", "100",
         "-pixel", "0.1", "-detpixels", "21", "-default_F", "100"]
PIXEL = 1e-4  # m
DISTANCE = 0.1  # m


def trace_for(args: list[str], dtype: str = "float64", **render_kw):
    rendering = render(load_scene(parse_args(args)), dtype=dtype, **render_kw)
    return rendering.trace, rendering.image


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def run_main(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(args)
    return rc, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------------------- physics


def test_direct_beam_pixel_is_on_bragg():
    """q = 0 at the direct-beam pixel: h = k = l = 0, every sincg at its peak N, F(000)."""
    trace, image = trace_for([*CUBIC, "-Na", "3", "-Nb", "4", "-Nc", "5", "-trace_pixel", "10", "10"])
    pos = trace["pixel_pos_meters"]
    assert rel(pos[0], DISTANCE) < 1e-15 and abs(pos[1]) < 1e-18 and abs(pos[2]) < 1e-18
    assert rel(trace["R_distance_meters"][0], DISTANCE) < 1e-15
    assert all(abs(q) < 1e-6 for q in trace["scattering_vec_A_inv"])  # m⁻¹; |q| of a Bragg spot ~1e9
    assert trace["hkl_rounded"] == (0, 0, 0)
    assert [trace[k][0] for k in ("F_latt_a", "F_latt_b", "F_latt_c")] == pytest.approx([3, 4, 5], rel=1e-14)
    assert rel(trace["F_latt"][0], 60.0) < 1e-14
    assert trace["F_cell"] == (100.0,)
    # ω = pixel²/R² · close/R = pixel²/distance² on axis; obliquity 1; cos2θ = 1 -> polar 1 (K = 0)
    assert rel(trace["omega_pixel_sr"][0], (PIXEL / DISTANCE) ** 2) < 1e-14
    assert rel(trace["obliquity_factor"][0], 1.0) < 1e-15
    assert rel(trace["cos_2theta"][0], 1.0) < 1e-15
    assert rel(trace["polar"][0], 1.0) < 1e-15
    assert rel(trace["I_before_scaling"][0], 100.0**2 * 60.0**2) < 1e-13
    expected = 100.0**2 * 60.0**2 * R_E_SQR * DEFAULT_FLUENCE * (PIXEL / DISTANCE) ** 2
    assert rel(trace["I_pixel_final"][0], expected) < 1e-13
    assert float(image[10, 10]) == trace["floatimage_accumulated"][0]
    assert float(image.max()) == float(image[10, 10])  # nothing beats the on-Bragg pixel


def test_steps_divide_the_sum_over_phi_steps():
    """Three φ steps of zero width: the same on-Bragg term three times, divided by steps = 3."""
    one, _ = trace_for([*CUBIC, "-N", "4", "-trace_pixel", "10", "10"])
    three, _ = trace_for([*CUBIC, "-N", "4", "-phisteps", "3", "-trace_pixel", "10", "10"])
    assert three["steps"] == (3,)
    assert rel(three["I_before_scaling"][0], 3 * one["I_before_scaling"][0]) < 1e-14
    assert rel(three["I_pixel_final"][0], one["I_pixel_final"][0]) < 1e-14


def test_oversample_uses_full_pixel_omega_and_last_subpixel():
    """n = 2: steps = φ steps·n²; ω of a sub-pixel still uses the whole pixel's area; the first
    and last sub-pixels sit at (∓pixel/4, ∓pixel/4) from the beam, at the same R."""
    trace, _ = trace_for([*CUBIC, "-oversample", "2", "-phisteps", "2", "-trace_pixel", "10", "10"])
    assert trace["steps"] == (8,)
    r = math.sqrt(DISTANCE**2 + 2 * (PIXEL / 4) ** 2)
    assert rel(trace["R_distance_meters"][0], r) < 1e-14
    assert rel(trace["omega_pixel_sr"][0], PIXEL**2 / r**2 * DISTANCE / r) < 1e-14
    assert rel(trace["omega_pixel"][0], PIXEL**2 / r**2 * DISTANCE / r) < 1e-14
    pos = trace["pixel_pos_meters"]  # first sub-pixel: u = v = 0, towards -f and -s
    assert pos[2] == pytest.approx(-PIXEL / 4, rel=1e-9) and pos[1] == pytest.approx(PIXEL / 4, rel=1e-9)


def test_fluence_from_flux_exposure_beamsize_wins_over_fluence():
    trace, _ = trace_for([*CUBIC, "-fluence", "5e20", "-flux", "1e12", "-exposure", "2",
                          "-beamsize", "0.5", "-trace_pixel", "10", "10"])
    assert rel(trace["fluence_photons_per_m2"][0], 1e12 * 2 / (0.5e-3) ** 2) < 1e-15
    plain, _ = trace_for([*CUBIC, "-fluence", "5e20", "-trace_pixel", "10", "10"])
    assert plain["fluence_photons_per_m2"] == (5e20,)


@pytest.mark.parametrize("K", ["0", "1"])
def test_polarization_along_fast_axis(K):
    """Pixel 10 px along f = +z: P = (d, 0, 1 mm). With p = (0,0,1): B_in = y, E_in = z, ψ = 0,
    so polar = 0.5(1 + c² - K·s²): K = 0 -> (1 + c²)/2, K = 1 -> c²."""
    trace, _ = trace_for([*CUBIC, "-polar", K, "-trace_pixel", "10", "20"])
    r = math.sqrt(DISTANCE**2 + 1e-3**2)
    c = DISTANCE / r
    assert rel(trace["cos_2theta"][0], c) < 1e-14
    assert rel(trace["polar"][0], (1 + c * c) / 2 if K == "0" else c * c) < 1e-13
    assert rel(trace["omega_pixel"][0], PIXEL**2 / r**2 * DISTANCE / r) < 1e-14
    assert rel(trace["obliquity_factor"][0], DISTANCE / r) < 1e-14


@pytest.mark.parametrize("K", ["0", "1"])
def test_polarization_along_slow_axis(K):
    """Pixel 10 px along s = -y: d ⊥ E_in, ψ = ±π/2, cos2ψ = -1: K = 1 -> polar = 1."""
    trace, _ = trace_for([*CUBIC, "-polar", K, "-trace_pixel", "20", "10"])
    c = DISTANCE / math.sqrt(DISTANCE**2 + 1e-3**2)
    assert rel(trace["polar"][0], (1 + c * c) / 2 if K == "0" else 1.0) < 1e-13


def test_nopolar_fixes_the_factor_at_one():
    trace, _ = trace_for([*CUBIC, "-polar", "1", "-nopolar", "-trace_pixel", "0", "0"])
    assert trace["polar"] == (1.0,)


def test_sincg_limit_and_values():
    x = torch.tensor([0.0, 1e-3, 0.7, -2.5], dtype=torch.float64)
    got = sincg_(x.clone(), 7).tolist()
    want = [7.0] + [math.sin(7 * v) / math.sin(v) for v in x.tolist()[1:]]
    assert got == pytest.approx(want, rel=1e-14)


def _sincg_reference(h: np.ndarray, n: int) -> np.ndarray:
    """sincg(πh, N) through (-1)^((N-1)h0)·sin(Nπf)/sin(πf), f = h - h0 exact, in float64:
    good to ~1e-12 relative at these points (the literal sin(Nπh) is off by ~1e-13 absolute
    for h ~ 50, too much next to a zero of the numerator)."""
    h0 = np.ceil(h - 0.5)
    f = h - h0
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(f == 0, n, np.sin(n * np.pi * f) / np.sin(np.pi * f))
    return ratio * (-1.0) ** ((n - 1) * h0)


@pytest.mark.parametrize("n", [4, 5, 36, 47])
def test_float32_lattice_factor_is_the_same_function(n):
    """float32 evaluates sincg(πh, N) as sin(πg)/sin(πf), f = h - h0, g = N·f - round(N·f) taken
    in float64, and leaves out the sign (-1)^(round(N·f) + (N-1)·h0) (lattice_sign): with the sign
    it is sincg itself, to float32's relative precision everywhere, on peaks, at large |h| and
    next to zeros of sin(Nπh). float64 is the literal sin(Nπh)/sin(πh) (as C), checked away from
    non-zero integers h, where rounding of N·πh makes the literal quotient lose digits (C the same)."""
    rng = np.random.default_rng(n)
    special = [0.0, 3.0, -3.0, 3.001, -2.999, 7.4, -0.3, 12.5, -12.5, 40.0004, 49.99996,
               3 + 1 / n + 1e-6, -17 - 2 / n - 3e-6, 51 + 5 / n + 2e-6, 0.5 / n, 2e-9, -44.0000001]
    h = np.concatenate([special, rng.uniform(-60, 60, 400), np.round(rng.uniform(-60, 60, 100))
                        + rng.uniform(-1e-3, 1e-3, 100)])
    ref = _sincg_reference(h, n)
    h64 = torch.tensor(h, dtype=torch.float64)
    h0 = torch.ceil(h64 - 0.5)
    got32 = lattice_factor(h64, h0, n, torch.float32)
    assert got32.dtype == torch.float32
    signed = (got32.double() * lattice_sign(h64, h0, n)).numpy()
    # atol: sincg(π·12.5, 4) is 0 exactly (float32 path: 0; the reference: 2e-16)
    assert np.all(np.abs(signed - ref) <= 1e-6 * np.abs(ref) + 1e-12)
    assert torch.equal(h64, torch.tensor(h, dtype=torch.float64))  # inputs not overwritten
    got64 = lattice_factor(h64, h0, n, torch.float64).numpy()
    # The literal quotient's N·πh and πh are ~1e-12 rad off: meaningful away from integers h.
    generic = (np.abs(h - np.ceil(h - 0.5)) > 1e-4) | (h == 0)
    assert np.allclose(got64[generic], ref[generic], rtol=1e-9, atol=1e-9)


def test_float32_mode_geometry_is_float64_and_pixels_within_2e_6():
    """float32 mode computes the geometry through h, k, l (and the final scaling) in float64 by
    the same code as float64 mode: those trace values are bit-identical; every pixel (lattice
    factor, F, sum in float32) lies within a few 1e-7 of float64's (measured 4.9e-7; with h in
    float32 it was 1.9e-3), on and off the peaks, over 9 decades of intensity."""
    args = ["-cell", "60", "70", "80", "88", "92", "95", "-misset", "5", "10", "-15", "-lambda", "1",
            "-distance", "100", "-pixel", "0.2", "-detpixels", "64", "-default_F", "100",
            "-Na", "20", "-Nb", "31", "-Nc", "12", "-phisteps", "3", "-osc", "0.3", "-oversample", "2",
            "-polar", "0.7", "-trace_pixel", "17", "41"]
    t32, img32 = trace_for(args, "float32")
    t64, img64 = trace_for(args, "float64")
    for key in ("pixel_pos_meters", "R_distance_meters", "omega_pixel_sr", "obliquity_factor",
                "diffracted_vec", "scattering_vec_A_inv", "hkl_frac", "hkl_rounded", "polar",
                "omega_pixel", "cos_2theta", "rot_a_angstroms", "r_e_sqr", "fluence_photons_per_m2"):
        assert t32[key] == t64[key], key
    for key in ("F_latt_a", "F_latt_b", "F_latt_c", "F_latt", "F_cell", "I_before_scaling", "I_pixel_final"):
        for a, b in zip(t32[key], t64[key]):
            assert rel(a, b) < 2e-6, key
    a, b = img32.double(), img64.double()
    assert float(b.min()) > 0.0
    assert float(((a - b).abs() / b).max()) < 2e-6
    assert len(torch.unique(img64)) > 2000  # a structured image, not a constant


def test_axis_with_one_cell_has_unit_lattice_factor():
    trace, _ = trace_for([*CUBIC, "-Na", "1", "-Nb", "6", "-Nc", "2", "-trace_pixel", "3", "17"])
    assert trace["F_latt_a"] == (1.0,)
    assert rel(trace["F_latt"][0], trace["F_latt_b"][0] * trace["F_latt_c"][0]) < 1e-15


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_trace_chain_composes_and_matches_image(dtype):
    trace, image = trace_for([*CUBIC, "-N", "3", "-oversample", "2", "-polar", "0.5",
                              "-trace_pixel", "4", "15"], dtype=dtype)
    chain = (trace["I_before_scaling"][0] / trace["steps"][0] * trace["r_e_sqr"][0]
             * trace["fluence_photons_per_m2"][0] * trace["capture_fraction"][0]
             * trace["polar"][0] * trace["omega_pixel"][0])
    assert rel(chain, trace["I_pixel_final"][0]) < (1e-14 if dtype == "float64" else 1e-5)
    assert trace["floatimage_accumulated"][0] == float(np.float32(trace["I_pixel_final"][0]))
    assert trace["floatimage_accumulated"][0] == float(image[4, 15])
    assert list(trace) == list(TRACE_KEYS)


def test_image_does_not_depend_on_chunking_or_workers():
    scene = load_scene(parse_args([*CUBIC, "-N", "3", "-oversample", "2", "-phisteps", "3", "-osc", "1"]))
    ref = render(scene, "float64", chunk_pixels=1, workers=1).image
    for chunk, workers in ((21 * 5, 2), (10**6, 1), (None, None)):
        assert torch.equal(render(scene, "float64", chunk_pixels=chunk, workers=workers).image, ref)


def test_roi_computes_only_its_pixels():
    trace, image = trace_for([*CUBIC, "-roi", "2", "5", "7", "9", "-trace_pixel", "8", "3"])
    inside = torch.zeros_like(image, dtype=torch.bool)
    inside[7:10, 2:6] = True
    assert bool((image[inside] > 0).all()) and bool((image[~inside] == 0).all())
    outside, image = trace_for([*CUBIC, "-roi", "2", "5", "7", "9", "-trace_pixel", "0", "0"])
    assert outside["floatimage_accumulated"] == (0.0,) and outside["I_pixel_final"][0] > 0


def write_hkl(path: Path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def test_hkl_lookup_listed_unlisted_duplicate(tmp_path):
    hkl = write_hkl(tmp_path / "list.hkl", ["# comment", "", "0 0 0 7.5", "1 1 1 2", "0 0 0 9.25",
                                            "-2 0 3 4"])
    trace, _ = trace_for([*CUBIC, "-hkl", hkl, "-default_F", "3", "-trace_pixel", "10", "10"])
    assert trace["F_cell"] == (9.25,)  # (000) listed twice: the later line wins
    listed = read_hkl(hkl)
    grid = build_grid(listed, 3.0, (1, 1, 1))
    values = grid.values.reshape(grid.shape)
    lo = grid.lo
    assert values[0 - lo[0], 1 - lo[1], 0 - lo[2]] == 3.0  # inside the box, not listed
    assert values[-2 - lo[0], 0 - lo[1], 3 - lo[2]] == 4.0


def test_hkl_fast_and_line_parsers_agree(tmp_path):
    """Big lists go through numpy's parser, lists with comments line by line: same result."""
    body = "".join(f"{h} {k} {-l} {h * 0.5 + l:.2f}\n" for h in range(-3, 3) for k in range(2) for l in range(4))
    plain = read_hkl(write_hkl(tmp_path / "plain.hkl", [body.rstrip("\n")]))
    commented = read_hkl(write_hkl(tmp_path / "commented.hkl", ["# h k l F", body.rstrip("\n")]))
    for name in ("h", "k", "l", "F"):
        assert np.array_equal(getattr(plain, name), getattr(commented, name))
    assert len(plain.F) == 48 and plain.h.dtype == np.int64


def test_masked_and_padded_grids_agree(tmp_path):
    """The padded grid (no per-pixel range test) and the listed box with a range test give
    the same F everywhere, in and out of the listed box."""
    lines = [f"{h} {k} {l} {1 + (h * 7 + k * 3 + l) % 11}" for h in range(-1, 2) for k in range(-1, 2)
             for l in range(-1, 2)]
    hkl = write_hkl(tmp_path / "small.hkl", lines)
    args = ["-cell", "30", "30", "30", "90", "90", "90", "-misset", "3", "4", "5", "-hkl", hkl,
            "-default_F", "0.5", "-N", "3", "-distance", "60", "-detpixels", "32", "-pixel", "0.5"]
    scene = load_scene(parse_args(args))
    assert scene.grid is not None and scene.grid.covers_reach
    masked = dataclasses.replace(scene, grid=build_grid(read_hkl(hkl), 0.5, (0, 0, 0), max_entries=1))
    assert not masked.grid.covers_reach
    for dtype in ("float64", "float32"):
        assert torch.equal(render(scene, dtype).image, render(masked, dtype).image)
    # The flat grid index in the working dtype, or in int64 (used when the dtype cannot hold
    # it exactly): same lookups.
    for which in (scene, masked):
        consts = _constants(which, torch.float32, torch.device("cpu"))
        assert consts.grid_index_in_dtype
        rows, cols = torch.arange(32.0), torch.arange(32.0)
        assert torch.equal(render_chunk(consts, rows, cols),
                           render_chunk(dataclasses.replace(consts, grid_index_in_dtype=False), rows, cols))


# ------------------------------------------------------------------------------- the CLI


def test_cli_prints_banner_trace_stats_and_writes_floatfile(tmp_path):
    out = tmp_path / "img.bin"
    rc, stdout, stderr = run_main([*CUBIC, "-N", "2", "-trace_pixel", "10", "10", "-floatfile", str(out),
                                   "-dtype", "float64"])
    assert rc == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == "minibragg PyTorch engine (dtype=float64, device=cpu)"
    assert lines[1] == "TRACE_CONFIG: tracing pixel (spixel=10, fpixel=10)"
    keys = [line.split()[1] for line in lines if line.startswith("TRACE_PY: ")]
    assert keys == list(TRACE_KEYS)
    assert "TRACE_PY: hkl_rounded 0 0 0" in lines and "TRACE_PY: steps 1" in lines
    image = np.fromfile(out, dtype="<f4").reshape(21, 21)
    assert lines[-2] == "max_I = %.9g at slow 10 fast 10" % image.max()
    mean = image.astype(np.float64).mean()
    rms = math.sqrt((image.astype(np.float64) ** 2).mean())
    assert lines[-1].startswith("mean= %.9g rms= %.9g rmsd= " % (mean, rms))
    assert os.listdir(tmp_path) == ["img.bin"]  # the temporary file was renamed


def test_cli_warns_about_auto_odet():
    rc, stdout, _ = run_main([*CUBIC, "-odet_vector", "1", "0", "0.001"])
    assert rc == 0 and stdout.splitlines()[1] == "WARNING: auto-generating odet_vector"


def write_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


BAD_INPUTS = [
    # (extra args (files made by `setup`), words the message must hold)
    (["-bogus"], ["unknown flag", "-bogus"]),
    (["-distance"], ["-distance", "needs 1 value"]),
    (["-misset", "1", "2"], ["-misset", "needs 3 values"]),
    (["-lambda", "abc"], ["-lambda", "'abc' is not a number"]),
    (["-Na", "2.5"], ["-Na", "not an integer"]),
    (["-pixel", "0"], ["-pixel", "> 0"]),
    (["-pixel", "-0.1"], ["-pixel", "> 0"]),
    (["-detpixels", "0"], ["-detpixels", "> 0"]),
    (["-detpixels_y", "-3"], ["-detpixels_y", "> 0"]),
    (["-twotheta", "5"], ["-twotheta", "not supported"]),
    (["-detector_rotx", "1"], ["-detector_rotx", "not supported"]),
    (["-dtype", "float16"], ["-dtype", "float16"]),
    (["-device", "tpu"], ["-device", "tpu"]),
    (["-trace_pixel", "21", "0"], ["-trace_pixel", "outside"]),
    (["-dump_pixel", "0", "-1"], ["-dump_pixel", "outside"]),
    (["-mat", "{missing}"], ["-mat", "missing.mat"]),
    (["-mat", "{mat8}"], ["-mat", "eight.mat", "9 numbers", "found 8"]),
    (["-mat", "{matbad}"], ["-mat", "bad.mat", "'x' is not a number"]),
    (["-hkl", "{hklindex}"], ["index.hkl:3", "'1.5'", "not an integer"]),
    (["-hkl", "{hklF}"], ["badF.hkl:2", "'abc'", "not a number"]),
    (["-hkl", "{hklcols}"], ["cols.hkl:1", "4 fields"]),
    (["-hkl", "{missing}"], ["-hkl", "missing.mat"]),
    (["-hkl", "{hklnan}"], ["nan.hkl:2", "'nan'", "not a number"]),
    (["-hkl", "{hklsep}"], ["sep.hkl:1", "'1_0'", "not a number"]),
    (["-hkl", "{hklhuge}"], ["-hkl", "huge.hkl", "too large"]),
]


@pytest.fixture
def bad_files(tmp_path):
    return {
        "missing": str(tmp_path / "missing.mat"),
        "mat8": write_file(tmp_path, "eight.mat", "1 0 0\n0 1 0\n0 0\n"),
        "matbad": write_file(tmp_path, "bad.mat", "1 0 0\n0 x 0\n0 0 1\n"),
        "hklindex": write_file(tmp_path, "index.hkl", "# header\n1 2 3 4.0\n1.5 2 3 4.0\n"),
        "hklF": write_file(tmp_path, "badF.hkl", "1 2 3 4.0\n1 2 4 abc\n"),
        "hklcols": write_file(tmp_path, "cols.hkl", "1 2 3\n"),
        "hklnan": write_file(tmp_path, "nan.hkl", "1 2 3 4\n1 2 4 nan\n"),
        "hklsep": write_file(tmp_path, "sep.hkl", "1 2 3 1_0\n"),
        "hklhuge": write_file(tmp_path, "huge.hkl", "-1000 0 0 1\n1000 0 0 1\n0 -1000 0 1\n"
                              "0 1000 0 1\n0 0 -1000 1\n0 0 1000 1\n"),
    }


@pytest.mark.parametrize("extra, words", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_no_image(tmp_path, bad_files, extra, words):
    out = tmp_path / "img.bin"
    args = [*CUBIC, "-floatfile", str(out), *[a.format(**bad_files) for a in extra]]  # extra last:
    # a flag missing its values must be the last word
    rc, stdout, stderr = run_main(args)
    assert rc == 2
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("minibragg: error: "), stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert stdout == ""
    assert not out.exists() and not list(tmp_path.glob("img.bin*"))


def test_no_crystal_is_refused():
    rc, _, stderr = run_main(["-distance", "100"])
    assert rc == 2 and "no crystal" in stderr and "-mat" in stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_refused_without_a_device():
    rc, _, stderr = run_main([*CUBIC, "-device", "cuda"])
    assert rc == 2 and stderr.startswith("minibragg: error: -device cuda")


def test_real_process_exit_status_and_no_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    hkl = write_file(tmp_path, "bad.hkl", "0 0 0 1\n\n0 0 x 1\n")
    proc = subprocess.run([sys.executable, "-m", "minibragg", *CUBIC, "-hkl", hkl, "-floatfile",
                           str(tmp_path / "img.bin")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == f"minibragg: error: {hkl}:3: index l 'x' is not an integer\n"
    assert "Traceback" not in proc.stderr and not (tmp_path / "img.bin").exists()


# ------------------------------------------------------------------------------- CUDA


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    args = [*CUBIC, "-N", "5", "-oversample", "2", "-polar", "1", "-phisteps", "3", "-osc", "2",
            "-trace_pixel", "6", "13"]
    cpu_trace, cpu_image = trace_for(args, "float64")
    gpu_trace, gpu_image = trace_for(args, "float64", device="cuda")
    assert gpu_image.device.type == "cuda"
    for key in TRACE_KEYS:
        for a, b in zip(cpu_trace[key], gpu_trace[key]):
            assert rel(a, b) < 1e-11, key
    a, b = cpu_image.double().flatten(), gpu_image.cpu().double().flatten()
    assert float(torch.corrcoef(torch.stack([a, b]))[0, 1]) > 0.9999999
    assert abs(float(b.sum() / a.sum()) - 1) < 1e-9


# ------------------------------------------------------------------------------- inputs


def test_inputs_are_deterministic_and_cover_the_detector(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    inputs.main(["--out", str(first)])
    inputs.main(["--out", str(second)])
    for name in ("A.mat", "scaled.hkl"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert (first / "A.mat").read_text() == A_MATRIX_TEXT
    size = (first / "scaled.hkl").stat().st_size
    assert 100_000 < size < 5_000_000
    listed = read_hkl(str(first / "scaled.hkl"))
    assert listed.F.min() >= 1.0 and listed.F.max() < 1000.0
    assert len(np.unique(listed.F)) > len(listed.F) // 10  # not a constant
    # A finer sampling of the detector than the generator's stays inside the listed box.
    reach = inputs.reach(supervisor_args(mat=str(first / "A.mat")), str(first / "A.mat"), stride=3)
    for hi, got in zip(reach, (listed.h.max(), listed.k.max(), listed.l.max())):
        assert got >= hi + 1
    assert (listed.h.min(), listed.k.min(), listed.l.min()) == (-listed.h.max(), -listed.k.max(), -listed.l.max())
