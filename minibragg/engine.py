"""The PyTorch renderer: a Scene -> a float32 image (and, optionally, one pixel's trace).

Pixels are computed in chunks of whole rows of the ROI, vectorized over every pixel of the
chunk; Python loops run only over sub-pixels, φ steps and the three cell axes, in the C
engine's nesting, so each pixel's sum is accumulated in the C engine's order. Memory is bounded
by the chunk size, not the image size.

Order of operations follows the contract's formulas as written (docs/minibragg.md) and the C
engine's stated evaluation order, so that in float64 the two engines can differ only by the
last-bit differences of libm against torch's sin / cos / atan2 (on the supervisor command the
images come out bit-identical). Only element-wise torch ops are used: no matmul, whose BLAS
kernels would add in another order (and fuse multiply-adds).

Precision. float64 mode is float64 throughout. float32 mode is mixed, and the split is the
point of it:
  - float64 (GEOMETRY_DTYPE), by the same code as float64 mode, so bit-identical to it: pixel
    position, R, ω, obliquity, d, q, polarization, h = a·q (and k, l), h0 = ceil(h - 0.5), the
    flat F-grid index, the lattice factor's argument reduction f = h - h0 and g = N·f - round(N·f)
    (lattice_factor), and each pixel's final scaling (I / steps · r_e² · fluence · polar · ω;
    r_e² ~ 8e-30 would push a float32 sum out of float32's normal range);
  - float32: the lattice factor's two sines and quotient, F_latt, the F lookup, F²·F_latt² and
    the sum over sub-pixels and φ steps (the sines are most of the time).
Why: the lattice factor amplifies the error of h. h is ~50 and a float32 h is off by ~3e-6,
which near a Bragg peak moved F_latt by 1.3e-5 and the intensity by 1e-4 relative on the
supervisor pixel, and up to 1e-2 on pixels around it. Computed in float64 and rounded to float32
only as the small arguments f and g (|f|, |g| <= 1/2, which keep float32's relative precision),
every factor and every pixel comes out within a few 1e-7 of float64 (full supervisor image
against C: worst pixel 8.2e-7, was 1.0). Cost, full supervisor image on a 2-core CPU, same chunk
size: +8 % time for float32 mode (3.72 s against 3.45 s all-float32; float64 3.88 s).

The trace is recorded from inside the chunk that fills the image (`_Recorder`): the values
printed are the values the image was made from. Recording copies single elements on the
device; nothing syncs with the host until the image is done.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from .hklgrid import HklGrid
from .scene import CAPTURE_FRACTION, R_E_METERS, R_E_SQR, Scene
from .vectors import cross, unit
from .geometry import POLARIZATION_AXIS

# Pixels per chunk. CPU: each torch op costs a few µs of dispatch (and of the GIL, with chunk
# workers) besides its work, so a chunk must be large enough for that to vanish: on a shared
# 2-core machine the full supervisor image rendered 20-30 % faster with 1 << 17 than with
# 1 << 15 (float32 and float64 alike; 1 << 18 and 1 << 19 no faster), for ~60 MiB more peak
# RSS (~410 MiB in all). GPU: large enough to fill the device.
CPU_CHUNK_PIXELS = 1 << 17
GPU_CHUNK_PIXELS = 1 << 20
# Chunk workers beyond this add nothing: between ops each holds the GIL (a few µs per op). On a
# 16-core machine the full supervisor image took 2.5 s with 1 worker, 1.5 s with 2, 1.6 s
# with 4 and 2.9 s with 8.
MAX_CPU_WORKERS = 4

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
GEOMETRY_DTYPE = torch.float64  # pixel position ... h - h0, in either mode (module docstring)

Tensor = torch.Tensor


@dataclass(frozen=True)
class Rendering:
    image: Tensor  # (spixels, fpixels) float32 on the device; 0 outside the ROI
    trace: dict[str, tuple] | None  # the 40 trace keys -> values (Python numbers), in order


@dataclass(frozen=True)
class _Constants:
    """The Scene's numbers on the working device: geometry in `geo_dtype`, the lattice / F /
    accumulation work in `dtype` (see "Precision" in the module docstring)."""

    dtype: torch.dtype  # the working dtype: lattice factor, F, the sum over φ steps
    geo_dtype: torch.dtype  # always float64: pixel position ... h, k, l, h - h0, final scaling
    device: torch.device
    pix0: tuple[float, float, float]
    fdet: tuple[float, float, float]
    sdet: tuple[float, float, float]
    beam: tuple[float, float, float]
    sub: float  # sub-pixel size, m
    pixel_sqr: Tensor  # 0-d, m², geo_dtype: a numerator must be a tensor (see _omega)
    close_distance: Tensor  # 0-d, m, geo_dtype
    lambda_m: float
    oversample: int
    N: tuple[int, int, int]
    cells_m: tuple[tuple[tuple[float, float, float], ...], ...]  # φ step -> (a, b, c) in m
    grid: Tensor | None  # flat F grid
    grid_lo: tuple[int, int, int]
    grid_hi: tuple[int, int, int]
    grid_strides: tuple[int, int]  # (nk*nl, nl)
    grid_offset: int  # flat index of (0, 0, 0)
    grid_masked: bool  # the grid does not reach every index: check the box per pixel
    grid_index_in_dtype: bool  # flat indices are exact in geo_dtype, where h0 is (else int64)
    default_F: Tensor  # 0-d, working dtype
    steps: int
    fluence: float
    polar_K: float
    nopolar: bool
    b_in: tuple[float, float, float]  # polarization frame (constant: one source)
    e_in: tuple[float, float, float]


def _constants(scene: Scene, dtype: torch.dtype, device: torch.device) -> _Constants:
    det = scene.detector
    geo_dtype = GEOMETRY_DTYPE
    # Scalars stay Python floats: torch rounds them to the tensor dtype in each op.
    # Rotated direct axes in metres (Å · 1e-10 after the rotation, as the C engine does).
    cells_m = tuple(
        tuple(tuple(x * 1e-10 for x in vec) for vec in (cell.a, cell.b, cell.c))  # type: ignore[misc]
        for cell in scene.cells
    )
    grid = scene.grid
    if grid is not None:
        nh, nk, nl = grid.shape
        strides = (nk * nl, nl)
        offset = -(grid.lo[0] * strides[0] + grid.lo[1] * strides[1] + grid.lo[2])
        grid_tensor = torch.as_tensor(grid.values, dtype=dtype, device=device)
        lo, hi, masked = grid.lo, grid.hi, not grid.covers_reach
    else:
        strides, offset, grid_tensor, lo, hi, masked = (0, 0), 0, None, (0, 0, 0), (0, 0, 0), False
    b_in = unit(cross(POLARIZATION_AXIS, det.beam))
    e_in = unit(cross(det.beam, b_in))
    return _Constants(
        dtype=dtype, geo_dtype=geo_dtype, device=device, pix0=det.pix0, fdet=det.fdet,
        sdet=det.sdet, beam=det.beam, sub=det.pixel / scene.oversample,
        pixel_sqr=torch.tensor(det.pixel * det.pixel, dtype=geo_dtype, device=device),
        close_distance=torch.tensor(det.close_distance, dtype=geo_dtype, device=device),
        lambda_m=scene.lambda_m, oversample=scene.oversample, N=scene.N, cells_m=cells_m,
        grid=grid_tensor, grid_lo=lo, grid_hi=hi, grid_strides=strides, grid_offset=offset,
        grid_masked=masked, grid_index_in_dtype=_index_exact(geo_dtype, scene.grid),
        default_F=torch.tensor(scene.default_F, dtype=dtype, device=device),
        steps=scene.steps, fluence=scene.fluence, polar_K=scene.polar_K, nopolar=scene.nopolar,
        b_in=b_in, e_in=e_in,
    )


class _Recorder:
    """Collects one pixel's intermediate values (0-d tensors) while its chunk is computed."""

    def __init__(self, at: int):
        self.at = at  # flat index of the traced pixel within its chunk
        self.values: dict[str, object] = {}

    def put(self, key: str, *tensors: Tensor) -> None:
        """Copy (the engine goes on working in place) the traced pixel's value of each
        per-pixel tensor; a 0-d tensor is a constant, copied whole."""
        self.values[key] = tuple((t[self.at] if t.dim() > 0 else t).clone() for t in tensors)


