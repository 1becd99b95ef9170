"""The built-in `nanobragg` target against a fixture checkout with exactly a nanoBragg repo's
layout: `golden_suite_generator/nanoBragg.c` and `src/nanobrag_torch/` are copies of minibragg's
C file and package, so the real build (gcc), the real `python -m nanobrag_torch` run and the
repo-root input paths are all exercised. Variants of the PyTorch copy carry the bugs users hit."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "manifests" / "minibragg-roi.toml"


def _checkout(root: Path, patch=None) -> Path:
    repo = root / "nanoBragg"
    (repo / "golden_suite_generator").mkdir(parents=True)
    shutil.copyfile(REPO / "minibragg" / "minibragg.c", repo / "golden_suite_generator" / "nanoBragg.c")
    shutil.copyfile(REPO / "minibragg" / "minibragg.c", repo / "nanoBragg.c")
    pkg = repo / "src" / "nanobrag_torch"
    shutil.copytree(REPO / "minibragg", pkg, ignore=shutil.ignore_patterns("*.c", "__pycache__"))
    if patch:
        patch(pkg)
    subprocess.run([sys.executable, "-m", "minibragg.inputs", "--out", str(repo)], check=True,
                   cwd=REPO, capture_output=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", "commit",
                    "-qm", "fixture"], check=True)
    (repo / "notes-untracked.md").write_text("work in progress\n")
    return repo


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} no longer contains {old!r}: update this fixture"
    path.write_text(text.replace(old, new))


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.relative_to(root).parts}


def _capture(repo: Path, bundles: Path, *extra: str, env=None) -> tuple[int, dict, str]:
    proc = subprocess.run([sys.executable, "-m", "cli", "capture", str(SPEC), "--target", "nanobragg",
                           "--repo", str(repo), "--bundles", str(bundles), "--json", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    out = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, out, proc.stderr


def test_clean_checkout_is_parity_and_untouched(tmp_path):
    repo = _checkout(tmp_path)
    before = _tree(repo)
    code, out, err = _capture(repo, tmp_path / "b")
    assert code == 0, err
    assert out["verdict"] == "parity" and out["keys_compared"] == 40
    assert out["metrics"]["correlation_pass"] is True and out["metrics"]["peak_distance_pass"] is True
    assert _tree(repo) == before  # untracked file included; no Fdump.bin, no __pycache__
    manifest = json.loads((Path(out["bundle"]) / "manifest.json").read_text())
    assert [c["step"] for c in manifest["commands"]] == ["build-c", "run-c", "run-py"]
    build = manifest["commands"][0]
    assert "-DTRACING=1" in build["argv"] and build["argv"][-2].endswith("golden_suite_generator/nanoBragg.c")
    run_py = manifest["commands"][2]
    assert run_py["argv"][1:3] == ["-m", "nanobrag_torch"]
    assert run_py["env"]["KMP_DUPLICATE_LIB_OK"] == "TRUE"
    assert run_py["env"]["PYTHONPATH"] == f"{repo}/src"
    assert "-dump_pixel" in manifest["arguments"]["engines"]["c"]
    assert "-trace_pixel" in manifest["arguments"]["engines"]["py"]
    inputs = {i["path"]: i for i in manifest["inputs"]}
    assert inputs["A.mat"]["root"] == "repo" and inputs["A.mat"]["origin"] == "repo"
    assert inputs["A.mat"]["sha256"] == hashlib.sha256((repo / "A.mat").read_bytes()).hexdigest()
    assert manifest["spec"]["engines"]["py"] == {"dtype": "float64", "device": "cpu"}


def test_pytorch_ignoring_flux_names_fluence_in_the_chain(tmp_path):
    repo = _checkout(tmp_path, lambda pkg: _replace(pkg / "config.py", "if config.flux != 0.0:\n",
                                                    "if False:  # bug: -flux ignored\n"))
    code, out, err = _capture(repo, tmp_path / "b")
    assert code == 1, err
    chain = out["first_chain_divergence"]
    assert chain["key"] == "fluence_photons_per_m2"
    assert chain["ratio"] == pytest.approx(1.25932015286227e29 / 1e24)
    assert out["chain"]["consistency"]["py"]["consistent"] is True
    report = (Path(out["bundle"]) / "report.md").read_text()
    assert "fluence_photons_per_m2" in report.split("## All keys")[0]


def test_pytorch_printing_a_factor_it_did_not_use_is_not_self_consistent(tmp_path):
    repo = _checkout(tmp_path, lambda pkg: _replace(
        pkg / "engine.py", '"fluence_photons_per_m2": const(scene.fluence)',
        '"fluence_photons_per_m2": const(scene.fluence * 2.0)'))
    code, out, _err = _capture(repo, tmp_path / "b")
    assert code == 1
    py = out["chain"]["consistency"]["py"]
    assert py["consistent"] is False and py["ratio"] == pytest.approx(0.5)
    assert out["chain"]["consistency"]["c"]["consistent"] is True
    assert out["first_chain_divergence"]["key"] == "fluence_photons_per_m2"
    assert out["first_chain_divergence"]["ratio"] == pytest.approx(2.0)


def test_pytorch_crash_mid_trace_gives_partial_bundle_with_attempted_section(tmp_path):
    def crash(pkg: Path) -> None:
        _replace(pkg / "__main__.py",
                 "        for line in trace_lines(TRACE_PREFIX, config.trace_pixel, result.trace):\n"
                 "            print(line)\n",
                 "        for i, line in enumerate(trace_lines(TRACE_PREFIX, config.trace_pixel, result.trace)):\n"
                 "            if i == 38:\n"
                 "                raise TypeError('expected dtype Double but got Float')\n"
                 "            print(line)\n")
    repo = _checkout(tmp_path, crash)
    code, out, _err = _capture(repo, tmp_path / "b")
    assert code == 1
    assert out["status"] == "partial" and out["verdict"] == "incomplete"
    assert out["missing"]["py"] == ["cos_2theta", "I_pixel_final", "floatimage_accumulated"]
    assert out["failed_commands"] == [{"step": "run-py", "exit_code": 1, "timed_out": False, "error": None}]
    report = (Path(out["bundle"]) / "report.md").read_text()
    attempted = report.split("## Attempted")[1].split("\n## ")[0]
    assert "run-py" in attempted and "expected dtype Double but got Float" in attempted
    for key in ("steps", "omega_pixel", "r_e_sqr", "fluence_photons_per_m2"):
        assert key in attempted  # the reduced chain that could still be checked
    assert "I_pixel_final" in attempted


def test_prebuilt_c_binary_py_only_and_reused_c_log(tmp_path):
    repo = _checkout(tmp_path)
    binary = tmp_path / "prebuilt-nanoBragg"
    subprocess.run(["gcc", "-O2", "-fno-fast-math", "-ffp-contract=off", "-fopenmp", "-o", str(binary),
                    str(repo / "golden_suite_generator" / "nanoBragg.c"), "-lm"], check=True)
    env = {**os.environ, "NB_C_BIN": str(binary)}
    code, out, err = _capture(repo, tmp_path / "b", "--c-only", env=env)
    assert code == 1 and out["verdict"] == "incomplete", err  # nothing to compare with one engine
    manifest = json.loads((Path(out["bundle"]) / "manifest.json").read_text())
    assert [c["step"] for c in manifest["commands"]] == ["run-c"]
    c = manifest["engines"][0]
    assert c["binary"]["sha256"] == hashlib.sha256(binary.read_bytes()).hexdigest()
    c_log = Path(out["bundle"]) / "logs" / "run-c.stdout"
    code, out, err = _capture(repo, tmp_path / "b", "--c-log", str(c_log), "--py-dtype", "float64")
    assert code == 0, err
    manifest = json.loads((Path(out["bundle"]) / "manifest.json").read_text())
    assert [c["step"] for c in manifest["commands"]] == ["run-py"]
    assert manifest["spec"]["engines"]["py"]["dtype"] == "float64"
    assert "-dtype" in manifest["arguments"]["engines"]["py"]
