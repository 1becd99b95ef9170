"""Hand-built CaptureResults for the renderer tests (report, plots, crate, terminal summary).

Built directly from the records, with a tiny comparison written here, so these tests depend on
nothing but bundle/records.py. Values follow the supervisor command's trace (nanobragg-facts §2,
§5), rounded.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from bundle.analysis.chain import CHAIN_KEYS
from bundle.model.records import (CaptureResult, ChainFactor, ChainReport, CommandRecord, Comparison,
                            ComparisonRow, Consistency, EngineImageStats, EngineRun, FileDigest,
                            ImageMetrics, Trace, TraceEntry)

R_E_SQR = 7.94079248018965e-30
I_BEFORE = 1234.5678901234
STEPS = 10.0
FLUENCE = 1e24
POLAR = 0.991234567890123
OMEGA = 4.17226789012345e-7
FINAL = I_BEFORE / STEPS * R_E_SQR * FLUENCE * 1.0 * POLAR * OMEGA

# (key, values) in C trace order (nanobragg-facts §5)
REF_TRACE: list[tuple[str, tuple[float, ...]]] = [
    ("pix0_vector_meters", (-0.216336293, 0.215205512, -0.230200866)),
    ("fdet_vec", (0.999982, -0.005998, -0.000118)),
    ("sdet_vec", (-0.005998, -0.99997, -0.004913)),
    ("pixel_pos_meters", (-0.0985, 0.0365, -0.2302)),
    ("R_distance_meters", (0.252986431,)),
    ("omega_pixel_sr", (OMEGA,)),
    ("close_distance_meters", (0.231274,)),
    ("obliquity_factor", (0.914185,)),
    ("diffracted_vec", (-0.38935, 0.14430, -0.90992)),
    ("incident_vec", (0.00051387949, 0.0, -0.99999986)),
    ("lambda_meters", (9.768e-11,)),
    ("lambda_angstroms", (0.9768,)),
    ("scattering_vec_A_inv", (-3991178000.0, 1477330000.0, 922530000.0)),
    ("rot_a_angstroms", (-14.356, -21.881, -5.547)),
    ("rot_b_angstroms", (-11.497, 0.717, -29.370)),
    ("rot_c_angstroms", (21.069, -24.389, -9.753)),
    ("rot_a_star_A_inv", (-0.029051, -0.029395, 0.010750)),
    ("rot_b_star_A_inv", (-0.003126, 0.010438, -0.032857)),
    ("rot_c_star_A_inv", (0.025960, -0.014333, -0.010606)),
    ("hkl_frac", (2.0012, 1.9734, -12.9891)),
    ("hkl_rounded", (2.0, 2.0, -13.0)),
    ("F_latt_a", (35.9)),
    ("F_latt_b", (-2.38,)),
    ("F_latt_c", (28.7,)),
    ("F_latt", (-2452.3,)),
    ("F_cell", (190.27,)),
    ("I_before_scaling", (I_BEFORE,)),
    ("r_e_meters", (2.8179403262e-15,)),
    ("r_e_sqr", (R_E_SQR,)),
    ("fluence_photons_per_m2", (FLUENCE,)),
    ("steps", (STEPS,)),
    ("oversample_thick", (0.0,)),
    ("oversample_polar", (0.0,)),
    ("oversample_omega", (0.0,)),
    ("capture_fraction", (1.0,)),
    ("polar", (POLAR,)),
    ("omega_pixel", (OMEGA,)),
    ("cos_2theta", (0.909915,)),
    ("I_pixel_final", (FINAL,)),
    ("floatimage_accumulated", (FINAL,)),
]
REF_TRACE = [(k, v if isinstance(v, tuple) else (v,)) for k, v in REF_TRACE]
INT_KEYS = {"hkl_rounded", "steps", "oversample_thick", "oversample_polar", "oversample_omega"}


def make_trace(prefix: str, items: Sequence[tuple[str, tuple[float, ...]]]) -> Trace:
    entries = []
    for pos, (k, vals) in enumerate(items):
        toks = tuple(f"{int(v)}" if k in INT_KEYS else f"{v:.15g}" for v in vals)
        entries.append(TraceEntry(k, 0, pos, pos + 3, toks, tuple(vals),
                                  tuple(k in INT_KEYS for _ in vals)))
    return Trace(prefix, tuple(entries), lines_read=len(items) + 120, free_lines=120)


def _rel(a: float, b: float) -> float:
    m = max(abs(a), abs(b))
    return 0.0 if m == 0 else abs(b - a) / m


def _ratio(a: float, b: float) -> float:
    if a == 0:
        return math.nan if b == 0 else math.inf
    return b / a


def compare(ref: Mapping[str, tuple[float, ...]], cand: Mapping[str, tuple[float, ...]],
            ref_engine: str = "c", cand_engine: str = "py", rtol: float = 1e-6,
            key_rtol: Mapping[str, float] | None = None) -> Comparison:
    """A minimal comparison of two traces as dicts (key -> values), in ref order."""
    key_rtol = key_rtol or {}
    rows: list[ComparisonRow] = []
    keys = list(ref) + [k for k in cand if k not in ref]
    for pos, k in enumerate(keys):
        rv, cv = ref.get(k), cand.get(k)
        tol = key_rtol.get(k, rtol)
        n = max(len(rv or ()), len(cv or ()))
        for i in range(n):
            a = rv[i] if rv is not None and i < len(rv) else None
            b = cv[i] if cv is not None and i < len(cv) else None
            if a is None or b is None:
                rows.append(ComparisonRow(k, 0, i, pos, a, b, None, None, None, tol, 0.0,
                                          "missing_ref" if a is None else "missing_cand"))
                continue
            rd = _rel(a, b)
            rows.append(ComparisonRow(k, 0, i, pos, a, b, abs(b - a), rd, _ratio(a, b), tol, 0.0,
                                      "match" if rd <= tol else "differ"))
    first = next((r for r in rows if r.status != "match"), None)
    missing = {ref_engine: tuple(k for k in cand if k not in ref),
               cand_engine: tuple(k for k in ref if k not in cand)}
    factors = []
    for k in CHAIN_KEYS:
        a = ref[k][0] if k in ref else None
        b = cand[k][0] if k in cand else None
        rd = _rel(a, b) if a is not None and b is not None else None
        factors.append(ChainFactor(k, a, b, _ratio(a, b) if rd is not None else None, rd,
                                   rd is not None and rd <= rtol))
    chain_first = next((f for f in factors if not f.matches), None)
    ratios = {f.key: f.ratio for f in factors}
    prod = None
    if all(ratios[k] is not None for k in CHAIN_KEYS[:-1]):
        prod = 1.0
        for k in CHAIN_KEYS[:-1]:
            prod *= 1.0 / ratios[k] if k == "steps" else ratios[k]
    cons = {ref_engine: consistency(ref_engine, ref), cand_engine: consistency(cand_engine, cand)}
    chain = ChainReport(tuple(factors), chain_first, prod, ratios["I_pixel_final"], cons)
    both = sum(1 for k in keys if k in ref and k in cand)
    return Comparison(ref_engine, cand_engine, tuple(rows), first, missing, both, chain)


def consistency(engine: str, trace: Mapping[str, tuple[float, ...]]) -> Consistency:
    missing = tuple(k for k in CHAIN_KEYS if k not in trace)
    if missing:
        return Consistency(engine, None, trace.get("I_pixel_final", (None,))[0], None, None,
                           missing)
    v = {k: trace[k][0] for k in CHAIN_KEYS}
    product = (v["I_before_scaling"] / v["steps"] * v["r_e_sqr"] * v["fluence_photons_per_m2"]
               * v["capture_fraction"] * v["polar"] * v["omega_pixel"])
    final = v["I_pixel_final"]
    return Consistency(engine, product, final, final / product, _rel(product, final) <= 1e-6)


# --------------------------------------------------------------------------- commands


def digest(path: str, root: str = "bundle", size: int = 100, tag: str = "") -> FileDigest:
    import hashlib
    return FileDigest(path, size, hashlib.sha256(f"{root}:{path}:{tag}".encode()).hexdigest(),
                      root)


def command(step: str, role: str, engine: str | None, argv: Sequence[str], exit_code: int | None,
            wall: float, *, timed_out: bool = False, error: str | None = None,
            inputs: Sequence[FileDigest] = (), outputs: Sequence[FileDigest] = ()
            ) -> CommandRecord:
    return CommandRecord(
        step=step, role=role, engine=engine, argv=tuple(argv), cwd=f"/scratch/{step}",
        env=(("KMP_DUPLICATE_LIB_OK", "TRUE"), ("OMP_NUM_THREADS", "2"),
             ("PATH", "/usr/bin:/bin")),
        start_utc="2026-11-27T21:05:01.123456Z", end_utc="2026-11-27T21:05:09.223456Z",
        wall_s=wall, exit_code=exit_code, timed_out=timed_out, error=error, peak_rss_kb=47000,
        stdout=digest(f"logs/{step}.stdout"), stderr=digest(f"logs/{step}.stderr"),
        inputs=tuple(inputs), outputs=tuple(outputs))


SHARED_ARGS = ["-mat", "A.mat", "-floatfile", "img.bin", "-hkl", "scaled.hkl", "-nonoise"]


def standard_commands(py_fails: bool = False) -> tuple[CommandRecord, ...]:
    amat, hkl = digest("A.mat", "input", 120), digest("scaled.hkl", "input", 9000)
    src = digest("minibragg/minibragg.c", "repo", 20000)
    return (
        command("build-c", "build", "c", ["/usr/bin/gcc", "-O2", "-o", "minibragg", "minibragg.c",
                                          "-lm"], 0, 0.41, inputs=[src],
                outputs=[digest("minibragg", "scratch:c", 5678)]),
        command("run-c", "run", "c", ["/scratch/build-c/minibragg", *SHARED_ARGS, "-dump_pixel",
                                      "1039", "685"], 0, 8.1, inputs=[amat, hkl],
                outputs=[digest("img.bin", "scratch:c", 4 * 6224001, tag="c-image"),
                         digest("Fdump.bin", "scratch:c", 5000)]),
        command("run-py", "run", "py", ["/usr/bin/python3", "-m", "minibragg", *SHARED_ARGS,
                                        "-trace_pixel", "1039", "685"],
                1 if py_fails else 0, 14.8, inputs=[amat, hkl],
                error=None,
                outputs=[] if py_fails else [digest("img.bin", "scratch:py", 4 * 6224001,
                                                    tag="py-image")]),
    )


ENVIRONMENT = {
    "host": "lab-node-7", "os": "Linux 6.1 (Linux-6.1-x86_64-with-glibc2.36)",
    "cpu": "AMD EPYC 7B13", "cores": 2, "machine": "x86_64",
    "versions": {"python": "3.11.7", "python_executable": "/usr/bin/python3", "gcc": "12.2.0",
                 "torch": "2.13.0+cpu", "numpy": "2.4.6", "nb_evidence": "0.1.0"},
    "cuda": {"available": False, "device": None},
    "container": None,
}
CONTAINER = {"image_id": "sha256:" + "ab" * 32, "image_tag": "nb-evidence:0.1.0",
             "repo_digests": ["ghcr.io/example/nb-evidence@sha256:" + "cd" * 32],
             "dockerfile_sha256": "ef" * 32, "lock_sha256": "01" * 32,
             "engine_version": "Docker 27.3.1", "build_args": None}


def metrics(ref_engine: str = "c", cand_engine: str = "py") -> ImageMetrics:
    return ImageMetrics(
        ref_engine, cand_engine, 2527, 2463,
        EngineImageStats(ref_engine, 1234.5, 1.9834e-4, 446.0, 1039, 685, FINAL),
        EngineImageStats(cand_engine, 1234.5 * 1e6, 1.9834e-4 * 1e6, 446.0e6, 1039, 685,
                         FINAL * 1e6),
        sum_ratio=1e6, rmse=12.75, pearson=0.9978, peaks_ref=212, peaks_cand=209,
        peaks_matched=205, mean_peak_distance=0.42, correlation_pass=False,
        peak_distance_pass=True, max_abs_diff=445.99955)


def divergent_result(*, inconsistent: bool = False, container: bool = False,
                     with_metrics: bool = True) -> CaptureResult:
    """py prints fluence 1e6 × c's. ``inconsistent``: py's final stays c's (so py's trace does not
    compose); otherwise py's final is 1e6 × too."""
    ref = dict(REF_TRACE)
    cand = dict(REF_TRACE)
    cand["fluence_photons_per_m2"] = (FLUENCE * 1e6,)
    if not inconsistent:
        cand["I_pixel_final"] = (FINAL * 1e6,)
        cand["floatimage_accumulated"] = (FINAL * 1e6,)
    cmp = compare(ref, cand)
    env = dict(ENVIRONMENT)
    if container:
        env["container"] = CONTAINER
    return CaptureResult(
        bundle_id="20261127T210501Z-cli-flags-003-phase-j-3f9a0c1e", status="complete",
        verdict="divergence",
        spec={"name": "cli-flags-003-phase-j", "description": "Supervisor command parity",
              "target": "minibragg"},
        target="minibragg", pixel=(1039, 685),
        engines=(EngineRun("c", "TRACE_C:", make_trace("TRACE_C:", REF_TRACE), "images/c.bin"),
                 EngineRun("py", "TRACE_PY:", make_trace("TRACE_PY:", list(cand.items())),
                           "images/py.bin")),
        comparison=cmp, metrics=metrics() if with_metrics else None,
        commands=standard_commands(), environment=env,
        reproduce="nb-evidence replay bundles/20261127T210501Z-cli-flags-003-phase-j-3f9a0c1e",
        created_utc="2026-11-27T21:05:01.123456Z")


