"""Suite files: our TOML format (validated like a spec: unknown fields refused) and the upstream
YAML matrix (read as it is: unknown fields kept), into bundle.suite.model.Suite."""

from __future__ import annotations

import hashlib
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from bundle.model.errors import SpecError
from bundle.suite.source import load_suite, parse_suite_toml, parse_suite_yaml, unknown_fields

REPO = Path(__file__).resolve().parent.parent
SHIPPED_TOML = REPO / "manifests" / "minibragg-parity-suite.toml"
SHIPPED_YAML = REPO / "tests" / "fixtures" / "parity_cases.yaml"

TOML = """
name = "t"
target = "minibragg"
description = "a suite"
pixel = [3, 4]
[thresholds]
corr_min = 0.999
sum_ratio_max = 1.01
[inputs]
files = ["A.mat"]
prepare = ["{python}", "-m", "minibragg.inputs", "--out", "{inputs}"]
[tolerance]
rtol = 1e-6
[engines.py]
dtype = "float64"

[[cases]]
id = "geometry"
description = "two runs"
args = ["-mat", "A.mat"]
thresholds = { corr_min = 0.9999 }
[[cases.runs]]
name = "small"
args = ["-detpixels", "128"]
[[cases.runs]]
name = "tight"
args = ["-detpixels", "256"]
pixel = [7, 8]
thresholds = { sum_ratio_min = 0.99, corr_min = 0.5 }

[[cases]]
id = "lonely"
args = ["-N", "5"]
pixel = [1, 2]
"""


def toml_suite(text: str = TOML):
    return parse_suite_toml(tomllib.loads(text), "s.toml", "0" * 64)


def test_toml_runs_args_thresholds_and_pixels_merge():
    suite = toml_suite()
    assert (suite.name, suite.target, suite.format) == ("t", "minibragg", "toml")
    small, tight, lonely = suite.runs
    assert small.id == "geometry/small"
    assert small.args == ("-mat", "A.mat", "-detpixels", "128")  # case args then run args
    # defaults <- case <- run
    assert dict(small.thresholds.limits) == {"corr_min": 0.9999, "sum_ratio_max": 1.01}
    assert dict(tight.thresholds.limits) == {"corr_min": 0.5, "sum_ratio_max": 1.01, "sum_ratio_min": 0.99}
    assert small.pixel == (3, 4) and tight.pixel == (7, 8)  # suite default, run's own
    # a case with no runs is one run named "default" with the case's args and pixel
    assert (lonely.name, lonely.args, lonely.pixel) == ("default", ("-N", "5"), (1, 2))
    assert dict(lonely.thresholds.limits) == {"corr_min": 0.999, "sum_ratio_max": 1.01}
    assert suite.spec_defaults["inputs"]["files"] == ["A.mat"]
    assert suite.spec_defaults["engines"] == {"py": {"dtype": "float64"}}
    assert suite.spec_defaults["tolerance"] == {"rtol": 1e-6}
    assert unknown_fields(suite) == {}


@pytest.mark.parametrize("bad, words", [
    (TOML.replace('description = "two runs"', 'descripton = "two runs"'),
     ["s.toml", "case #1", "unknown field descripton"]),
    (TOML.replace('name = "tight"', 'name = "tight"\nextra_args = "x"'),
     ["case geometry run #2", "unknown field extra_args"]),
    (TOML.replace("[tolerance]", "[tolerence]"), ["s.toml", "unknown field tolerence"]),
    (TOML.replace('dtype = "float64"', 'dtype = "float16"'), ["engines.py.dtype"]),
    (TOML.replace("corr_min = 0.999\n", 'corr_min = "high"\n'), ["thresholds.corr_min", "number"]),
    (TOML.replace("corr_min = 0.999\n", "corr_mn = 0.999\n"), ["unknown threshold thresholds.corr_mn"]),
    (TOML.replace("corr_min = 0.999\n", "corr_min = nan\n"), ["finite"]),
    (TOML.replace('id = "lonely"', 'id = "geometry"'), ["case geometry", "duplicated case id"]),
    (TOML.replace('name = "tight"', 'name = "small"'), ["case geometry run small", "duplicated run name"]),
    (TOML.replace("pixel = [7, 8]", "pixel = [7, -8]"), ["case geometry run tight", "pixel"]),
    (TOML.replace('args = ["-N", "5"]', "args = []"), ["case lonely run default", "args", "no arguments"]),
])
def test_toml_refuses_with_one_line_naming_file_case_and_field(bad, words):
    with pytest.raises(SpecError) as info:
        toml_suite(bad)
    message = str(info.value)
    assert "\n" not in message
    for w in words:
        assert w in message, message


