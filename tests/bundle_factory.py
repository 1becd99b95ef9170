"""Hand-built bundles for tests (and the verify bench): hand-written logs and images, with the
manifest made as a capture makes it (the logs parsed and compared, then
bundle.present.manifest.build_manifest), so it has every field a real bundle has.

``make_bundle(root, **overrides)`` writes ``root/<bundle_id>/`` with run logs carrying TRACE_C /
TRACE_PY lines, a report.md, optional small float images, and a manifest.json whose ``files``
list and command digests are computed from what was written. Options (all keywords):

- ``bundle_id``: the directory name and manifest id.
- ``verdict``: "divergence" (default; F_cell differs by 3e-4), "parity", or "incomplete" (the py
  run exits 1 after F_cell; its later keys are missing).
- ``py_inconsistent``: the py trace prints an I_pixel_final its own factors do not compose to.
- ``images``: write images/c.bin and images/py.bin (default True) and fill result.metrics.
- ``extra_files``: {bundle-relative path: bytes} written and listed.
- ``result``: keys merged into the result object.
- ``engines``: entries replacing the manifest's engines, each completed with the fields a
  capture writes (empty options, argv, added and failed_steps; no image, no trace digest).
- anything else: replaces that top-level manifest field (``files`` is always what was written).
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from bundle.analysis.compare import compare_traces
from bundle.analysis.roots import classify
from bundle.analysis.trace import parse_file
from bundle.model.records import (CaptureResult, CommandRecord, EngineImageStats, EngineRun,
                                  FileDigest, ImageMetrics, Tolerance)
from bundle.model.hashing import trace_digest
from bundle.present.manifest import arguments_data, build_manifest, target_data

DEFAULT_ID = "20261127T210501Z-cli-flags-003-phase-j-3f9a0c1e"
INT_KEYS = {"hkl_rounded", "steps"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _compose(v: dict[str, list[float]]) -> float:
    return (
        v["I_before_scaling"][0]
        / v["steps"][0]
        * v["r_e_sqr"][0]
        * v["fluence_photons_per_m2"][0]
        * v["capture_fraction"][0]
        * v["polar"][0]
        * v["omega_pixel"][0]
    )


def _c_values() -> dict[str, list[float]]:
    v: dict[str, list[float]] = {
        "pix0_vector_meters": [-0.216336293, 0.215205512, -0.230200866],
        "fdet_vec": [0.999982, -0.005998, -0.000118],
        "R_distance_meters": [0.231598347312],
        "omega_pixel_sr": [5.50412278432e-07],
        "hkl_frac": [-6.9712, 4.0123, 11.9923],
        "hkl_rounded": [-7, 4, 12],
        "F_latt": [2871.42],
        "F_cell": [100.0],
        "I_before_scaling": [8.24505e11],
        "r_e_sqr": [7.94079248018965e-30],
        "fluence_photons_per_m2": [1e24],
        "steps": [10],
        "capture_fraction": [1.0],
        "polar": [0.91364],
        "omega_pixel": [5.50412278432e-07],
    }
    v["I_pixel_final"] = [_compose(v)]
    v["floatimage_accumulated"] = [v["I_pixel_final"][0]]
    return v


def _fmt(key: str, x: float) -> str:
    return "%d" % x if key in INT_KEYS else "%.15g" % x


def _trace_text(prefix: str, values: dict[str, list[float]], banner: str, crash: str | None) -> str:
    lines = [banner, "WARNING: auto-generating odet_vector"]
    lines += [f"  {p}% done" for p in range(0, 101, 10)]
    lines.append("TRACE_CONFIG: tracing pixel (spixel=1039, fpixel=685)")
    lines.append("TRACE: Omega = 5.5e-07")
    for key, vals in values.items():
        lines.append(f"{prefix} {key} " + " ".join(_fmt(key, x) for x in vals))
    if crash:
        lines.append(crash)
    else:
        lines.append("max_I = 446.1 at (1039, 685)")
        lines.append("mean= 0.0123 rms= 0.456 rmsd= 0.455")
    return "\n".join(lines) + "\n"


def _image(slow: int, fast: int, scale: float) -> bytes:
    vals = [scale * ((s * 7 + f * 3) % 11) for s in range(slow) for f in range(fast)]
    return struct.pack(f"<{len(vals)}f", *vals)


def make_bundle(root: Path, **overrides: Any) -> Path:
    bundle_id = overrides.pop("bundle_id", DEFAULT_ID)
    verdict = overrides.pop("verdict", "divergence")
    py_inconsistent = overrides.pop("py_inconsistent", False)
    images = overrides.pop("images", True)
    extra_files: dict[str, bytes] = overrides.pop("extra_files", {})
    result_overrides: dict[str, Any] = overrides.pop("result", {})

    bdir = Path(root) / bundle_id
    (bdir / "logs").mkdir(parents=True)

    c = _c_values()
    py = {k: list(v) for k, v in c.items()}
    crash = None
    if verdict == "divergence":
        f = 1.0003
        py["F_cell"] = [c["F_cell"][0] * f]
        py["I_before_scaling"] = [c["I_before_scaling"][0] * f * f]
        py["I_pixel_final"] = [_compose(py)]
        py["floatimage_accumulated"] = [py["I_pixel_final"][0]]
    elif verdict == "incomplete":
        keys = list(py)
        for k in keys[keys.index("F_cell") + 1 :]:
            del py[k]
        crash = "RuntimeError: expected scalar type Double but found Float"
    if py_inconsistent and "I_pixel_final" in py:
        py["I_pixel_final"] = [py["I_pixel_final"][0] * 2.5]

    c_log = _trace_text("TRACE_C:", c, "minibragg C engine", None)
    py_log = _trace_text("TRACE_PY:", py, "minibragg PyTorch engine", crash)
    logs = {
        "logs/build-c.stdout": b"",
        "logs/build-c.stderr": b"",
        "logs/run-c.stdout": c_log.encode(),
        "logs/run-c.stderr": b"",
        "logs/run-py.stdout": py_log.encode(),
        "logs/run-py.stderr": (crash + "\n").encode() if crash else b"",
    }
    for rel, data in logs.items():
        (bdir / rel).write_bytes(data)

    if images and verdict != "incomplete":
        (bdir / "images").mkdir()
        (bdir / "images/c.bin").write_bytes(_image(6, 5, 1.0))
        (bdir / "images/py.bin").write_bytes(_image(6, 5, 1.0006))
    for rel, data in extra_files.items():
        p = bdir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    # ------------------------------------------- the manifest, by the capture's own builder
    c_trace = parse_file(bdir / "logs/run-c.stdout", "TRACE_C:")
    py_trace = parse_file(bdir / "logs/run-py.stdout", "TRACE_PY:")
    comparison = compare_traces(c_trace, py_trace, "c", "py", Tolerance(rtol=1e-6, atol=0.0))
    metrics = _metrics(c, py) if images and verdict != "incomplete" else None
    status = "partial" if verdict == "incomplete" else "complete"
    notes = (f"py: command run-py exited 1 after {len(py)} of {len(c)} keys",) if verdict == "incomplete" else ()
    (bdir / "report.md").write_text(
        f"# nb-evidence report: {bundle_id}\n\nVerdict: **{verdict}**\n", encoding="utf-8"
    )
    shared = ("-mat", "A.mat", "-hkl", "scaled.hkl", "-nonoise", "-distance", "231.274660", "-lambda", "0.976800")
    failed = verdict == "incomplete"
    commands = (
        _command(bdir, "build-c", "build", "c", ("gcc", "-O2", "-o", "minibragg", "minibragg.c", "-lm"), 0),
        _command(bdir, "run-c", "run", "c", ("/scratch/minibragg", *shared), 0),
        _command(bdir, "run-py", "run", "py", ("python", "-m", "minibragg", *shared), 1 if failed else 0),
    )
    added = {"c": ("-dump_pixel", "1039", "685"), "py": ("-trace_pixel", "1039", "685")}
    argv = {"c": ("/scratch/minibragg", *shared, *added["c"]),
            "py": ("python", "-m", "minibragg", *shared, *added["py"])}
    options = {"c": {"threads": 2}, "py": {"dtype": "float64"}}
    image = {e: f"images/{e}.bin" if images and verdict != "incomplete" else None for e in ("c", "py")}
    result = CaptureResult(
        bundle_id=bundle_id, status=status, verdict=verdict, spec=_spec(shared),
        target="minibragg", pixel=(1039, 685),
        engines=(EngineRun("c", "TRACE_C:", c_trace, image["c"]),
                 EngineRun("py", "TRACE_PY:", py_trace, image["py"],
                           failed_steps=("run-py",) if failed else ())),
        comparison=comparison, metrics=metrics, commands=commands,
        roots=classify(comparison) if comparison is not None else None,
        environment={"host": "testhost", "os": "Linux", "cpu": "x86_64", "cores": 2, "machine": "x86_64",
                     "versions": {"python": "3.11.7", "gcc": "12.2.0"},
                     "cuda": {"available": False, "device": None}, "container": None},
        notes=notes, reproduce=f"nb-evidence replay bundles/{bundle_id}",
        created_utc="2026-11-27T21:05:01.123456Z",
    )
    files = sorted((_file(bdir, p.relative_to(bdir).as_posix()) for p in bdir.rglob("*") if p.is_file()),
                   key=lambda d: d.path)
    manifest = build_manifest(
        result, bundle_path=f"bundles/{bundle_id}", files=files, inputs=[],
        target=target_data("minibragg", {"name": "minibragg"}, "/work/repo",
                           {"repo_commit": "0" * 40, "repo_dirty": False, "repo_diff_sha256": None}),
        arguments=arguments_data(shared, _sha("\0".join(shared).encode()), argv,
                                 {c.step: c.argv for c in commands},
                                 {"repo": "/work/repo", "scratch": "/scratch", "python": "python"}),
        engines=[_engine(run, argv[run.engine], added[run.engine], options[run.engine],
                         image[run.engine], trace_digest(run.trace)) for run in result.engines],
    )
    manifest["tool"]["version"] = "0.1.0"
    manifest["result"].update(result_overrides)
    if "engines" in overrides:  # partial entries, completed to the shape a capture writes
        blank = {"options": {}, "argv": [], "added": [], "image": None, "failed_steps": [],
                 "trace_sha256": None}
        overrides["engines"] = [{**blank, **e} for e in overrides["engines"]]
    manifest.update({k: v for k, v in overrides.items() if k != "files"})
    (bdir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return bdir


def _engine(run: EngineRun, argv: tuple[str, ...], added: tuple[str, ...], options: dict,
            image: str | None, trace_sha256: str | None) -> dict[str, Any]:
    return {"name": run.engine, "prefix": run.prefix, "options": options, "argv": list(argv),
            "added": list(added), "failed_steps": list(run.failed_steps), "image": image,
            "log": f"logs/run-{run.engine}.stdout", "trace_sha256": trace_sha256}


def _spec(shared: tuple[str, ...]) -> dict[str, Any]:
    return {
        "name": "cli-flags-003-phase-j", "item": "CLI-FLAGS-003", "phase": "J",
        "description": "supervisor command, pixel (1039, 685)", "target": "minibragg",
        "args": list(shared), "pixel": [1039, 685],
        "tolerance": {"rtol": 1e-6, "atol": 0.0, "keys": {}},
        "engines": {"c": {"threads": 2}, "py": {"dtype": "float64", "device": "cpu"}},
        "inputs": {"files": [], "prepare": []},
        "source": {"path": "manifests/cli-flags-003-phase-j.toml", "sha256": "0" * 64},
    }


def _file(bdir: Path, rel: str) -> FileDigest:
    data = (bdir / rel).read_bytes()
    return FileDigest(path=rel, size=len(data), sha256=_sha(data))


def _command(bdir: Path, step: str, role: str, engine: str, argv: tuple[str, ...],
             code: int | None) -> CommandRecord:
    return CommandRecord(
        step=step, role=role, engine=engine, argv=argv, cwd="/scratch/x",
        env=(("OMP_NUM_THREADS", "2"), ("PATH", "/usr/bin")),
        start_utc="2026-11-27T21:05:01.200000Z", end_utc="2026-11-27T21:05:02.100000Z",
        wall_s=0.9, exit_code=code, peak_rss_kb=51234,
        stdout=_file(bdir, f"logs/{step}.stdout"), stderr=_file(bdir, f"logs/{step}.stderr"),
    )


def _metrics(c: dict[str, list[float]], py: dict[str, list[float]]) -> ImageMetrics:
    return ImageMetrics(
        ref_engine="c", cand_engine="py", slow=6, fast=5,
        ref=EngineImageStats("c", 150.0, 5.0, 10.0, 1, 3, c["I_pixel_final"][0]),
        cand=EngineImageStats("py", 150.09, 5.003, 10.006, 1, 3, py.get("I_pixel_final", [None])[0]),
        sum_ratio=1.0006, rmse=0.0021, pearson=0.99999, peaks_ref=12, peaks_cand=12,
        peaks_matched=12, mean_peak_distance=0.0, correlation_pass=True, peak_distance_pass=True,
        max_abs_diff=0.006,
    )


def refresh_files(bundle_dir: Path) -> dict[str, Any]:
    """Re-list every file under ``bundle_dir`` (sizes and sha256, streamed) in its manifest.json;
    for bundles whose files were added or replaced after ``make_bundle`` (the verify bench)."""
    bdir = Path(bundle_dir)
    manifest = json.loads((bdir / "manifest.json").read_text(encoding="utf-8"))
    files = []
    for p in sorted(bdir.rglob("*")):
        rel = p.relative_to(bdir).as_posix()
        if not p.is_file() or rel == "manifest.json":
            continue
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        files.append({"path": rel, "size": p.stat().st_size, "sha256": h.hexdigest()})
    manifest["files"] = files
    (bdir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