PY_STDERR = """Traceback (most recent call last):
  File "/repo/minibragg/__main__.py", line 4, in <module>
    main()
  File "/repo/minibragg/simulate.py", line 210, in run
    polar = polarization(cos2theta, kahn | 0)
RuntimeError: expected scalar type Double but found Float
"""


def partial_result() -> CaptureResult:
    """py crashed after 35 keys (exit 1, no image): status partial, verdict incomplete."""
    ref = dict(REF_TRACE)
    cand_items = REF_TRACE[:35]  # stops before polar, omega_pixel, cos_2theta, finals
    cand = dict(cand_items)
    cmp = compare(ref, cand)
    cmds = standard_commands(py_fails=True)
    return CaptureResult(
        bundle_id="20261127T220000Z-float64-trace-0badc0de", status="partial",
        verdict="incomplete", spec={"name": "float64-trace"}, target="minibragg",
        pixel=(1039, 685),
        engines=(EngineRun("c", "TRACE_C:", make_trace("TRACE_C:", REF_TRACE), "images/c.bin"),
                 EngineRun("py", "TRACE_PY:", make_trace("TRACE_PY:", cand_items), None,
                           failed_steps=("run-py",))),
        comparison=cmp, metrics=None, commands=cmds, environment=dict(ENVIRONMENT),
        notes=("py: command run-py exited 1 after 35 of 40 keys",),
        reproduce="nb-evidence replay bundles/20261127T220000Z-float64-trace-0badc0de",
        created_utc="2026-11-27T22:00:00Z",
        extra={"stderr_tails": {"run-py": PY_STDERR}})