YAML = """
version: 3
cases:
  - id: det
    description: detector
    base_args: "-mat A.mat -hkl 'scaled file.hkl'"
    thresholds: {corr_min: 0.9999, sum_ratio_min: 0.99, sum_ratio_max: 1.01, max_abs_max: 5}
    tags: [slow]
    runs:
      - name: small
        extra_args: "-detpixels 128"
        notes: flaky upstream
      - name: tight
        extra_args: "-detpixels 256"
        thresholds: {corr_min: 0.99999}
  - id: plain
    base_args: "-N 5"
"""


def yaml_suite(text: str = YAML, target=None):
    return parse_suite_yaml(yaml.safe_load(text), "dir/parity_cases.yaml", "1" * 64, target)


def test_yaml_is_read_as_it_is_with_shlex_and_unknown_fields_kept():
    suite = yaml_suite()
    assert (suite.name, suite.target, suite.format) == ("parity_cases", "nanobragg", "yaml")
    small, tight, plain = suite.runs
    assert small.args == ("-mat", "A.mat", "-hkl", "scaled file.hkl", "-detpixels", "128")
    assert dict(small.thresholds.limits) == {"corr_min": 0.9999, "max_abs_max": 5.0,
                                            "sum_ratio_max": 1.01, "sum_ratio_min": 0.99}
    assert dict(tight.thresholds.limits)["corr_min"] == 0.99999
    assert (plain.name, plain.args, plain.thresholds.limits) == ("default", ("-N", "5"), ())
    assert unknown_fields(suite) == {"": {"version": 3}, "det": {"tags": ["slow"]},
                                     "det/small": {"notes": "flaky upstream"}}
    assert yaml_suite(target="minibragg").target == "minibragg"


@pytest.mark.parametrize("bad, words", [
    ("cases: [{id: a, base_args: '-x', thresholds: {corr_min: high}}]", ["case a", "thresholds.corr_min"]),
    ("cases: [{id: a, base_args: '-x', thresholds: {corr: 0.9}}]", ["case a", "unknown threshold thresholds.corr"]),
    ("cases: [{id: a, base_args: '-x'}, {id: a, base_args: '-y'}]", ["case a", "duplicated case id"]),
    ("cases: [{id: a, runs: [{name: r, extra_args: ''}]}]", ["case a run r", "no arguments"]),
    ("cases: [{id: a, base_args: '-x \"open'}]", ["case a", "base_args", "shell-quoted"]),
    ("cases: [{id: a, base_args: '-x', runs: [{name: r}, {name: r}]}]", ["case a run r", "duplicated run name"]),
    ("cases: [{base_args: '-x'}]", ["case #1", "id"]),
    ("[1, 2]", ["cases"]),
])
def test_yaml_refuses_what_cannot_be_run_or_judged(bad, words):
    with pytest.raises(SpecError) as info:
        yaml_suite(bad)
    message = str(info.value)
    assert "\n" not in message and message.startswith("dir/parity_cases.yaml")
    for w in words:
        assert w in message, message


def test_load_suite_picks_the_format_by_extension_and_records_the_digest(tmp_path):
    for name, text in (("s.toml", TOML), ("s.yml", YAML)):
        path = tmp_path / name
        path.write_text(text)
        suite = load_suite(path)
        assert suite.source == str(path)
        assert suite.source_sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert load_suite(tmp_path / "s.toml", target="nanobragg").target == "nanobragg"
    (tmp_path / "s.json").write_text("{}")
    with pytest.raises(SpecError, match="s.json: a suite file ends in .toml"):
        load_suite(tmp_path / "s.json")


def test_shipped_minibragg_suite_parses_within_its_promise():
    suite = load_suite(SHIPPED_TOML)
    assert suite.target == "minibragg" and 8 <= len(suite.runs) <= 12
    flags = {a for r in suite.runs for a in r.args if a.startswith("-")}
    assert {"-detpixels", "-pixel", "-Xbeam", "-Ybeam", "-Na", "-N", "-phisteps"} <= flags
    for run in suite.runs:
        assert dict(run.thresholds.limits)["corr_min"] == 0.9999
        assert "-floatfile" not in run.args  # the suite adds the image flag
    assert suite.spec_defaults["inputs"]["files"] == ["A.mat", "scaled.hkl"]


def test_shipped_yaml_fixture_parses_with_its_unknown_fields():
    suite = load_suite(SHIPPED_YAML)
    assert suite.target == "nanobragg" and 2 <= len(suite.cases) <= 3 and len(suite.runs) == 5
    unknown = unknown_fields(suite)
    assert "notes" in unknown[""] and unknown["small-detector"] == {"tags": ["geometry", "fast"]}
    raw = yaml.safe_load(SHIPPED_YAML.read_text())
    first = raw["cases"][0]
    assert suite.runs[0].args == tuple(shlex.split(first["base_args"]) + shlex.split(first["runs"][0]["extra_args"]))