# ---------------------------------------------------------------------------------------------
# Physics of a chunk. Every tensor is per pixel of the chunk, shape (npix,).


def sincg_(x: Tensor, n: int) -> Tensor:
    """sin(N·x)/sin(x), and N where x == 0 (the limit), computed in place in x.

    sin(x) is 0 only at x == 0 (no other float is a multiple of π), where the quotient is
    0/0 = NaN; so replacing NaN by N is the x == 0 branch, in one pass instead of two."""
    sin_x = torch.sin(x)
    x.mul_(n).sin_().div_(sin_x)
    return x.nan_to_num_(nan=float(n), posinf=math.inf, neginf=-math.inf)


def lattice_factor(frac: Tensor, rounded: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """F_latt factor of one axis, in `dtype`, from h = frac and h0 = rounded = ceil(h - 0.5),
    both float64 (geo_dtype). Overwrites neither.

    float64: sincg(πh, N) = sin(N·πh)/sin(πh) literally, as the C engine computes it.

    float32: sincg(πh, N) · (-1)^(m + (N-1)·h0) = sin(πg)/sin(πf), with
        f = h - h0,  t = N·f,  m = round(t),  g = t - m      (float64; |f|, |g| <= 1/2),
    since sin(Nπh) = (-1)^(N·h0 + m)·sin(πg) and sin(πh) = (-1)^h0·sin(πf). Why float64 up to
    f and g: both subtractions are exact there (Sterbenz) and t is good to 1e-16, while a float32
    h (~50) is off by ~3e-6 and a float32 N·πf (up to Nπ/2 ~ 74 rad) by ~4e-6 rad, which near a
    peak and near a zero of sin(Nπf) respectively put up to 1e-2 and 1e-4 relative error into
    the pixels of the supervisor command (measured). Rounded to float32 only as f and g, small
    numbers that keep float32's relative precision, every factor is good to a few 1e-7; the
    two sines (most of the time) and the quotient run in float32.
    The sign (-1)^(m + (N-1)·h0) is left out, saving its float64 remainder: the image needs
    only F_latt². lattice_sign gives it back for the trace."""
    if dtype == torch.float64:
        return sincg_(math.pi * frac, n)
    f = frac - rounded
    sin_f = f.to(dtype).mul_(math.pi).sin_()
    g = f.mul_(n)  # t = N·f, in place (f's float32 copy is made)
    g.sub_(torch.round(g))  # g = t - m
    factor = g.to(dtype).mul_(math.pi).sin_().div_(sin_f)
    # f == 0: 0/0, the limit N. A float64 f too small for float32 (|f| < 1e-45, never seen):
    # ±0 below, the quotient's limit is N as well (g = N·f has f's sign).
    return factor.nan_to_num_(nan=float(n), posinf=float(n), neginf=-float(n))


def lattice_sign(frac: Tensor, rounded: Tensor, n: int) -> Tensor:
    """(-1)^(m + (N-1)·h0), ±1.0 in frac's dtype: the sign the float32 lattice_factor leaves out
    (see there). Exact float64 arithmetic: the same m as lattice_factor's, on any shape."""
    t = (frac - rounded) * n
    return 1.0 - 2.0 * torch.remainder(torch.round(t) + (n - 1) * rounded, 2.0)


def _index_exact(dtype: torch.dtype, grid: HklGrid | None) -> bool:
    """Whether h0·nk·nl + k0·nl + l0 + offset, and every partial sum of it, is exact in
    `dtype` for every in-box (h0, k0, l0). Out-of-box indices (masked path) are masked and
    clamped: their value does not matter."""
    if grid is None:
        return True
    nh, nk, nl = grid.shape
    far = [max(abs(lo), abs(hi)) for lo, hi in zip(grid.lo, grid.hi)]
    offset = grid.lo[0] * nk * nl + grid.lo[1] * nl + grid.lo[2]
    bound = far[0] * nk * nl + far[1] * nl + far[2] + abs(offset)
    return bound < 2 ** (53 if dtype == torch.float64 else 24)


def _f_cell(k: _Constants, h0: Tensor, k0: Tensor, l0: Tensor) -> Tensor:
    """F of the nearest reflection: the grid value, default_F outside the grid's box.
    Overwrites h0 (the caller has recorded it)."""
    if k.grid is None:
        return k.default_F
    inside = None
    if k.grid_masked:
        inside = (h0 >= k.grid_lo[0]) & (h0 <= k.grid_hi[0])
        inside &= (k0 >= k.grid_lo[1]) & (k0 <= k.grid_hi[1])
        inside &= (l0 >= k.grid_lo[2]) & (l0 <= k.grid_hi[2])
    sh, sk = k.grid_strides
    if k.grid_index_in_dtype:  # integer-valued arithmetic, exact: one conversion, not three
        flat = h0.mul_(sh).add_(k0, alpha=sk).add_(l0).add_(k.grid_offset).long()
    else:
        flat = h0.long().mul_(sh).add_(k0.long(), alpha=sk).add_(l0.long()).add_(k.grid_offset)
    f = k.grid.take(flat.clamp_(0, k.grid.numel() - 1))  # clamp: out-of-box indices are masked
    return f if inside is None else torch.where(inside, f, k.default_F)


def _accumulate_steps(k: _Constants, q: tuple[Tensor, Tensor, Tensor], intensity: Tensor,
                      rec: _Recorder | None) -> None:
    """intensity += F_cell²·F_latt² for each φ step in turn (in place): the C engine's order.
    h, k, l and h0, k0, l0 in geo_dtype (q is); F_latt, F_cell and the sum in the working dtype."""
    tmp = torch.empty_like(q[0])
    for step, cell in enumerate(k.cells_m):
        fracs, rounded, factors = [], [], []
        for (ax, ay, az), n in zip(cell, k.N):
            frac = q[0] * ax  # h = a·q
            frac.add_(torch.mul(q[1], ay, out=tmp))
            frac.add_(torch.mul(q[2], az, out=tmp))
            fracs.append(frac)
            rounded.append((frac - 0.5).ceil_())
            # F_latt factor: exactly 1 (so left out of the product) when N <= 1.
            factors.append(lattice_factor(frac, rounded[-1], n, k.dtype) if n > 1 else None)
        record = rec if step == 0 else None  # per-step trace keys: the first φ step
        signs = []  # the traced pixel's factor signs that a float32 factor leaves out
        if record is not None:
            one = torch.ones((), dtype=k.dtype, device=k.device)
            record.put("hkl_frac", *fracs)
            record.put("hkl_rounded", *rounded)
            at = record.at
            for name, factor, frac, h0, n in zip(("F_latt_a", "F_latt_b", "F_latt_c"), factors, fracs,
                                                  rounded, k.N):
                if factor is None:
                    record.put(name, one)
                elif k.dtype == torch.float64:
                    record.put(name, factor)
                else:  # times ±1: exact, so the value the image used, with C's sign
                    signs.append(lattice_sign(frac[at], h0[at], n).to(k.dtype))
                    record.put(name, factor[at] * signs[-1])
        f_latt = None
        for factor in factors:
            if factor is not None:
                f_latt = factor if f_latt is None else f_latt.mul_(factor)
        f_cell = _f_cell(k, *rounded)
        if record is not None:
            traced_f_latt = f_latt[record.at] if f_latt is not None else one
            for sign in signs:
                traced_f_latt = traced_f_latt * sign
            record.put("F_latt", traced_f_latt)
            record.put("F_cell", f_cell)
        term = f_cell * f_cell  # F_cell·F_cell·F_latt·F_latt, left to right
        if f_latt is not None:
            term = term.mul_(f_latt).mul_(f_latt) if term.dim() else term * f_latt * f_latt
        intensity.add_(term)


def _omega(k: _Constants, r: Tensor) -> Tensor:
    """Solid angle of the whole pixel seen from the sample: pixel²/R² · close_distance/R.
    The numerators are 0-d tensors because torch evaluates `number / tensor` as
    tensor.reciprocal() * number: two roundings where C has one."""
    return k.pixel_sqr / (r * r) * k.close_distance / r


def _polarization(k: _Constants, d: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """(cos 2θ, polar) with the Kahn factor K: 0.5·(1 + cos²2θ − K·cos2ψ·sin²2θ)."""
    b = k.beam
    cos2t = b[0] * d[0] + b[1] * d[1] + b[2] * d[2]
    if k.nopolar:
        return cos2t, torch.ones_like(cos2t)
    cos2t_sqr = cos2t * cos2t
    if k.polar_K == 0.0:
        # K·cos2ψ·sin²2θ is exactly zero: skip ψ (same bits as the full formula).
        return cos2t, 0.5 * (1.0 + cos2t_sqr)
    sin2t_sqr = 1.0 - cos2t_sqr
    along_b = k.b_in[0] * d[0] + k.b_in[1] * d[1] + k.b_in[2] * d[2]
    along_e = k.e_in[0] * d[0] + k.e_in[1] * d[1] + k.e_in[2] * d[2]
    psi = -torch.atan2(along_b, along_e)
    return cos2t, 0.5 * (1.0 + cos2t_sqr - k.polar_K * torch.cos(2.0 * psi) * sin2t_sqr)


def render_chunk(k: _Constants, rows: Tensor, cols: Tensor, rec: _Recorder | None = None) -> Tensor:
    """I_pixel_final (geo_dtype) for the pixels rows x cols (slow x fast indices, given in
    geo_dtype), flattened row-major."""
    n = k.oversample
    rows, cols = rows.to(k.geo_dtype), cols.to(k.geo_dtype)
    intensity = torch.zeros(rows.numel() * cols.numel(), dtype=k.dtype, device=k.device)
    # rows, cols and so every geometric quantity below are geo_dtype.
    for v in range(n):
        s_det = k.sub * (rows * n + (v + 0.5))
        for u in range(n):
            f_det = k.sub * (cols * n + (u + 0.5))
            pos = tuple(((k.pix0[c] + f_det * k.fdet[c]).unsqueeze(0)
                         + (s_det * k.sdet[c]).unsqueeze(1)).reshape(-1) for c in range(3))
            r = torch.sqrt(pos[0] * pos[0] + pos[1] * pos[1] + pos[2] * pos[2])
            d = (pos[0] / r, pos[1] / r, pos[2] / r)
            q = tuple((d[c] - k.beam[c]) / k.lambda_m for c in range(3))
            first = rec if (u == 0 and v == 0) else None
            if first is not None:
                first.put("pixel_pos_meters", *pos)
                first.put("R_distance_meters", r)
                first.put("omega_pixel_sr", _omega(k, r))
                first.put("obliquity_factor", k.close_distance / r)
                first.put("diffracted_vec", *d)
                first.put("scattering_vec_A_inv", *q)
            _accumulate_steps(k, q, intensity, first)  # type: ignore[arg-type]
    # After the loops: the LAST sub-pixel's ω and polarization (contract).
    omega = _omega(k, r)
    cos2t, polar = _polarization(k, d)
    # In geo_dtype: the float32 sum times r_e² (~8e-30) would leave float32's normal range.
    final = intensity.to(k.geo_dtype) / k.steps * R_E_SQR * k.fluence * CAPTURE_FRACTION * polar * omega
    if rec is not None:
        rec.put("I_before_scaling", intensity)
        rec.put("polar", polar)
        rec.put("omega_pixel", omega)
        rec.put("cos_2theta", cos2t)
        rec.put("I_pixel_final", final)
    return final


# ---------------------------------------------------------------------------------------------


def _chunk_rows(device: torch.device, ncols: int, chunk_pixels: int | None) -> int:
    if chunk_pixels is None:
        chunk_pixels = CPU_CHUNK_PIXELS if device.type == "cpu" else GPU_CHUNK_PIXELS
    return max(1, chunk_pixels // ncols)


def _single_threaded_worker() -> None:
    """Pool initializer: this thread's own torch ops run on this thread only. (OpenMP's thread
    count is per calling thread; the process-wide default is put back after the pool.)"""
    torch.set_num_threads(1)


def render(scene: Scene, dtype: str = "float32", device: str = "cpu",
           chunk_pixels: int | None = None, workers: int | None = None) -> Rendering:
    """The float32 image of the Scene's ROI (zeros elsewhere) and, if asked, its traced pixel.

    On a CPU the parallelism is torch's default thread count (torch.get_num_threads(), capped
    at MAX_CPU_WORKERS), spent on chunks rather than inside each op: `workers` threads each
    take whole chunks and run their torch ops single-threaded. Split inside each op instead, torch's OpenMP team meets
    at a barrier after every op (its sin, sqrt and ceil kernels split from 2048 elements
    up), tens of thousands of times per image, and on a shared machine one descheduled member
    stalls the rest: measured here 3-10x slower under load. Independent chunks behave like the
    C engine's dynamic schedule; torch releases the GIL inside each op."""
    tdtype = TORCH_DTYPES[dtype]
    tdevice = torch.device(device)
    k = _constants(scene, tdtype, tdevice)
    det = scene.detector
    xmin, xmax, ymin, ymax = scene.roi
    ncols = xmax - xmin + 1
    rows_per_chunk = _chunk_rows(tdevice, ncols, chunk_pixels)
    if workers is None:
        workers = min(torch.get_num_threads(), MAX_CPU_WORKERS) if tdevice.type == "cpu" else 1

    image = torch.zeros((det.spixels, det.fpixels), dtype=torch.float32, device=tdevice)
    cols = torch.arange(xmin, xmax + 1, dtype=k.geo_dtype, device=tdevice)
    traced = scene.trace_pixel
    traced_in_roi = traced is not None and ymin <= traced[0] <= ymax and xmin <= traced[1] <= xmax

    def fill(row0: int) -> _Recorder | None:
        row1 = min(row0 + rows_per_chunk, ymax + 1)
        rows = torch.arange(row0, row1, dtype=k.geo_dtype, device=tdevice)
        rec = None
        if traced_in_roi and row0 <= traced[0] < row1:  # type: ignore[index]
            rec = _Recorder((traced[0] - row0) * ncols + (traced[1] - xmin))  # type: ignore[index]
        values = render_chunk(k, rows, cols, rec)
        image[row0:row1, xmin:xmax + 1] = values.view(row1 - row0, ncols)
        return rec

    starts = range(ymin, ymax + 1, rows_per_chunk)
    if workers > 1 and len(starts) > 1:
        default_threads = torch.get_num_threads()
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="minibragg",
                                    initializer=_single_threaded_worker) as pool:
                recorders = list(pool.map(fill, starts))
        finally:
            torch.set_num_threads(default_threads)  # the default that threads started later inherit
    else:
        recorders = [fill(row0) for row0 in starts]
    recorder = next((rec for rec in recorders if rec is not None), None)

    if traced is not None and not traced_in_roi:
        # Not part of the image: the same code on a one-pixel chunk; the image keeps its 0.
        recorder = _Recorder(0)
        render_chunk(k, torch.tensor([float(traced[0])], dtype=k.geo_dtype, device=tdevice),
                     torch.tensor([float(traced[1])], dtype=k.geo_dtype, device=tdevice), recorder)
    trace = None
    if recorder is not None:
        trace = _trace_values(scene, recorder, image[traced[0], traced[1]])  # type: ignore[index]
    return Rendering(image=image, trace=trace)


def _trace_values(scene: Scene, rec: _Recorder, stored: Tensor) -> dict[str, tuple]:
    """All 40 keys, in the order of facts §5, as Python numbers. The constants are doubles in
    both modes: every one of them enters the computation in geo_dtype (float64); the values
    the working dtype holds (F_latt*, F_cell, I_before_scaling) are recorded, not constants."""

    def const(*values: float) -> tuple:
        return tuple(float(v) for v in values)

    def got(key: str) -> tuple:
        return tuple(float(t) for t in rec.values[key])  # type: ignore[arg-type]

    det = scene.detector
    first = scene.cells[0]
    return {
        "pix0_vector_meters": const(*det.pix0),
        "fdet_vec": const(*det.fdet),
        "sdet_vec": const(*det.sdet),
        "pixel_pos_meters": got("pixel_pos_meters"),
        "R_distance_meters": got("R_distance_meters"),
        "omega_pixel_sr": got("omega_pixel_sr"),
        "close_distance_meters": const(det.close_distance),
        "obliquity_factor": got("obliquity_factor"),
        "diffracted_vec": got("diffracted_vec"),
        "incident_vec": const(*det.beam),
        "lambda_meters": const(scene.lambda_m),
        "lambda_angstroms": const(scene.lambda_A),
        "scattering_vec_A_inv": got("scattering_vec_A_inv"),
        "rot_a_angstroms": const(*first.a),
        "rot_b_angstroms": const(*first.b),
        "rot_c_angstroms": const(*first.c),
        "rot_a_star_A_inv": const(*first.a_star),
        "rot_b_star_A_inv": const(*first.b_star),
        "rot_c_star_A_inv": const(*first.c_star),
        "hkl_frac": got("hkl_frac"),
        "hkl_rounded": tuple(int(v) for v in got("hkl_rounded")),
        "F_latt_a": got("F_latt_a"),
        "F_latt_b": got("F_latt_b"),
        "F_latt_c": got("F_latt_c"),
        "F_latt": got("F_latt"),
        "F_cell": got("F_cell"),
        "I_before_scaling": got("I_before_scaling"),
        "r_e_meters": const(R_E_METERS),
        "r_e_sqr": const(R_E_SQR),
        "fluence_photons_per_m2": const(scene.fluence),
        "steps": (scene.steps,),
        "oversample_thick": (0,),
        "oversample_polar": (0,),
        "oversample_omega": (0,),
        "capture_fraction": const(CAPTURE_FRACTION),
        "polar": got("polar"),
        "omega_pixel": got("omega_pixel"),
        "cos_2theta": got("cos_2theta"),
        "I_pixel_final": got("I_pixel_final"),
        "floatimage_accumulated": (float(stored),),
    }
