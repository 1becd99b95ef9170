"""Hostile suite files and suite bundles: every bad one is ONE line naming the file, the case (and
run) and the field; nothing is written. The loader is called directly here (the `suite` command
that wraps it is tested with the executor); a bad suite bundle goes through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bundle.model.errors import BundleError, SpecError
from bundle.suite.source import load_suite
from bundle.suite.store import load_suite_bundle, verify_suite

REPO = Path(__file__).resolve().parent.parent.parent

GOOD_TOML = """name = "s"
target = "minibragg"
[thresholds]
corr_min = 0.9999
[[cases]]
id = "geom"
args = ["-mat", "A.mat"]
[[cases.runs]]
name = "small"
args = ["-detpixels", "128"]
"""

GOOD_YAML = """cases:
  - id: geom
    base_args: "-mat A.mat"
    thresholds: {corr_min: 0.9999}
    runs:
      - name: small
        extra_args: "-detpixels 128"
"""

CASES = [
    # (file name, text, words the one line must hold)
    ("bad.toml", GOOD_TOML + "[[cases]\n", ["bad.toml", "not valid TOML"]),
    ("bad.yaml", "cases: [ {id: a\n", ["bad.yaml", "not valid YAML"]),
    ("bad.toml", GOOD_TOML.replace('args = ["-detpixels", "128"]', 'args = ["-detpixels", "128"]\nthreshold = 1'),
     ["bad.toml", "case geom run small", "unknown field threshold"]),
    ("bad.toml", GOOD_TOML.replace('id = "geom"', 'id = "geom"\ntags = ["x"]'),
     ["bad.toml", "case geom", "unknown field tags"]),
    ("bad.toml", GOOD_TOML.replace('args = ["-mat", "A.mat"]', "args = []").replace('args = ["-detpixels", "128"]', "args = []"),
     ["bad.toml", "case geom run small", "args", "no arguments"]),
    ("bad.yaml", GOOD_YAML.replace('base_args: "-mat A.mat"', 'base_args: ""').replace('"-detpixels 128"', '""'),
     ["bad.yaml", "case geom run small", "no arguments"]),
    ("bad.toml", GOOD_TOML.replace("corr_min = 0.9999", 'corr_min = "0.9999"'),
     ["bad.toml", "thresholds.corr_min", "must be a finite number"]),
    ("bad.toml", GOOD_TOML.replace("corr_min = 0.9999", "corr_min = inf"),
     ["bad.toml", "thresholds.corr_min", "finite"]),
    ("bad.yaml", GOOD_YAML.replace("corr_min: 0.9999", "corr_min: .nan"),
     ["bad.yaml", "case geom", "thresholds.corr_min", "finite"]),
    ("bad.yaml", GOOD_YAML.replace("corr_min: 0.9999", "corr_min: [1]"),
     ["bad.yaml", "case geom", "thresholds.corr_min"]),
    ("bad.yaml", GOOD_YAML.replace("{corr_min: 0.9999}", "{corr_minimum: 0.9999}"),
     ["bad.yaml", "case geom", "unknown threshold thresholds.corr_minimum"]),
    ("bad.toml", GOOD_TOML + '[[cases]]\nid = "geom"\nargs = ["-x"]\n',
     ["bad.toml", "case geom", "duplicated case id"]),
    ("bad.yaml", GOOD_YAML + "  - id: geom\n    base_args: -x\n",
     ["bad.yaml", "case geom", "duplicated case id"]),
    ("bad.toml", GOOD_TOML + '[[cases.runs]]\nname = "small"\n',
     ["bad.toml", "case geom run small", "duplicated run name"]),
    ("bad.toml", GOOD_TOML.replace('name = "small"', 'name = "small"\npixel = [1.5, 2]'),
     ["bad.toml", "case geom run small", "pixel", "non-negative integers"]),
    ("bad.toml", GOOD_TOML.replace('id = "geom"', 'id = "geom"\npixel = [1, 2, 3]'),
     ["bad.toml", "case geom", "pixel"]),
    ("bad.toml", GOOD_TOML.replace('target = "minibragg"\n', ""), ["bad.toml", "target"]),
    ("bad.yaml", "- just\n- a list\n", ["bad.yaml", "cases"]),
    ("bad.yaml", "cases: []\n", ["bad.yaml", "cases must be a non-empty list"]),
    ("bad.yaml", GOOD_YAML.replace('"-detpixels 128"', "'-detpixels \"128'"),
     ["bad.yaml", "case geom run small", "extra_args", "shell-quoted"]),
]


@pytest.mark.parametrize("name, text, words", CASES)
def test_bad_suite_file_is_one_line_naming_file_case_and_field(tmp_path, name, text, words):
    path = tmp_path / name
    path.write_text(text)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(SpecError) as info:
        load_suite(path)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    assert message.startswith(str(path)), message
    for w in words:
        assert w in message, message
    assert sorted(tmp_path.iterdir()) == before  # nothing written


def test_missing_not_utf8_and_wrong_extension(tmp_path):
    with pytest.raises(SpecError, match="suite file not found"):
        load_suite(tmp_path / "absent.toml")
    (tmp_path / "latin.yaml").write_bytes(b"cases: [{id: caf\xe9}]\n")
    with pytest.raises(SpecError, match="latin.yaml: suite file is not UTF-8"):
        load_suite(tmp_path / "latin.yaml")
    (tmp_path / "s.txt").write_text(GOOD_TOML)
    with pytest.raises(SpecError, match="s.txt: a suite file ends in"):
        load_suite(tmp_path / "s.txt")


def test_yaml_tags_that_would_build_objects_are_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("cases: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(SpecError, match="evil.yaml: not valid YAML"):
        load_suite(path)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def _suite_dir(tmp_path: Path, data) -> Path:
    path = tmp_path / "bundles" / "20260101T000000Z-suite-x-00000000"
    path.mkdir(parents=True)
    (path / "suite.json").write_text(data if isinstance(data, str) else json.dumps(data))
    return path


SUITE_JSON = {"format_version": 1, "kind": "suite", "suite_id": "x", "name": "x", "files": [],
              "summary": {"runs": 1, "passed": 1, "failed": 0, "errors": 0, "reused": 0},
              "members": [{"id": "a/b", "case": "a", "run": "b", "status": "pass",
                           "bundle": "m", "manifest_sha256": "0" * 64}]}


@pytest.mark.parametrize("data, words", [
    ("{not json", "not readable JSON"),
    ({**SUITE_JSON, "kind": "capture"}, "not a suite bundle's suite.json"),
    ({**SUITE_JSON, "format_version": 99}, "format_version 99"),
    ({**SUITE_JSON, "members": [{**SUITE_JSON["members"][0], "bundle": "../../etc"}]},
     "is not a bundle id beside the suite"),
    ({**SUITE_JSON, "members": [{"id": "a/b"}]}, "members[0] lacks"),
])
def test_bad_suite_json_is_one_line_and_exit_2(tmp_path, data, words):
    path = _suite_dir(tmp_path, data)
    with pytest.raises(BundleError, match=words.replace("[", r"\[")):
        load_suite_bundle(path)
    proc = subprocess.run([sys.executable, "-m", "cli", "verify", str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and words in proc.stderr


def test_a_listed_file_escaping_the_suite_bundle_is_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    data = {**SUITE_JSON, "members": [],
            "files": [{"path": "../../secret.txt", "size": 1, "sha256": "0" * 64}]}
    result = verify_suite(_suite_dir(tmp_path, data))
    assert not result.intact and result.files == (("../../secret.txt", "CHANGED"),)


@pytest.mark.parametrize("name, text, words", [CASES[0], CASES[2], CASES[4], CASES[6], CASES[11]])
def test_the_suite_command_refuses_a_bad_file_in_one_line_exit_2(tmp_path, name, text, words):
    """The same refusals through `nb-evidence suite`: one line, exit 2, before any cluster
    starts or anything is written."""
    path = tmp_path / name
    path.write_text(text)
    bundles = tmp_path / "bundles"
    proc = subprocess.run([sys.executable, "-m", "cli", "suite", str(path), "--bundles",
                           str(bundles), "--workers", "1"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert not bundles.exists() or not any(bundles.iterdir())
