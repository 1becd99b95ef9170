"""Injected faults in the minibragg pair: each names exactly its injected keys as roots (or
amplified) and every other divergent key as carried; all four together give four causes.

The C engine is built and run once (real gcc); each PyTorch variant is the minibragg package
copied into tmp_path with its source text patched, run through ``python -m minibragg`` on the
ROI spec's argument list, and traced at the spec's pixel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bundle.analysis.compare import compare_traces
from bundle.analysis.roots import classify
from bundle.analysis.trace import parse_lines
from bundle.capture.spec import load_spec
from bundle.capture.target import load_target

REPO = Path(__file__).resolve().parent.parent
SPEC = load_spec(REPO / "manifests" / "minibragg-roi.toml")
PIXEL = [str(v) for v in SPEC.pixel]
GRAPH = load_target("minibragg").graph

# (file, text in it, text that replaces it): one fault each, far beyond rtol 1e-6.
PIX0 = ("geometry.py", "    pix0 = tuple(-xbeam * fdet[i] - ybeam * sdet[i] + length * origin[i] for i in range(3))\n",
        "    pix0 = tuple(-xbeam * fdet[i] - ybeam * sdet[i] + length * origin[i]\n"
        "                 + (2e-6 if i == 1 else 0.0) for i in range(3))\n")
REAL_A = ("crystal.py", "    return Cell(\n        a=a,\n", "    return Cell(\n        a=scale(a, 1.0 + 3e-4),\n")
FLUENCE = ("config.py", "        return config.flux * config.exposure / (beam_m * beam_m)\n",
           "        return 10.0 * config.flux * config.exposure / (beam_m * beam_m)\n")
POLAR = ("engine.py", "        return cos2t, 0.5 * (1.0 + cos2t_sqr)\n",
         "        return cos2t, torch.full_like(cos2t, 0.5)\n")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Inputs, the C engine built and traced once: (inputs dir, the C trace)."""
    root = tmp_path_factory.mktemp("roots-faults")
    inputs = root / "inputs"
    subprocess.run([sys.executable, "-m", "minibragg.inputs", "--out", str(inputs)], check=True,
                   cwd=REPO, capture_output=True)
    binary = root / "minibragg"
    subprocess.run(["gcc", "-O2", "-fno-fast-math", "-ffp-contract=off", "-fopenmp", "-o",
                    str(binary), str(REPO / "minibragg" / "minibragg.c"), "-lm"], check=True)
    out = _run([str(binary), *SPEC.args, "-dump_pixel", *PIXEL], inputs, root / "c", {})
    return inputs, parse_lines(out.splitlines(), "TRACE_C:")


def _run(argv: list[str], inputs: Path, cwd: Path, env: dict) -> str:
    cwd.mkdir(parents=True)
    for f in ("A.mat", "scaled.hkl"):
        (cwd / f).symlink_to(inputs / f)
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _py_trace(tmp: Path, inputs: Path, *faults: tuple[str, str, str]):
    pkg = tmp / "variant" / "minibragg"
    shutil.copytree(REPO / "minibragg", pkg, ignore=shutil.ignore_patterns("*.c", "__pycache__"))
    for name, old, new in faults:
        text = (pkg / name).read_text()
        assert old in text, f"{name} no longer contains {old!r}: update this fault"
        (pkg / name).write_text(text.replace(old, new))
    out = _run([sys.executable, "-m", "minibragg", *SPEC.args, "-dtype", "float64",
                "-trace_pixel", *PIXEL], inputs, tmp / "run", {"PYTHONPATH": str(pkg.parent)})
    return parse_lines(out.splitlines(), "TRACE_PY:")


def _classes(world, tmp, *faults):
    inputs, c_trace = world
    cmp = compare_traces(c_trace, _py_trace(tmp, inputs, *faults), "c", "py", SPEC.tolerance)
    report = classify(cmp, GRAPH)
    return report, {k.key: k.klass for k in report.keys}


def _assert_exactly(report, classes, injected: set[str]) -> None:
    causes = {k for k, c in classes.items() if c in ("root", "amplified")}
    assert causes == injected
    for k in report.of("carried"):
        assert set(k.causes) <= injected and k.causes, k
    beyond = {k for k, c in classes.items() if c not in ("match", "missing")}
    assert beyond - injected == {k.key for k in report.of("carried")}


@pytest.mark.parametrize("fault, key", [(PIX0, "pix0_vector_meters"), (REAL_A, "rot_a_angstroms"),
                                        (FLUENCE, "fluence_photons_per_m2"), (POLAR, "polar")],
                         ids=["pix0", "real-space-a", "fluence", "polar"])
def test_one_injected_fault_is_the_only_cause(world, tmp_path, fault, key):
    report, classes = _classes(world, tmp_path, fault)
    _assert_exactly(report, classes, {key})
    assert classes["I_pixel_final"] == "carried"
    root = next(k for k in report.keys if k.key == key)
    assert "I_pixel_final" in root.explains
    assert report.attribution is not None and not report.attribution.unexplained


def test_four_injected_faults_are_four_independent_causes(world, tmp_path):
    report, classes = _classes(world, tmp_path, PIX0, REAL_A, FLUENCE, POLAR)
    injected = {"pix0_vector_meters", "rot_a_angstroms", "fluence_photons_per_m2", "polar"}
    _assert_exactly(report, classes, injected)
    # polar's inputs differ slightly (pix0 moved the pixel): it is amplified, not a root
    assert classes["polar"] == "amplified"
    final = next(k for k in report.keys if k.key == "I_pixel_final")
    assert set(final.causes) == injected
    assert set(report.attribution.explained_by) >= {"fluence_photons_per_m2", "polar"}
    assert not report.attribution.unexplained


def test_clean_pair_has_no_cause(world, tmp_path):
    report, classes = _classes(world, tmp_path)
    assert set(classes.values()) == {"match"}
    assert all(k.min_rtol is not None and k.min_rtol <= SPEC.tolerance.rtol for k in report.keys)
