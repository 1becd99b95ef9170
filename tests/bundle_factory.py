"""Hand-built bundles for tests (and the verify bench), shaped as docs/bundle-format.md says.

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
- anything else: replaces that top-level manifest field (before ``files`` is computed).
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from bundle.analysis.chain import CHAIN_KEYS

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


def _ratio(c: float | None, py: float | None) -> float | None:
    if c is None or py is None or c == 0:
        return None
    return py / c


def _rel(c: float | None, py: float | None) -> float | None:
    if c is None or py is None:
        return None
    m = max(abs(c), abs(py))
    return 0.0 if m == 0 else abs(py - c) / m


def _consistency(v: dict[str, list[float]]) -> dict[str, Any]:
    missing = [k for k in CHAIN_KEYS if k not in v]
    if missing:
        return {"product": None, "final": None, "ratio": None, "consistent": None, "missing": missing}
    product = _compose(v)
    final = v["I_pixel_final"][0]
    ratio = final / product
    return {
        "product": product,
        "final": final,
        "ratio": ratio,
        "consistent": abs(final - product) / max(abs(final), abs(product)) <= 1e-6,
        "missing": [],
    }


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

    # ---------------------------------------------------------------- result
    factors = []
    for k in CHAIN_KEYS:
        cv = c[k][0]
        pv = py[k][0] if k in py else None
        factors.append({"key": k, "c": cv, "py": pv, "ratio": _ratio(cv, pv)})
    ratios = {f["key"]: f["ratio"] for f in factors}
    if all(ratios[k] is not None for k in CHAIN_KEYS):
        product_of_ratios = 1.0
        for k in CHAIN_KEYS[:-1]:
            r = ratios[k]
            product_of_ratios *= (1 / r) if k == "steps" else r
    else:
        product_of_ratios = None

    first_divergence = None
    first_chain = None
    if verdict == "divergence":
        first_divergence = {
            "key": "F_cell",
            "component": 0,
            "occurrence": 0,
            "c": c["F_cell"][0],
            "py": py["F_cell"][0],
            "rel_diff": _rel(c["F_cell"][0], py["F_cell"][0]),
            "ratio": _ratio(c["F_cell"][0], py["F_cell"][0]),
        }
        first_chain = factors[0]
    missing_py = [k for k in c if k not in py]
    failed = []
    if verdict == "incomplete":
        failed = [{"step": "run-py", "exit_code": 1, "timed_out": False, "error": None}]
    metrics = None
    if images and verdict != "incomplete":
        metrics = {
            "pearson": 0.99999,
            "sum_ratio": 1.0006,
            "rmse": 0.0021,
            "peaks_matched": 12,
            "mean_peak_distance": 0.0,
            "correlation_pass": True,
            "peak_distance_pass": True,
            "c": {"total": 150.0, "mean": 5.0, "max": 10.0, "max_slow": 1, "max_fast": 3, "traced_value": c["I_pixel_final"][0]},
            "py": {"total": 150.09, "mean": 5.003, "max": 10.006, "max_slow": 1, "max_fast": 3, "traced_value": py.get("I_pixel_final", [None])[0]},
        }
    status = "partial" if verdict == "incomplete" else "complete"
    notes = [f"py: command run-py exited 1 after {len(py)} of {len(c)} keys"] if verdict == "incomplete" else []
    result: dict[str, Any] = {
        "verdict": verdict,
        "status": status,
        "first_divergence": first_divergence,
        "first_chain_divergence": first_chain,
        "chain": {
            "factors": factors,
            "consistency": {"c": _consistency(c), "py": _consistency(py)},
            "product_of_ratios": product_of_ratios,
            "final_ratio": ratios["I_pixel_final"],
        },
        "missing": {"c": [], "py": missing_py},
        "keys_compared": len([k for k in c if k in py]),
        "engines": {"ref": "c", "cand": "py"},
        "metrics": metrics,
        "failed_commands": failed,
        "notes": notes,
        "bundle": f"bundles/{bundle_id}",
    }
    result.update(result_overrides)

    (bdir / "report.md").write_text(
        f"# nb-evidence report: {bundle_id}\n\nVerdict: **{verdict}**\n", encoding="utf-8"
    )

    def digest(rel: str) -> dict[str, Any]:
        data = (bdir / rel).read_bytes()
        return {"path": rel, "size": len(data), "sha256": _sha(data)}

    shared = ["-mat", "A.mat", "-hkl", "scaled.hkl", "-nonoise", "-distance", "231.274660", "-lambda", "0.976800"]

    def command(step: str, role: str, engine: str, argv: list[str], code: int | None) -> dict[str, Any]:
        return {
            "step": step, "role": role, "engine": engine, "argv": argv, "cwd": "/scratch/x",
            "env": {"PATH": "/usr/bin", "OMP_NUM_THREADS": "2"},
            "start_utc": "2026-11-27T21:05:01.200000Z", "end_utc": "2026-11-27T21:05:02.100000Z",
            "wall_s": 0.9, "exit_code": code, "timed_out": False, "error": None, "peak_rss_kb": 51234,
            "stdout": digest(f"logs/{step}.stdout"), "stderr": digest(f"logs/{step}.stderr"),
            "inputs": [], "outputs": [],
        }

    manifest: dict[str, Any] = {
        "format": "nb-evidence-bundle",
        "format_version": 1,
        "tool": {"name": "nb-evidence", "version": "0.1.0"},
        "bundle_id": bundle_id,
        "created_utc": "2026-11-27T21:05:01.123456Z",
        "status": status,
        "replay_of": None,
        "spec": {
            "name": "cli-flags-003-phase-j", "item": "CLI-FLAGS-003", "phase": "J",
            "description": "supervisor command, pixel (1039, 685)", "target": "minibragg",
            "args": shared, "pixel": [1039, 685],
            "tolerance": {"rtol": 1e-6, "atol": 0.0, "keys": {}},
            "engines": {"c": {"threads": 2}, "py": {"dtype": "float64", "device": "cpu"}},
        },
        "target": {
            "name": "minibragg", "profile": {"name": "minibragg"}, "repo": "/work/repo",
            "repo_commit": "0" * 40, "repo_dirty": False, "repo_diff_sha256": None,
        },
        "arguments": {
            "shared": shared,
            "sha256": _sha("\0".join(shared).encode()),
            "engines": {"c": ["/scratch/minibragg", *shared], "py": ["python", "-m", "minibragg", *shared]},
        },
        "engines": [
            {"name": "c", "prefix": "TRACE_C:", "trace_flag": ["-dump_pixel", "1039", "685"],
             "options": {"threads": 2}, "log": "logs/run-c.stdout",
             "image": "images/c.bin" if images else None, "failed_steps": []},
            {"name": "py", "prefix": "TRACE_PY:", "trace_flag": ["-trace_pixel", "1039", "685"],
             "options": {"dtype": "float64"}, "log": "logs/run-py.stdout",
             "image": "images/py.bin" if images else None,
             "failed_steps": ["run-py"] if verdict == "incomplete" else []},
        ],
        "environment": {
            "host": "testhost", "os": "Linux", "cpu": "x86_64", "cores": 2,
            "versions": {"python": "3.11.7", "gcc": "12.2.0"}, "cuda": {"available": False, "device": None},
            "container": None,
        },
        "commands": [
            command("build-c", "build", "c", ["gcc", "-O2", "-o", "minibragg", "minibragg.c", "-lm"], 0),
            command("run-c", "run", "c", ["/scratch/minibragg", *shared], 0),
            command("run-py", "run", "py", ["python", "-m", "minibragg", *shared], 1 if verdict == "incomplete" else 0),
        ],
        "inputs": [],
        "result": result,
        "notes": notes,
        "reproduce": f"nb-evidence replay bundles/{bundle_id}",
    }
    manifest.update(overrides)
    files = sorted(
        p.relative_to(bdir).as_posix() for p in bdir.rglob("*") if p.is_file()
    )
    manifest["files"] = [digest(rel) for rel in files if rel != "manifest.json"]
    (bdir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return bdir


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
