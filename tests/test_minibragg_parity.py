"""C engine versus PyTorch engine of minibragg, given identical argument lists.

The C binary comes from the session fixture `minibragg_c` (conftest: real gcc, the nanoBragg
users' flags). The PyTorch engine runs in-process through its CLI entry point (`main`), which
is what `python -m minibragg` calls. Cases:
  - the supervisor command (nanobragg-facts §2) with the inputs of `minibragg.inputs`, on an
    81 x 81 -roi around the traced pixel (1039, 685): the ROI keeps the geometry identical;
  - a -cell/-misset crystal with -oversample 2 and -polar 1 on a small BEAM-pivot detector,
    whose reflections partly fall outside the HKL list's box (default_F, and the engine's
    range-checked lookup, since the cell is too big for a padded grid).
"""

from __future__ import annotations

import contextlib
import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from minibragg.__main__ import main as py_main
from minibragg.inputs import write_inputs
from minibragg.supervisor import FPIXELS, SPIXELS, TRACE_PIXEL, supervisor_args
from minibragg.trace import INT_KEYS, TRACE_KEYS

SLOW, FAST = TRACE_PIXEL
ROI = (FAST - 40, FAST + 40, SLOW - 40, SLOW + 40)  # xmin xmax ymin ymax

F64_KEY_RTOL = 1e-10
# Every key, no exceptions. float32 mode reaches it because it takes h, k, l and their
# reduction for the lattice factor in float64 (engine docstring, "Precision"): with h in
# float32, F_latt was 1.3e-5 off and the intensities 1e-4 on the traced pixel.
F32_KEY_RTOL = 1e-5
# Every pixel of the supervisor ROI, too (measured: 4.7e-7; with h in float32: 1.3e-2).
F32_PIXEL_RTOL = 1e-5


@dataclass(frozen=True)
class Run:
    rc: int
    stdout: str
    stderr: str
    image: np.ndarray | None  # (spixels, fpixels) float32 from -floatfile

    def trace(self, prefix: str) -> list[tuple[str, list[str]]]:
        rows = []
        for line in self.stdout.splitlines():
            if line.startswith(prefix + " "):
                parts = line.split()
                rows.append((parts[1], parts[2:]))
        return rows

    def lines(self, start: str) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith(start)]


def _image(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    return np.fromfile(path, dtype="<f4").reshape(shape) if path.exists() else None


def run_c(binary: Path, args: list[str], workdir: Path, shape: tuple[int, int]) -> Run:
    """In its own directory: the C engine writes Fdump.bin where it runs."""
    workdir.mkdir(parents=True, exist_ok=True)
    image = workdir / "c.bin"
    proc = subprocess.run([str(binary), *args, "-floatfile", str(image)], cwd=workdir,
                          capture_output=True, text=True, env={"OMP_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"})
    return Run(proc.returncode, proc.stdout, proc.stderr, _image(image, shape))


def run_py(args: list[str], workdir: Path, shape: tuple[int, int], dtype: str) -> Run:
    workdir.mkdir(parents=True, exist_ok=True)
    image = workdir / f"py-{dtype}.bin"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = py_main([*args, "-floatfile", str(image), "-dtype", dtype, "-device", "cpu"])
    return Run(rc, out.getvalue(), err.getvalue(), _image(image, shape))


def key_mismatches(c: Run, py: Run, rtol: float) -> list[str]:
    """Every key/component whose relative difference |a-b|/max(|a|,|b|) exceeds rtol
    (integers: exact). Key lists must match exactly, order included."""
    c_rows, py_rows = c.trace("TRACE_C:"), py.trace("TRACE_PY:")
    assert [k for k, _ in c_rows] == list(TRACE_KEYS)
    assert [k for k, _ in py_rows] == list(TRACE_KEYS)
    bad = []
    for (key, a_vals), (_, b_vals) in zip(c_rows, py_rows):
        assert len(a_vals) == len(b_vals), key
        for i, (a_txt, b_txt) in enumerate(zip(a_vals, b_vals)):
            if key in INT_KEYS:
                if int(a_txt) != int(b_txt):
                    bad.append(f"{key}[{i}] C={a_txt} PY={b_txt} (integers differ)")
                continue
            a, b = float(a_txt), float(b_txt)
            diff = abs(a - b) / max(abs(a), abs(b), 1e-300)
            if diff > rtol:
                bad.append(f"{key}[{i}] C={a_txt} PY={b_txt} rel={diff:.3e} > {rtol:g}")
    return bad


def image_metrics(c: np.ndarray, py: np.ndarray, roi: tuple[int, int, int, int]) -> tuple[float, float]:
    """(Pearson correlation, sum ratio py/c) over the ROI's pixels."""
    xmin, xmax, ymin, ymax = roi
    a = c[ymin:ymax + 1, xmin:xmax + 1].astype(np.float64).ravel()
    b = py[ymin:ymax + 1, xmin:xmax + 1].astype(np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1]), float(b.sum() / a.sum())