def parity_result() -> CaptureResult:
    ref = dict(REF_TRACE)
    cmp = compare(ref, dict(REF_TRACE))
    return CaptureResult(
        bundle_id="20261127T230000Z-parity-12345678", status="complete", verdict="parity",
        spec={"name": "parity"}, target="minibragg", pixel=(1039, 685),
        engines=(EngineRun("c", "TRACE_C:", None, None), EngineRun("py", "TRACE_PY:", None, None)),
        comparison=cmp, metrics=None, commands=standard_commands(), environment=ENVIRONMENT,
        reproduce="nb-evidence replay bundles/20261127T230000Z-parity-12345678",
        created_utc="2026-11-27T23:00:00Z")


# --------------------------------------------------------------------------- images


def synthetic_images(shape: tuple[int, int] = (2527, 2463), n_spots: int = 400, seed: int = 7,
                     region: tuple[slice, slice] = (slice(300, 900), slice(1500, 2200)),
                     scale: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """A detector-like float32 image: a faint smooth background and ``n_spots`` sharp Gaussian
    spots; the candidate is the reference with ``region`` scaled by ``scale``."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    ref = (1e-3 * np.exp(-(xx * xx + yy * yy) * 2.0)).astype(np.float32)
    r = 5
    g = np.arange(-r, r + 1, dtype=np.float32)
    for _ in range(n_spots):
        cy, cx = rng.integers(r, h - r), rng.integers(r, w - r)
        sigma = rng.uniform(0.7, 1.8)
        amp = 10 ** rng.uniform(0, 2.65)  # up to ~446
        patch = amp * np.exp(-(g[:, None] ** 2 + g[None, :] ** 2) / (2 * sigma * sigma))
        ref[cy - r:cy + r + 1, cx - r:cx + r + 1] += patch.astype(np.float32)
    cand = ref.copy()
    cand[region] *= scale
    return ref, cand


def bundle_files_for(result: CaptureResult) -> list[str]:
    """The bundle-relative paths a writer would produce for ``result`` (for crate tests)."""
    paths = ["report.md", "traces.parquet", "comparison.parquet", "chain.parquet",
             "metrics.parquet", "commands.parquet", "plots/key_ratios.png"]
    for c in result.commands:
        paths += [c.stdout.path, c.stderr.path]
    for e in result.engines:
        if e.image_path:
            paths.append(e.image_path)
    return sorted(set(paths))
