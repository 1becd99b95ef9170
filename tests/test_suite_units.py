"""The suite's pure parts: judging thresholds, the member spec, run keys, the drill pixel."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bundle.capture.target import load_target
from bundle.suite import drill
from bundle.suite.judge import failure_line, judge, run_metrics
from bundle.suite.key import first_changed, run_key
from bundle.suite.members import member_spec
from bundle.suite.model import Case, Run, Suite, Thresholds

REPO = Path(__file__).resolve().parent.parent
LIMITS = Thresholds((("corr_min", 0.9999), ("max_abs_max", 0.5), ("sum_ratio_max", 1.001),
                     ("sum_ratio_min", 0.999)))


def suite_of(*runs: Run, **defaults) -> Suite:
    return Suite(name="s", target="minibragg", source="s.toml", source_sha256="0" * 64,
                 format="toml", cases=(Case("c", "", runs),), spec_defaults=defaults)


def test_run_metrics_maps_the_manifest_names_and_drops_non_numbers():
    m = run_metrics({"pearson": 0.99, "sum_ratio": "inf", "max_abs_diff": 0.25, "rmse": None,
                     "mean_peak_distance": 0.1, "peaks_matched": 3})
    assert m == {"corr": 0.99, "sum_ratio": None, "max_abs": 0.25, "rmse": None,
                 "mean_peak_distance": 0.1, "peaks_matched": 3.0}
    assert run_metrics(None)["corr"] is None


def test_judge_names_failed_thresholds_and_a_missing_metric_fails():
    good = {"corr": 0.99999, "sum_ratio": 1.0, "max_abs": 0.5}
    assert judge(good, LIMITS) == ()
    assert judge({**good, "corr": 0.998}, LIMITS) == ("corr_min",)
    assert judge({**good, "sum_ratio": 1.01, "max_abs": 0.51}, LIMITS) == ("max_abs_max", "sum_ratio_max")
    assert judge({**good, "sum_ratio": None}, LIMITS) == ("sum_ratio_max", "sum_ratio_min")
    assert "missing" in failure_line("sum_ratio_min", {"sum_ratio": None}, LIMITS)
    assert failure_line("corr_min", {"corr": 0.998}, LIMITS) == "corr_min: corr 0.998 < 0.9999"


def test_member_spec_adds_the_image_flag_threads_and_defaults():
    run = Run("c", "r 1", ("-detpixels_x", "8"), pixel=(1, 2))
    suite = suite_of(run, inputs={"files": ["A.mat"]}, engines={"py": {"dtype": "float64"}})
    spec = member_spec(suite, run, threads=3)
    assert spec.args == ("-detpixels_x", "8", "-floatfile", "image.bin")
    assert spec.pixel is None and spec.name == "s-c-r-1" and spec.source == "s.toml#c/r 1"
    assert spec.engines == {"py": {"dtype": "float64", "threads": 3}, "c": {"threads": 3}}
    assert spec.inputs.files == ("A.mat",)
    own = Run("c", "r", ("-floatfile", "mine.bin"))
    assert member_spec(suite_of(own), own, pixel=(4, 5)).args == ("-floatfile", "mine.bin")
    assert member_spec(suite_of(own), own, pixel=(4, 5)).pixel == (4, 5)


def test_run_key_fields_and_the_first_changed(tmp_path):
    (tmp_path / "minibragg").mkdir()
    (tmp_path / "minibragg" / "minibragg.c").write_text("int main(){}\n")
    (tmp_path / "minibragg" / "__main__.py").write_text("")
    (tmp_path / "minibragg" / "engine.py").write_text("x = 1\n")
    (tmp_path / "A.mat").write_text("1\n")
    run = Run("c", "r", ("-mat", "A.mat"))
    spec = member_spec(suite_of(run, inputs={"files": ["A.mat", "B.mat"]}), run)
    profile = load_target("minibragg")
    key, fields = run_key(spec, profile, tmp_path, environ={})
    assert list(fields)[:4] == ["engine c", "engine py", "argv", "inputs"]
    assert run_key(spec, profile, tmp_path, environ={}) == (key, fields)
    (tmp_path / "B.mat").write_text("not named by the args\n")
    assert run_key(spec, profile, tmp_path, environ={})[0] == key
    (tmp_path / "minibragg" / "engine.py").write_text("x = 2\n")  # a module the engine imports
    key2, fields2 = run_key(spec, profile, tmp_path, environ={})
    assert key2 != key and first_changed(fields, fields2) == "engine py"
    _k, fields3 = run_key(spec, profile, tmp_path, environ={"OMP_NUM_THREADS": "4"})
    assert first_changed(fields2, fields3) == "env"
    assert first_changed(fields, fields) is None


def test_drill_pixel_is_the_largest_difference_among_bright_pixels():
    c = np.zeros((6, 5), dtype=np.float32)
    py = c.copy()
    c[1, 1], py[1, 1] = 1000.0, 990.0  # bright: |diff| 10
    c[4, 3], py[4, 3] = 1e-4, 50.0  # py side bright: |diff| ~50, the largest
    py[0, 0] = 0.5  # |diff| 0.5 and only py >= 1e-3 of py's max: bright, smaller
    assert drill.choose_pixel("failing", None, c, py) == ((4, 3), drill.LARGEST)
    assert drill.choose_pixel("failing", (2, 2), c, py) == ((2, 2), drill.OWN)
    assert drill.choose_pixel("all", None, c, py) == ((1, 1), drill.BRIGHTEST)
    assert drill.choose_pixel("failing", None, None, py)[0] is None
    py[5, 4] = math.nan
    assert drill.choose_pixel("failing", None, c, py)[0] == (5, 4)  # nan is the worst difference