def worst_pixel_rel(c: np.ndarray, py: np.ndarray, roi: tuple[int, int, int, int]) -> float:
    """The largest |a-b|/max(|a|,|b|) over the ROI's pixels (0 where both are 0)."""
    xmin, xmax, ymin, ymax = roi
    a = c[ymin:ymax + 1, xmin:xmax + 1].astype(np.float64)
    b = py[ymin:ymax + 1, xmin:xmax + 1].astype(np.float64)
    scale = np.maximum(np.abs(a), np.abs(b))
    return float(np.max(np.abs(a - b) / np.where(scale > 0, scale, 1.0)))


def outside_roi_is_zero(image: np.ndarray, roi: tuple[int, int, int, int]) -> bool:
    xmin, xmax, ymin, ymax = roi
    mask = np.ones(image.shape, dtype=bool)
    mask[ymin:ymax + 1, xmin:xmax + 1] = False
    return not image[mask].any()


# ------------------------------------------------------------------------------- supervisor


@pytest.fixture(scope="module")
def supervisor_inputs(tmp_path_factory) -> tuple[str, str]:
    """A.mat and scaled.hkl from `python -m minibragg.inputs` (the same function)."""
    return write_inputs(str(tmp_path_factory.mktemp("minibragg-inputs")))


@pytest.fixture(scope="module")
def supervisor(minibragg_c, tmp_path_factory, supervisor_inputs):
    """C, PyTorch float64 and float32 runs of the supervisor command on the ROI."""
    root = tmp_path_factory.mktemp("minibragg-parity")
    mat, hkl = supervisor_inputs
    args = supervisor_args(mat, hkl, "unused.bin")
    at = args.index("-floatfile")
    del args[at:at + 2]  # each runner names its own image
    args += ["-roi", *map(str, ROI), "-trace_pixel", str(SLOW), str(FAST)]
    shape = (SPIXELS, FPIXELS)
    return {
        "c": run_c(minibragg_c, args, root / "c", shape),
        "float64": run_py(args, root / "py", shape, "float64"),
        "float32": run_py(args, root / "py", shape, "float32"),
    }


def test_supervisor_runs_succeed(supervisor):
    for name, run in supervisor.items():
        assert run.rc == 0, (name, run.stderr)
        assert run.image is not None and outside_roi_is_zero(run.image, ROI), name
    assert supervisor["c"].lines("WARNING") == supervisor["float64"].lines("WARNING") == \
        ["WARNING: auto-generating odet_vector"]


def test_supervisor_float64_trace_keys_match(supervisor):
    assert key_mismatches(supervisor["c"], supervisor["float64"], F64_KEY_RTOL) == []


def test_supervisor_float64_image_matches(supervisor):
    pearson, ratio = image_metrics(supervisor["c"].image, supervisor["float64"].image, ROI)
    assert pearson >= 0.9999999
    assert abs(ratio - 1.0) <= 1e-7


def test_supervisor_float64_statistics_match(supervisor):
    c, py = supervisor["c"], supervisor["float64"]
    assert c.lines("max_I = ") == py.lines("max_I = ")
    (c_stats,), (py_stats,) = c.lines("mean= "), py.lines("mean= ")
    c_vals = [float(v) for v in c_stats.split()[1::2]]
    py_vals = [float(v) for v in py_stats.split()[1::2]]
    assert py_vals == pytest.approx(c_vals, rel=1e-8)


def test_supervisor_float32_trace_keys_close(supervisor):
    assert key_mismatches(supervisor["c"], supervisor["float32"], F32_KEY_RTOL) == []


def test_supervisor_float32_image_close(supervisor):
    pearson, ratio = image_metrics(supervisor["c"].image, supervisor["float32"].image, ROI)
    assert pearson >= 0.99999
    assert abs(ratio - 1.0) <= 1e-5
    assert worst_pixel_rel(supervisor["c"].image, supervisor["float32"].image, ROI) <= F32_PIXEL_RTOL


# ------------------------------------------------------------------------------- cell case

CELL_ROI = (0, 95, 0, 79)
CELL_ARGS = [
    "-cell", "300", "320", "340", "85", "95", "100", "-misset", "10", "-5", "20",
    "-default_F", "50", "-N", "5", "-Nc", "4", "-lambda", "1.2", "-distance", "120",
    "-pixel", "0.5", "-detpixels_x", "96", "-detpixels_y", "80", "-Xbeam", "21.3", "-Ybeam", "25.1",
    "-oversample", "2", "-polar", "1", "-phi", "2", "-osc", "0.5", "-phisteps", "3",
    "-fluence", "1e26", "-trace_pixel", "30", "70",
]


@pytest.fixture(scope="module")
def cell_case(minibragg_c, tmp_path_factory, supervisor_inputs):
    root = tmp_path_factory.mktemp("minibragg-parity-cell")
    hkl = supervisor_inputs[1]
    args = [*CELL_ARGS, "-hkl", hkl]
    shape = (80, 96)
    return {
        "c": run_c(minibragg_c, args, root / "c", shape),
        "float64": run_py(args, root / "py", shape, "float64"),
        "float32": run_py(args, root / "py", shape, "float32"),
    }


