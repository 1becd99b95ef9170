"""nb-evidence gate on real captures of the minibragg pair (issue 14): a baseline captured
first; the gate passes on the unchanged checkout, fails on the checkout once a PyTorch fault is
injected after the baseline (regression lines on stderr, the new bundle on stdout, the step
summary written), and passes again when --allow names the regressed keys. An archived manifest
is a baseline too."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.diff_fixtures import FLUENCE, capture, cli, inject, make_repo

pytestmark = pytest.mark.xdist_group("capture")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    repo = make_repo(root / "repo")
    return {"root": root, "repo": repo, "baseline": capture(repo, root / "baseline")}


def _gate(world, *args: str, summary: Path | None = None):
    env = dict(os.environ)
    env.pop("GITHUB_STEP_SUMMARY", None)
    if summary is not None:
        env["GITHUB_STEP_SUMMARY"] = str(summary)
    return cli("gate", *args, "--repo", str(world["repo"]), "--bundles", str(world["root"] / "new"),
               env=env)


def _new_bundle(proc) -> Path:
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    path = Path(lines[0])
    assert (path / "manifest.json").is_file()
    return path


def test_gate(world, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier steps\n")
    passed = _gate(world, str(world["baseline"]), summary=summary)
    assert passed.returncode == 0, passed.stderr
    assert _new_bundle(passed) != world["baseline"]
    assert "regressed:" not in passed.stderr and "minibragg-roi.toml" in passed.stderr
    text = summary.read_text()
    assert text.startswith("earlier steps\n") and "### nb-evidence gate: PASS" in text

    # An archived manifest (no tables) is a baseline as good as its bundle.
    archived = tmp_path / "manifests" / "archive" / f"{world['baseline'].name}.json"
    archived.parent.mkdir(parents=True)
    shutil.copyfile(world["baseline"] / "manifest.json", archived)
    assert _gate(world, str(archived)).returncode == 0

    inject(world["repo"], FLUENCE)  # the fault arrives after the baseline
    failed = _gate(world, str(world["baseline"]), summary=summary)
    assert failed.returncode == 1, failed.stderr
    lines = [line for line in failed.stderr.splitlines() if line.startswith("regressed: ")]
    regressed = {line.split(": ")[1] for line in lines}
    assert "fluence_photons_per_m2" in regressed and "verdict" in regressed
    _new_bundle(failed)
    assert "### nb-evidence gate: FAIL" in summary.read_text()
    assert "regressed: fluence_photons_per_m2" in summary.read_text()
    assert _gate(world, str(archived)).returncode == 1

    keys = sorted(regressed - {"verdict"})
    allowed = _gate(world, str(world["baseline"]), *[a for k in keys for a in ("--allow", k)])
    assert allowed.returncode == 0, allowed.stderr
    assert "regressed:" not in allowed.stderr
    assert f"allowed: {keys[0]}: ✓ → ✗" in allowed.stderr
    some = _gate(world, str(world["baseline"]), "--allow", "fluence_photons_per_m2")
    assert some.returncode == 1 or keys == ["fluence_photons_per_m2"]


def test_bad_baseline_is_one_line(world, tmp_path):
    proc = _gate(world, str(tmp_path / "missing"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "missing" in proc.stderr
    both = _gate(world, str(world["baseline"]), "--capture", "a.toml", "--suite", "s.toml")
    assert both.returncode == 2 and "exclude each other" in both.stderr
