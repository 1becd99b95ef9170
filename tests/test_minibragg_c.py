"""The C engine of minibragg (minibragg/minibragg.c) against its contract, docs/minibragg.md.

Every test runs the real compiled binary in a scratch directory. The physics checks are either
computed by hand here (small cubic cells where the numbers come out round) or compared with a
small NumPy model of the contract written in this file; none leans on the PyTorch engine.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

R_E_SQR = 7.94079248018965e-30
DEFAULT_FLUENCE = 1.25932015286227e29

TRACE_KEYS = [
    "pix0_vector_meters", "fdet_vec", "sdet_vec", "pixel_pos_meters", "R_distance_meters",
    "omega_pixel_sr", "close_distance_meters", "obliquity_factor", "diffracted_vec",
    "incident_vec", "lambda_meters", "lambda_angstroms", "scattering_vec_A_inv",
    "rot_a_angstroms", "rot_b_angstroms", "rot_c_angstroms", "rot_a_star_A_inv",
    "rot_b_star_A_inv", "rot_c_star_A_inv", "hkl_frac", "hkl_rounded", "F_latt_a", "F_latt_b",
    "F_latt_c", "F_latt", "F_cell", "I_before_scaling", "r_e_meters", "r_e_sqr",
    "fluence_photons_per_m2", "steps", "oversample_thick", "oversample_polar",
    "oversample_omega", "capture_fraction", "polar", "omega_pixel", "cos_2theta",
    "I_pixel_final", "floatimage_accumulated",
]
VECTOR_KEYS = {
    "pix0_vector_meters", "fdet_vec", "sdet_vec", "pixel_pos_meters", "diffracted_vec",
    "incident_vec", "scattering_vec_A_inv", "rot_a_angstroms", "rot_b_angstroms",
    "rot_c_angstroms", "rot_a_star_A_inv", "rot_b_star_A_inv", "rot_c_star_A_inv", "hkl_frac",
    "hkl_rounded",
}
INT_KEYS = {"hkl_rounded", "steps", "oversample_thick", "oversample_polar", "oversample_omega"}

SUPERVISOR_MATRIX = """-0.02837711 -0.00305386 0.02535816
-0.02871390 0.01019549 -0.01400049
0.01050048 -0.03209440 -0.01036054
"""

# A cubic 100 A crystal, 5 cells a side, 101 x 101 detector of 0.1 mm pixels at 100 mm: the beam
# hits the centre of pixel (50, 50).
CUBIC = ["-cell", "100", "100", "100", "90", "90", "90", "-N", "5", "-lambda", "1",
         "-distance", "100", "-pixel", "0.1", "-detpixels", "101"]


# ------------------------------------------------------------------------------------- helpers


def run(binary: Path, args: list[str], cwd: Path, threads: int = 2) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return subprocess.run([str(binary), *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=60)


def ok(binary: Path, args: list[str], cwd: Path, threads: int = 2) -> subprocess.CompletedProcess:
    proc = run(binary, args, cwd, threads)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    return proc


def trace_of(stdout: str) -> dict[str, list[float]]:
    """TRACE_C key lines -> {key: values}; asserts each key appears once."""
    out: dict[str, list[float]] = {}
    for line in stdout.splitlines():
        if line.startswith("TRACE_C: "):
            key, *vals = line[len("TRACE_C: "):].split()
            assert key not in out, f"{key} printed twice"
            out[key] = [float(v) for v in vals]
    return out


def one(tr: dict[str, list[float]], key: str) -> float:
    (v,) = tr[key]
    return v


def read_image(path: Path, slow: int, fast: int) -> np.ndarray:
    data = np.fromfile(path, dtype="<f4")
    assert data.size == slow * fast
    return data.reshape(slow, fast)


def write_hkl(path: Path, lo: int, hi: int, skip_mod: int | None = None) -> None:
    """Every h, k, l in lo..hi with F = hkl_F(h, k, l), except those hkl_skipped drops."""
    h, k, l = np.meshgrid(*(np.arange(lo, hi + 1),) * 3, indexing="ij")
    h, k, l = h.ravel(), k.ravel(), l.ravel()
    keep = ~hkl_skipped(h, k, l, skip_mod)
    F = hkl_F(h, k, l)
    lines = [f"{a} {b} {c} {f:g}" for a, b, c, f in zip(h[keep], k[keep], l[keep], F[keep])]
    path.write_text("# test reflections\n\n" + "\n".join(lines) + "\n")


def hkl_F(h, k, l):
    return 1.0 + np.mod(7 * h + 13 * k + 17 * l, 23) * 0.5


def hkl_skipped(h, k, l, skip_mod):
    if skip_mod is None:
        return np.zeros(np.shape(h), dtype=bool)
    return np.mod(h + 2 * k + 3 * l, skip_mod) == 0


@pytest.fixture(scope="module")
def hkl30(tmp_path_factory) -> Path:
    """All h, k, l in -30..30 except every 11th (which fall back to -default_F)."""
    path = tmp_path_factory.mktemp("hkl") / "p1.hkl"
    write_hkl(path, -30, 30, skip_mod=11)
    return path


# ------------------------------------------------------------------- a NumPy model of the contract


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.sqrt(_dot(v, v))[..., None]


def _dot(u, v):
    return u[..., 0] * v[..., 0] + u[..., 1] * v[..., 1] + u[..., 2] * v[..., 2]


def _rodrigues(v, u, phi):
    c, s = math.cos(phi), math.sin(phi)
    return v * c + np.cross(u, v) * s + u * _dot(u, v) * (1.0 - c)


def reference(p: dict) -> tuple[np.ndarray, dict]:
    """I_pixel_final of every pixel (float64) per docs/minibragg.md, and a few trace values."""
    lam_A = p.get("lambda", 1.0)
    lam_m = lam_A * 1e-10
    if "mat" in p:
        m = np.array(p["mat"], dtype=float).reshape(3, 3) / lam_A
        astar, bstar, cstar = m[:, 0], m[:, 1], m[:, 2]
    else:
        a, b, c, al, be, ga = p["cell"]
        al, be, ga = (x * math.pi / 180.0 for x in (al, be, ga))
        sig = (al + be + ga) / 2
        V = 2 * a * b * c * math.sqrt(abs(math.sin(sig) * math.sin(sig - al) * math.sin(sig - be)
                                          * math.sin(sig - ga)))
        la, lb, lc = b * c * math.sin(al) / V, c * a * math.sin(be) / V, a * b * math.sin(ga) / V
        ca = (math.cos(be) * math.cos(ga) - math.cos(al)) / (math.sin(be) * math.sin(ga))
        cb = (math.cos(ga) * math.cos(al) - math.cos(be)) / (math.sin(ga) * math.sin(al))
        cg = (math.cos(al) * math.cos(be) - math.cos(ga)) / (math.sin(al) * math.sin(be))
        sg = c / (V * la * lb)
        astar = np.array([la, 0.0, 0.0])
        bstar = np.array([lb * cg, lb * sg, 0.0])
        cstar = np.array([lc * cb, lc * (ca - cb * cg) / sg, lc * V / (a * b * c * sg)])
        mx, my, mz = (x * math.pi / 180.0 for x in p.get("misset", (0, 0, 0)))
        cx, sx, cy, sy, cz, sz = (f(x) for x in (mx, my, mz) for f in (math.cos, math.sin))
        rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
        rot = rz @ ry @ rx
        astar, bstar, cstar = rot @ astar, rot @ bstar, rot @ cstar
    V = 1.0 / _dot(astar, np.cross(bstar, cstar))
    a_vec, b_vec, c_vec = (V * np.cross(bstar, cstar), V * np.cross(cstar, astar),
                           V * np.cross(astar, bstar))

    fast, slow = p["fpixels"], p["spixels"]
    pixel = p["pixel"] / 1000.0
    beam = _unit(p.get("beam", (1, 0, 0)))
    f = _unit(p.get("fdet", (0, 0, 1)))
    s = _unit(p.get("sdet", (0, -1, 0)))
    odet = np.asarray(p.get("odet", (1, 0, 0)), dtype=float)
    o = _unit(np.cross(f, s)) if math.sqrt(_dot(odet, odet)) != 1.0 else _unit(odet)
    Xbeam = p.get("Xbeam", fast * p["pixel"] / 2.0) / 1000.0
    Ybeam = p.get("Ybeam", slow * p["pixel"] / 2.0) / 1000.0
    distance = p.get("distance", 100.0) / 1000.0
    ratio = _dot(beam, o)
    close = abs(ratio * distance)
    if p.get("pivot", "beam") == "beam":
        pix0 = -Xbeam * f - Ybeam * s + distance * beam
    else:
        pix0 = -Xbeam * f - Ybeam * s + close * o

    n = p.get("oversample", 1)
    phisteps = p.get("phisteps", 1)
    spindle = _unit(p.get("spindle", (0, 0, 1)))
    steps = []
    for t in range(phisteps):
        phi = (p.get("phi", 0.0) + t * (p.get("osc", 0.0) / phisteps)) * math.pi / 180.0
        steps.append([_rodrigues(v, spindle, phi) * 1e-10 for v in (a_vec, b_vec, c_vec)])
    Ns = [p.get("Na", 1), p.get("Nb", 1), p.get("Nc", 1)]
    default_F = p.get("default_F", 0.0)
    flux = p.get("flux", 0.0)
    fluence = (flux * p.get("exposure", 1.0) / (p.get("beamsize", 0.1) * 1e-3) ** 2
               if flux else p.get("fluence", DEFAULT_FLUENCE))
    K = p.get("polar", 0.0)
    B_in = _unit(np.cross([0.0, 0.0, 1.0], beam))
    E_in = _unit(np.cross(beam, B_in))

    j, i = np.meshgrid(np.arange(slow), np.arange(fast), indexing="ij")
    I = np.zeros((slow, fast))
    sub = pixel / n
    for v in range(n):
        for u in range(n):
            Fdet = sub * (i * n + u + 0.5)
            Sdet = sub * (j * n + v + 0.5)
            P = pix0 + Fdet[..., None] * f + Sdet[..., None] * s
            R = np.sqrt(_dot(P, P))
            d = P / R[..., None]
            omega = pixel * pixel / (R * R) * close / R
            q = (d - beam) / lam_m
            cos2t = _dot(beam, d)
            if p.get("nopolar"):
                polar = np.ones_like(R)
            else:
                psi = -np.arctan2(_dot(d, B_in), _dot(d, E_in))
                polar = 0.5 * (1.0 + cos2t**2 - K * np.cos(2 * psi) * (1.0 - cos2t**2))
            for av, bv, cv in steps:
                hkl = [_dot(q, av), _dot(q, bv), _dot(q, cv)]
                F_latt = np.ones_like(R)
                for x, N in zip(hkl, Ns):
                    if N > 1:
                        xx = np.pi * x
                        with np.errstate(invalid="ignore", divide="ignore"):
                            F_latt = F_latt * np.where(xx == 0, N, np.sin(N * xx) / np.sin(xx))
                h0, k0, l0 = (np.ceil(x - 0.5) for x in hkl)
                F_cell = np.full_like(R, default_F)
                if "hkl_range" in p:
                    lo, hi, skip = p["hkl_range"]
                    inside = ((h0 >= lo) & (h0 <= hi) & (k0 >= lo) & (k0 <= hi)
                              & (l0 >= lo) & (l0 <= hi))
                    listed = inside & ~hkl_skipped(h0, k0, l0, skip)
                    F_cell = np.where(listed, hkl_F(h0, k0, l0), F_cell)
                I = I + F_cell**2 * F_latt**2
    total_steps = phisteps * n * n
    final = I / total_steps * R_E_SQR * fluence * polar * omega
    if "roi" in p:
        x0, x1, y0, y1 = p["roi"]
        mask = (i >= x0) & (i <= x1) & (j >= y0) & (j <= y1)
        final = np.where(mask, final, 0.0)
    keys = {"pix0_vector_meters": pix0, "close_distance_meters": close, "fluence": fluence,
            "rot_a_angstroms": steps[0][0] * 1e10, "steps": total_steps}
    return final, keys


# --------------------------------------------------------------------------- trace and output form


def test_trace_lists_the_40_keys_in_order_once(minibragg_c, tmp_path):
    proc = ok(minibragg_c, [*CUBIC, "-default_F", "10", "-trace_pixel", "50", "50"], tmp_path)
    lines = proc.stdout.splitlines()
    key_lines = [ln for ln in lines if ln.startswith("TRACE_C: ")]
    assert [ln.split()[1] for ln in key_lines] == TRACE_KEYS
    assert len(TRACE_KEYS) == 40
    config = lines.index("TRACE_CONFIG: tracing pixel (spixel=50, fpixel=50)")
    assert config == lines.index(key_lines[0]) - 1
    for ln in key_lines:
        key, *vals = ln.split()[1:]
        assert len(vals) == (3 if key in VECTOR_KEYS else 1), ln
        if key in INT_KEYS:
            assert all(re.fullmatch(r"-?\d+", v) for v in vals), ln
    tr = trace_of(proc.stdout)
    for key in ("oversample_thick", "oversample_polar", "oversample_omega"):
        assert one(tr, key) == 0
    assert one(tr, "r_e_meters") == 2.8179403262e-15
    assert one(tr, "r_e_sqr") == R_E_SQR
    assert one(tr, "capture_fraction") == 1.0


def test_banner_progress_and_statistics(minibragg_c, tmp_path):
    args = [*CUBIC, "-default_F", "10", "-floatfile", "img.bin"]
    proc = ok(minibragg_c, args, tmp_path)
    lines = proc.stdout.splitlines()
    assert lines[0] == "minibragg C engine"
    progress = [ln for ln in lines if ln.endswith("% done")]
    assert progress == [f"  {n}% done" for n in range(10, 101, 10)]
    img = read_image(tmp_path / "img.bin", 101, 101).astype(np.float64)
    m = re.fullmatch(r"max_I = (\S+) at slow (\d+) fast (\d+)", lines[-2])
    assert m, lines[-2]
    flat = int(np.argmax(img))
    assert (int(m[2]), int(m[3])) == divmod(flat, 101)
    assert float(m[1]) == pytest.approx(img.max(), rel=1e-8)
    m = re.fullmatch(r"mean= (\S+) rms= (\S+) rmsd= (\S+)", lines[-1])
    assert m, lines[-1]
    assert float(m[1]) == pytest.approx(img.mean(), rel=1e-8)
    assert float(m[2]) == pytest.approx(np.sqrt((img**2).mean()), rel=1e-8)
    assert float(m[3]) == pytest.approx(img.std(), rel=1e-8)
    assert not (tmp_path / "Fdump.bin").exists()  # no -hkl, no cache


# --------------------------------------------------------------------------------- hand physics


def test_direct_beam_pixel_of_a_cubic_crystal(minibragg_c, tmp_path):
    """q = 0 at the pixel the beam hits: hkl 0 0 0, F_latt = N^3, every geometric factor 1."""
    proc = ok(minibragg_c, [*CUBIC, "-default_F", "10", "-trace_pixel", "50", "50",
                            "-floatfile", "img.bin"], tmp_path)
    tr = trace_of(proc.stdout)
    assert tr["pix0_vector_meters"] == pytest.approx([0.1, 0.00505, -0.00505], rel=1e-12)
    assert tr["fdet_vec"] == [0, 0, 1] and tr["sdet_vec"] == [0, -1, 0]
    assert tr["pixel_pos_meters"] == pytest.approx([0.1, 0, 0], abs=1e-15)
    assert one(tr, "R_distance_meters") == pytest.approx(0.1, rel=1e-12)
    assert one(tr, "close_distance_meters") == pytest.approx(0.1, rel=1e-15)
    # omega = pixel^2 / R^2 * close / R = (1e-4)^2 / 0.1^2 * 1
    assert one(tr, "omega_pixel_sr") == pytest.approx(1e-6, rel=1e-12)
    assert one(tr, "omega_pixel") == one(tr, "omega_pixel_sr")
    assert one(tr, "obliquity_factor") == pytest.approx(1.0, rel=1e-12)
    assert tr["diffracted_vec"] == pytest.approx([1, 0, 0], abs=1e-12)
    assert tr["incident_vec"] == [1, 0, 0]
    assert one(tr, "lambda_meters") == pytest.approx(1e-10, rel=1e-15)
    assert one(tr, "lambda_angstroms") == 1.0
    assert tr["scattering_vec_A_inv"] == pytest.approx([0, 0, 0], abs=1e-2)  # m^-1
    assert tr["rot_a_angstroms"] == pytest.approx([100, 0, 0], abs=1e-10)
    assert tr["rot_b_angstroms"] == pytest.approx([0, 100, 0], abs=1e-10)
    assert tr["rot_c_angstroms"] == pytest.approx([0, 0, 100], abs=1e-10)
    assert tr["rot_a_star_A_inv"] == pytest.approx([0.01, 0, 0], abs=1e-15)
    assert tr["hkl_rounded"] == [0, 0, 0]
    assert tr["hkl_frac"] == pytest.approx([0, 0, 0], abs=1e-9)
    for key in ("F_latt_a", "F_latt_b", "F_latt_c"):
        assert one(tr, key) == pytest.approx(5.0, rel=1e-12)
    assert one(tr, "F_latt") == pytest.approx(125.0, rel=1e-12)
    assert one(tr, "F_cell") == 10.0
    assert one(tr, "I_before_scaling") == pytest.approx(100 * 125.0**2, rel=1e-12)
    assert one(tr, "fluence_photons_per_m2") == DEFAULT_FLUENCE
    assert one(tr, "steps") == 1
    assert one(tr, "cos_2theta") == pytest.approx(1.0, rel=1e-15)
    assert one(tr, "polar") == pytest.approx(1.0, rel=1e-15)  # 0.5 (1 + cos^2 0)
    expected = 100 * 125.0**2 * R_E_SQR * DEFAULT_FLUENCE * 1e-6
    assert one(tr, "I_pixel_final") == pytest.approx(expected, rel=1e-11)
    img = read_image(tmp_path / "img.bin", 101, 101)
    assert img[50, 50] == np.float32(one(tr, "I_pixel_final"))
    assert np.float32(one(tr, "floatimage_accumulated")) == img[50, 50]


# lambda = 200/101 A puts reflection (-1, 0, 10) of the 100 A cubic cell on the Ewald sphere:
# d = i + lambda G = (99, 0, 20)/101, which meets the detector 100 * 20/99 mm along +fast.
# Pixel (100, 100) has its centre 10.05 mm along each axis. The beam centre is moved 1 nm off the
# exact spot: at an exactly integer l, sin(N*pi*l)/sin(pi*l) is a ratio of two rounding errors
# (the contract's formula, as in nanoBragg), while 5e-7 away from it the ratio is N to ~1e-11.
BRAGG_LAMBDA = repr(200 / 101)
BRAGG_XBEAM = repr(10.05 - 2000 / 99 + 1e-6)
BRAGG_Z = (10.05 - float(BRAGG_XBEAM)) / 1000  # metres along +fast from the direct beam
BRAGG_COS2T = 0.1 / math.hypot(0.1, BRAGG_Z)


def bragg_args(hkl: Path, *extra: str) -> list[str]:
    return ["-cell", "100", "100", "100", "90", "90", "90", "-N", "5", "-lambda", BRAGG_LAMBDA,
            "-distance", "100", "-pixel", "0.1", "-detpixels", "201", "-Xbeam", BRAGG_XBEAM,
            "-hkl", str(hkl), "-default_F", "3.5", "-trace_pixel", "100", "100", *extra]


def test_pixel_on_a_bragg_reflection(minibragg_c, tmp_path, hkl30):
    proc = ok(minibragg_c, bragg_args(hkl30), tmp_path)
    tr = trace_of(proc.stdout)
    assert tr["diffracted_vec"] == pytest.approx([99 / 101, 0, 20 / 101], abs=1e-7)
    assert tr["hkl_frac"] == pytest.approx([-1, 0, 10], abs=1e-5)
    assert tr["hkl_rounded"] == [-1, 0, 10]
    assert one(tr, "F_latt") == pytest.approx(125.0, rel=1e-6)
    assert one(tr, "F_cell") == hkl_F(-1, 0, 10)
    R = math.hypot(0.1, BRAGG_Z)
    assert one(tr, "R_distance_meters") == pytest.approx(R, rel=1e-12)
    assert one(tr, "omega_pixel") == pytest.approx(1e-8 / R**2 * 0.1 / R, rel=1e-12)
    assert one(tr, "obliquity_factor") == pytest.approx(0.1 / R, rel=1e-12)
    cos2t = BRAGG_COS2T
    assert one(tr, "cos_2theta") == pytest.approx(cos2t, rel=1e-12)
    assert one(tr, "polar") == pytest.approx(0.5 * (1 + cos2t**2), rel=1e-12)  # K = 0
    assert (tmp_path / "Fdump.bin").stat().st_size > 24  # -hkl read: cache written in cwd


def test_unlisted_reflection_inside_the_box_gets_default_F(minibragg_c, tmp_path):
    hkl = tmp_path / "sparse.hkl"
    hkl.write_text("-2 0 0 4\n2 0 12 6\n")  # box holds (-1, 0, 10) but does not list it
    tr = trace_of(ok(minibragg_c, bragg_args(hkl), tmp_path).stdout)
    assert one(tr, "F_cell") == 3.5
    hkl.write_text("-1 0 10 4\n-1 0 10 9\n")  # listed twice: the later line wins
    tr = trace_of(ok(minibragg_c, bragg_args(hkl), tmp_path).stdout)
    assert one(tr, "F_cell") == 9.0


@pytest.mark.parametrize(
    "K, expected",
    [
        # on the Bragg pixel d lies in the x-z plane, the plane of E_in = p: psi = 0, cos 2psi = 1
        (1.0, BRAGG_COS2T**2),
        (0.5, 0.5 * (1 + BRAGG_COS2T**2 - 0.5 * (1 - BRAGG_COS2T**2))),
    ],
)
def test_kahn_polarization_in_the_polarization_plane(minibragg_c, tmp_path, hkl30, K, expected):
    tr = trace_of(ok(minibragg_c, bragg_args(hkl30, "-polar", str(K)), tmp_path).stdout)
    assert one(tr, "polar") == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "pixel, polar_of",
    [
        # d along +y only (1 mm up the slow axis): psi = -pi/2, cos 2psi = -1 -> polar = 1
        ((40, 50), lambda c2: 1.0),
        # d along y and z equally: psi = -pi/4, cos 2psi = 0 -> polar = (1 + cos^2)/2
        ((40, 60), lambda c2: 0.5 * (1 + c2)),
        # d along +z only: psi = 0 -> polar = cos^2 2theta
        ((50, 60), lambda c2: c2),
    ],
)
def test_kahn_polarization_K1_off_plane(minibragg_c, tmp_path, pixel, polar_of):
    slow, fast = pixel
    tr = trace_of(ok(minibragg_c, [*CUBIC, "-default_F", "1", "-polar", "1", "-trace_pixel",
                                   str(slow), str(fast)], tmp_path).stdout)
    P = np.array([0.1, (50 - slow) * 1e-4, (fast - 50) * 1e-4])
    assert tr["pixel_pos_meters"] == pytest.approx(list(P), abs=1e-15)
    cos2t = P[0] / np.linalg.norm(P)
    assert one(tr, "cos_2theta") == pytest.approx(cos2t, rel=1e-12)
    assert one(tr, "polar") == pytest.approx(polar_of(cos2t**2), rel=1e-12, abs=1e-15)


def test_nopolar_fixes_the_factor_at_one(minibragg_c, tmp_path):
    tr = trace_of(ok(minibragg_c, [*CUBIC, "-default_F", "1", "-polar", "1", "-nopolar",
                                   "-trace_pixel", "10", "90"], tmp_path).stdout)
    assert one(tr, "polar") == 1.0
    assert one(tr, "cos_2theta") < 0.9999


def test_fluence_from_flux_exposure_beamsize_wins_over_fluence(minibragg_c, tmp_path):
    args = [*CUBIC, "-default_F", "1", "-trace_pixel", "50", "50"]
    tr = trace_of(ok(minibragg_c, [*args, "-fluence", "5e20", "-flux", "1e12", "-exposure", "2",
                                   "-beamsize", "0.5"], tmp_path).stdout)
    assert one(tr, "fluence_photons_per_m2") == pytest.approx(1e12 * 2 / (0.5e-3) ** 2, rel=1e-14)
    tr = trace_of(ok(minibragg_c, [*args, "-fluence", "5e20"], tmp_path).stdout)
    assert one(tr, "fluence_photons_per_m2") == 5e20


def test_steps_subpixels_and_the_normalization_chain(minibragg_c, tmp_path):
    """steps = phisteps * n^2; geometry keys from the first sub-pixel, polar/omega from the last."""
    args = [*CUBIC, "-default_F", "2", "-phisteps", "3", "-osc", "0.3", "-oversample", "2",
            "-trace_pixel", "50", "50"]
    tr = trace_of(ok(minibragg_c, args, tmp_path).stdout)
    assert one(tr, "steps") == 12
    # first sub-pixel of pixel (50, 50): 0.05 mm * 100.5 = 5.025 mm along each axis
    assert tr["pixel_pos_meters"] == pytest.approx([0.1, 2.5e-5, -2.5e-5], abs=1e-15)
    R_first = math.sqrt(0.1**2 + 2 * 2.5e-5**2)
    assert one(tr, "R_distance_meters") == pytest.approx(R_first, rel=1e-12)
    assert one(tr, "omega_pixel_sr") == pytest.approx(1e-8 / R_first**3 * 0.1, rel=1e-12)
    # last sub-pixel (u = v = 1) sits symmetrically: same R, so same omega; its cos 2theta too
    assert one(tr, "omega_pixel") == pytest.approx(1e-8 / R_first**3 * 0.1, rel=1e-12)
    assert one(tr, "cos_2theta") == pytest.approx(0.1 / R_first, rel=1e-12)
    chain = (one(tr, "I_before_scaling") / one(tr, "steps") * one(tr, "r_e_sqr")
             * one(tr, "fluence_photons_per_m2") * one(tr, "capture_fraction") * one(tr, "polar")
             * one(tr, "omega_pixel"))
    assert one(tr, "I_pixel_final") == pytest.approx(chain, rel=1e-13)


def test_phi_rotation_of_the_cell(minibragg_c, tmp_path):
    """-phi 30 about the default spindle (0, 0, 1): a = 100 (cos 30, sin 30, 0)."""
    args = [*CUBIC, "-default_F", "1", "-phi", "30", "-osc", "10", "-phisteps", "2",
            "-trace_pixel", "50", "50"]
    tr = trace_of(ok(minibragg_c, args, tmp_path).stdout)
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    assert tr["rot_a_angstroms"] == pytest.approx([100 * c, 100 * s, 0], abs=1e-10)
    assert tr["rot_b_angstroms"] == pytest.approx([-100 * s, 100 * c, 0], abs=1e-10)
    assert tr["rot_a_star_A_inv"] == pytest.approx([0.01 * c, 0.01 * s, 0], abs=1e-15)


def test_mat_file_is_divided_by_lambda(minibragg_c, tmp_path):
    (tmp_path / "A.mat").write_text("0.02 0 0\n0 0.02 0\n0 0 0.02\n")  # 100 A cubic at 2 A
    tr = trace_of(ok(minibragg_c, ["-mat", "A.mat", "-lambda", "2", "-detpixels", "11",
                                   "-trace_pixel", "5", "5"], tmp_path).stdout)
    assert tr["rot_a_star_A_inv"] == pytest.approx([0.01, 0, 0], rel=1e-14, abs=1e-18)
    assert tr["rot_c_angstroms"] == pytest.approx([0, 0, 100], rel=1e-14, abs=1e-12)


def test_last_flag_wins(minibragg_c, tmp_path):
    args = [*CUBIC, "-default_F", "1", "-N", "3", "-Na", "4", "-lambda", "2", "-lambda", "1",
            "-trace_pixel", "50", "50"]
    tr = trace_of(ok(minibragg_c, args, tmp_path).stdout)
    assert one(tr, "F_latt_a") == pytest.approx(4.0, rel=1e-12)
    assert one(tr, "F_latt_b") == pytest.approx(3.0, rel=1e-12)
    assert one(tr, "lambda_angstroms") == 1.0


# ------------------------------------------------------------------------------ detector geometry

TILTED_BEAM = ["-beam_vector", "1", "0", "0.1"]


@pytest.mark.parametrize(
    "order, pivot",
    [
        (["-distance", "100", "-twotheta", "0"], "sample"),
        (["-twotheta", "0", "-distance", "100"], "beam"),
        (["-distance", "100"], "beam"),
        ([], "beam"),
        (["-close_distance", "50", "-distance", "100"], "beam"),
        (["-distance", "100", "-close_distance", "50"], "sample_close"),
    ],
)
def test_pivot_is_decided_by_the_last_flag(minibragg_c, tmp_path, order, pivot):
    args = ["-cell", "100", "100", "100", "90", "90", "90", "-pixel", "0.1", "-detpixels", "101",
            *TILTED_BEAM, *order, "-trace_pixel", "0", "0"]
    tr = trace_of(ok(minibragg_c, args, tmp_path).stdout)
    b = np.array([1, 0, 0.1]) / math.sqrt(1.01)
    f, s, o = np.array([0, 0, 1.0]), np.array([0, -1.0, 0]), np.array([1.0, 0, 0])
    beam_centre = -0.00505 * f - 0.00505 * s
    if pivot == "beam":
        close = 0.1 * b[0]
        pix0 = beam_centre + 0.1 * b
    elif pivot == "sample":
        close = 0.1 * b[0]
        pix0 = beam_centre + close * o
    else:
        close = 0.05
        pix0 = beam_centre + close * o
    assert one(tr, "close_distance_meters") == pytest.approx(close, rel=1e-14)
    assert tr["pix0_vector_meters"] == pytest.approx(list(pix0), rel=1e-14, abs=1e-18)


def test_odet_of_length_other_than_one_is_regenerated(minibragg_c, tmp_path):
    base = ["-cell", "100", "100", "100", "90", "90", "90", "-detpixels", "21", "-twotheta", "0",
            *TILTED_BEAM, "-trace_pixel", "3", "4"]
    plain = ok(minibragg_c, base, tmp_path).stdout
    assert "WARNING" not in plain
    unit = ok(minibragg_c, [*base, "-odet_vector", "1", "0", "0"], tmp_path).stdout
    assert "WARNING" not in unit
    long = ok(minibragg_c, [*base, "-odet_vector", "0", "0", "2"], tmp_path).stdout
    assert "WARNING: auto-generating odet_vector" in long.splitlines()
    # regenerated o = unit(f x s) = (1, 0, 0): the same geometry as the default
    assert trace_of(long) == trace_of(plain)


def test_custom_detector_vectors_are_normalized(minibragg_c, tmp_path):
    args = ["-cell", "100", "100", "100", "90", "90", "90", "-detpixels", "21",
            "-fdet_vector", "0", "0", "3", "-sdet_vector", "0", "-2", "0",
            "-beam_vector", "5", "0", "0",
            "-pix0_vector_mm", "1", "2", "3", "-trace_pixel", "3", "4"]
    tr = trace_of(ok(minibragg_c, args, tmp_path).stdout)
    assert tr["fdet_vec"] == [0, 0, 1] and tr["sdet_vec"] == [0, -1, 0]
    assert tr["incident_vec"] == [1, 0, 0]


# --------------------------------------------------------------------------- images, ROI, threads


def test_floatfile_holds_the_traced_pixel_value(minibragg_c, tmp_path, hkl30):
    args = ["-cell", "40", "50", "60", "90", "90", "90", "-N", "4", "-hkl", str(hkl30),
            "-detpixels_x", "40", "-detpixels_y", "30", "-pixel", "1", "-floatfile", "out/img.bin",
            "-trace_pixel", "7", "29"]
    (tmp_path / "out").mkdir()
    proc = ok(minibragg_c, args, tmp_path)
    assert (tmp_path / "out" / "img.bin").stat().st_size == 40 * 30 * 4
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img.bin"]  # no temp left
    img = read_image(tmp_path / "out" / "img.bin", 30, 40)
    tr = trace_of(proc.stdout)
    assert img[7, 29] == np.float32(one(tr, "floatimage_accumulated"))
    assert img[7, 29] == np.float32(one(tr, "I_pixel_final"))


def test_roi_zeroes_the_rest_and_limits_statistics(minibragg_c, tmp_path):
    args = [*CUBIC, "-default_F", "1", "-roi", "10", "20", "30", "45", "-floatfile", "img.bin"]
    proc = ok(minibragg_c, args, tmp_path)
    img = read_image(tmp_path / "img.bin", 101, 101)
    inside = np.zeros_like(img, dtype=bool)
    inside[30:46, 10:21] = True
    assert np.all(img[~inside] == 0)
    assert np.all(img[inside] > 0)
    roi = img[inside].astype(np.float64)
    mean = float(re.search(r"mean= (\S+)", proc.stdout)[1])
    assert mean == pytest.approx(roi.mean(), rel=1e-8)
    m = re.search(r"max_I = \S+ at slow (\d+) fast (\d+)", proc.stdout)
    assert 30 <= int(m[1]) <= 45 and 10 <= int(m[2]) <= 20


def test_trace_pixel_outside_the_roi_is_traced_but_stays_zero_in_the_image(minibragg_c, tmp_path):
    """Our choice (the contract is silent): the trace is still computed; the image keeps 0."""
    args = [*CUBIC, "-default_F", "1", "-roi", "10", "20", "30", "45", "-floatfile", "img.bin",
            "-trace_pixel", "50", "50"]
    proc = ok(minibragg_c, args, tmp_path)
    assert ("WARNING: trace pixel (slow 50, fast 50) is outside the ROI; its image value is 0"
            in proc.stdout.splitlines())
    tr = trace_of(proc.stdout)
    assert one(tr, "I_pixel_final") > 0
    assert one(tr, "floatimage_accumulated") == 0
    assert read_image(tmp_path / "img.bin", 101, 101)[50, 50] == 0


def test_image_does_not_depend_on_thread_count(minibragg_c, tmp_path, hkl30):
    args = ["-cell", "40", "50", "60", "80", "95", "100", "-misset", "5", "10", "15", "-N", "4",
            "-hkl", str(hkl30), "-detpixels", "64", "-pixel", "0.5", "-oversample", "2",
            "-phisteps", "2", "-osc", "1"]
    one_thread = ok(minibragg_c, [*args, "-floatfile", "a.bin"], tmp_path, threads=1)
    three = ok(minibragg_c, [*args, "-floatfile", "b.bin"], tmp_path, threads=3)
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()
    assert one_thread.stdout.splitlines()[-2:] == three.stdout.splitlines()[-2:]


# ------------------------------------------------------------------ the whole image against NumPy


def _compare(minibragg_c, tmp_path, args, params, trace_pixel):
    proc = ok(minibragg_c, [*args, "-floatfile", "img.bin", "-trace_pixel", *map(str, trace_pixel)],
              tmp_path)
    img = read_image(tmp_path / "img.bin", params["spixels"], params["fpixels"])
    ref, keys = reference(params)
    assert np.count_nonzero(ref) > 0.5 * ref.size
    np.testing.assert_allclose(img, ref.astype(np.float32), rtol=3e-7, atol=0)
    tr = trace_of(proc.stdout)
    s, f = trace_pixel
    assert one(tr, "I_pixel_final") == pytest.approx(ref[s, f], rel=1e-10)
    assert tr["pix0_vector_meters"] == pytest.approx(list(keys["pix0_vector_meters"]), rel=1e-13)
    close = keys["close_distance_meters"]
    assert one(tr, "close_distance_meters") == pytest.approx(close, rel=1e-14)
    assert one(tr, "fluence_photons_per_m2") == pytest.approx(keys["fluence"], rel=1e-14)
    rot_a = list(keys["rot_a_angstroms"])
    assert tr["rot_a_angstroms"] == pytest.approx(rot_a, rel=1e-12, abs=1e-12)
    assert one(tr, "steps") == keys["steps"]
    return proc


def test_triclinic_cell_with_misset_matches_the_numpy_model(minibragg_c, tmp_path, hkl30):
    args = ["-cell", "40", "50", "60", "80", "95", "100", "-misset", "5", "10", "15",
            "-Na", "4", "-Nb", "5", "-Nc", "6", "-hkl", str(hkl30), "-default_F", "2.5",
            "-lambda", "1.1", "-distance", "90", "-pixel", "1", "-detpixels_x", "48",
            "-detpixels_y", "40", "-Xbeam", "20", "-Ybeam", "22", "-phi", "3", "-osc", "2",
            "-phisteps", "3", "-oversample", "2", "-polar", "0.4",
            "-spindle_axis", "0.3", "0.2", "1"]
    params = dict(cell=(40, 50, 60, 80, 95, 100), misset=(5, 10, 15), Na=4, Nb=5, Nc=6,
                  hkl_range=(-30, 30, 11), default_F=2.5, **{"lambda": 1.1}, distance=90.0,
                  pixel=1.0, fpixels=48, spixels=40, Xbeam=20.0, Ybeam=22.0, phi=3.0, osc=2.0,
                  phisteps=3, oversample=2, polar=0.4, spindle=(0.3, 0.2, 1))
    _compare(minibragg_c, tmp_path, args, params, (17, 31))


def test_supervisor_like_geometry_matches_the_numpy_model(minibragg_c, tmp_path, hkl30):
    """-mat, rotated detector, SAMPLE pivot, odet regenerated, flux fluence, -nopolar, ROI."""
    (tmp_path / "A.mat").write_text(SUPERVISOR_MATRIX)
    vec = dict(odet=(-0.000088, 0.004914, -0.999988), sdet=(-0.005998, -0.999970, -0.004913),
               fdet=(0.999982, -0.005998, -0.000118), beam=(0.00051387949, 0.0, -0.99999986))
    args = ["-mat", "A.mat", "-hkl", str(hkl30), "-nonoise", "-nointerpolate", "-exposure", "1",
            "-flux", "1e18", "-beamsize", "1.0", "-spindle_axis", "-1", "0", "0",
            "-Xbeam", "61", "-Ybeam", "49", "-distance", "231.27466", "-lambda", "0.9768",
            "-pixel", "2", "-detpixels_x", "60", "-detpixels_y", "50", "-Na", "6", "-Nb", "7",
            "-Nc", "5", "-osc", "0.5", "-phi", "0", "-phisteps", "4", "-nopolar",
            "-roi", "2", "55", "0", "47", "-pix0_vector_mm", "-216.3", "215.2", "-230.2",
            "-detector_rotx", "0", "-detector_roty", "0", "-detector_rotz", "0", "-twotheta", "0"]
    for name, v in vec.items():
        args += [f"-{name}_vector", *map(str, v)]
    params = dict(mat=[float(x) for x in SUPERVISOR_MATRIX.split()], hkl_range=(-30, 30, 11),
                  flux=1e18, exposure=1.0, beamsize=1.0, spindle=(-1, 0, 0), Xbeam=61.0,
                  Ybeam=49.0, distance=231.27466, **{"lambda": 0.9768}, pixel=2.0, fpixels=60,
                  spixels=50, Na=6, Nb=7, Nc=5, osc=0.5, phisteps=4, nopolar=True,
                  roi=(2, 55, 0, 47), pivot="sample", **vec)
    proc = _compare(minibragg_c, tmp_path, args, params, (20, 33))
    assert "WARNING: auto-generating odet_vector" in proc.stdout.splitlines()
    assert (tmp_path / "Fdump.bin").exists()


# ---------------------------------------------------------------------------------- bad input

CELL = ["-cell", "100", "100", "100", "90", "90", "90", "-detpixels", "16"]


@pytest.mark.parametrize(
    "args, named",
    [
        ([*CELL, "-bogus"], ["-bogus"]),
        ([*CELL, "-dtype", "float64"], ["-dtype"]),
        ([*CELL, "-device", "cpu"], ["-device"]),
        ([*CELL, "-lambda"], ["-lambda"]),
        ([*CELL, "-beam_vector", "1", "0"], ["-beam_vector"]),
        (["-cell", "100", "100"], ["-cell"]),
        ([*CELL, "-distance", "abc"], ["-distance", "abc"]),
        ([*CELL, "-fluence", "1e3x"], ["-fluence", "1e3x"]),
        ([*CELL, "-N", "many"], ["-N", "many"]),
        ([*CELL, "-pixel", "0"], ["-pixel"]),
        ([*CELL, "-pixel", "-0.1"], ["-pixel"]),
        ([*CELL, "-detpixels", "0"], ["-detpixels"]),
        ([*CELL, "-detpixels_x", "-5"], ["-detpixels_x"]),
        ([*CELL, "-detpixels_y", "0"], ["-detpixels_y"]),
        ([*CELL, "-dump_pixel", "16", "3"], ["-dump_pixel"]),
        ([*CELL, "-trace_pixel", "3", "-1"], ["-trace_pixel"]),
        ([*CELL, "-twotheta", "5"], ["-twotheta", "not supported"]),
        ([*CELL, "-detector_rotx", "1"], ["-detector_rotx", "not supported"]),
        ([*CELL, "-detector_roty", "0.5"], ["-detector_roty", "not supported"]),
        ([*CELL, "-detector_rotz", "-2"], ["-detector_rotz", "not supported"]),
        (["-detpixels", "16"], ["-mat", "-cell"]),
        ([*CELL, "-mat", "missing.mat"], ["missing.mat"]),
        ([*CELL, "-mat", "eight.mat"], ["eight.mat", "9"]),
        ([*CELL, "-mat", "ten.mat"], ["ten.mat", "9"]),
        ([*CELL, "-mat", "word.mat"], ["word.mat:2", "x1"]),
        ([*CELL, "-hkl", "missing.hkl"], ["missing.hkl"]),
        ([*CELL, "-hkl", "fracidx.hkl"], ["fracidx.hkl:3", "1.5"]),
        ([*CELL, "-hkl", "badF.hkl"], ["badF.hkl:2", "abc"]),
        ([*CELL, "-hkl", "short.hkl"], ["short.hkl:1"]),
        ([*CELL, "-floatfile", "nodir/img.bin"], ["nodir/img.bin"]),
    ],
)
def test_bad_input_is_one_error_line_exit_2_and_no_image(minibragg_c, tmp_path, args, named):
    (tmp_path / "eight.mat").write_text("1 2 3\n4 5 6\n7 8\n")
    (tmp_path / "ten.mat").write_text("1 2 3\n4 5 6\n7 8 9\n10\n")
    (tmp_path / "word.mat").write_text("1 2 3\n4 x1 6\n7 8 9\n")
    (tmp_path / "fracidx.hkl").write_text("# header\n1 0 0 10\n1.5 0 0 10\n")
    (tmp_path / "badF.hkl").write_text("1 0 0 10\n2 0 0 abc\n")
    (tmp_path / "short.hkl").write_text("1 0 10\n")
    before = set(os.listdir(tmp_path))
    full = args if "-floatfile" in args else ["-floatfile", "img.bin", *args]
    proc = run(minibragg_c, full, tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("minibragg: error: ")
    for word in named:
        assert word in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert set(os.listdir(tmp_path)) == before  # no image, no temp file, no Fdump.bin
    if "-floatfile" not in args:  # refused before any pixel is computed
        assert "% done" not in proc.stdout


def test_hkl_comments_blank_lines_and_signs_are_accepted(minibragg_c, tmp_path):
    hkl = tmp_path / "ok.hkl"
    hkl.write_text("# comment\n\n   # indented comment\n-1 +0 10 7.25\n\t2 0 0 1e1\n")
    tr = trace_of(ok(minibragg_c, bragg_args(hkl), tmp_path).stdout)
    assert one(tr, "F_cell") == 7.25