def test_cell_case_float64_trace_keys_match(cell_case):
    assert cell_case["c"].rc == 0 and cell_case["float64"].rc == 0
    assert key_mismatches(cell_case["c"], cell_case["float64"], F64_KEY_RTOL) == []
    py = dict(cell_case["float64"].trace("TRACE_PY:"))
    assert py["steps"] == ["12"] and float(py["polar"][0]) != pytest.approx(
        0.5 * (1 + float(py["cos_2theta"][0]) ** 2), rel=1e-12)  # K = 1 really moved polar


def test_cell_case_float64_image_matches(cell_case):
    image = cell_case["c"].image
    assert len(np.unique(image)) > 1000  # a structured image, not a constant
    pearson, ratio = image_metrics(image, cell_case["float64"].image, CELL_ROI)
    assert pearson >= 0.9999999
    assert abs(ratio - 1.0) <= 1e-7


def test_cell_case_float32_trace_keys_close(cell_case):
    assert cell_case["float32"].rc == 0
    assert key_mismatches(cell_case["c"], cell_case["float32"], F32_KEY_RTOL) == []


def test_cell_case_float32_image_close(cell_case):
    assert cell_case["float32"].rc == 0
    pearson, ratio = image_metrics(cell_case["c"].image, cell_case["float32"].image, CELL_ROI)
    assert pearson >= 0.99999
    assert abs(ratio - 1.0) <= 1e-5
    assert worst_pixel_rel(cell_case["c"].image, cell_case["float32"].image, CELL_ROI) <= F32_PIXEL_RTOL


def test_trace_pixel_outside_roi_alike(minibragg_c, tmp_path, supervisor_inputs):
    """Traced but not computed for the image: both warn, both trace it, both store 0."""
    args = [*CELL_ARGS, "-hkl", supervisor_inputs[1], "-roi", "0", "20", "0", "20", "-oversample", "1"]
    c = run_c(minibragg_c, args, tmp_path / "c", (80, 96))
    py = run_py(args, tmp_path / "py", (80, 96), "float64")
    assert c.rc == 0 and py.rc == 0
    assert c.lines("WARNING") == py.lines("WARNING") == [
        "WARNING: trace pixel (slow 30, fast 70) is outside the ROI; its image value is 0"]
    assert key_mismatches(c, py, F64_KEY_RTOL) == []
    assert dict(py.trace("TRACE_PY:"))["floatimage_accumulated"] == ["0"]


GEOMETRY_VARIANTS = {
    "close_distance, unit odet, tilted beam": ["-close_distance", "150", "-beam_vector", "1", "0.01", "0",
                                               "-odet_vector", "1", "0", "0"],
    "beam pivot, skewed detector, auto odet": ["-distance", "80", "-fdet_vector", "0", "0.1", "1",
                                               "-sdet_vector", "0", "-1", "0.1", "-odet_vector", "1", "0", "0.001"],
    "twotheta 0 after distance, nopolar, y spindle": ["-distance", "90", "-twotheta", "0", "-nopolar",
                                                      "-spindle_axis", "0", "1", "0", "-phisteps", "4", "-osc", "2"],
}


@pytest.mark.parametrize("variant", list(GEOMETRY_VARIANTS))
def test_geometry_variants_match(minibragg_c, tmp_path, supervisor_inputs, variant):
    mat, hkl = supervisor_inputs
    args = ["-mat", mat, "-hkl", hkl, "-default_F", "20", "-N", "10", "-lambda", "1.1", "-pixel", "0.4",
            "-detpixels_x", "48", "-detpixels_y", "40", "-Xbeam", "9.7", "-Ybeam", "8.3", "-phi", "1",
            "-trace_pixel", "31", "17", *GEOMETRY_VARIANTS[variant]]
    c = run_c(minibragg_c, args, tmp_path / "c", (40, 48))
    py = run_py(args, tmp_path / "py", (40, 48), "float64")
    assert c.rc == 0 and py.rc == 0, (c.stderr, py.stderr)
    assert c.lines("WARNING") == py.lines("WARNING")
    assert key_mismatches(c, py, F64_KEY_RTOL) == []
    pearson, ratio = image_metrics(c.image, py.image, (0, 47, 0, 39))
    assert pearson >= 0.9999999 and abs(ratio - 1.0) <= 1e-7


# ------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("extra", [["-bogus"], ["-pixel", "0"], ["-lambda", "x"], ["-twotheta", "3"],
                                   ["-trace_pixel", "5", "99"], ["-mat", "/nonexistent/A.mat"]])
def test_both_engines_refuse_alike(minibragg_c, tmp_path, extra):
    args = ["-cell", "50", "50", "50", "90", "90", "90", "-detpixels", "16", *extra]
    c = run_c(minibragg_c, args, tmp_path / "c", (16, 16))
    py = run_py(args, tmp_path / "py", (16, 16), "float64")
    for run in (c, py):
        assert run.rc == 2 and run.image is None
        assert run.stderr.startswith("minibragg: error: ") and run.stderr.count("\n") == 1
