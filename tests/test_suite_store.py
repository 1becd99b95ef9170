"""The suite bundle: written from RunOutcome records over two REAL member bundles (captures of the
shipped ROI spec, one passing and one marked failing by its record), verified with every member,
tampered with, and read by show, export and attach through the real CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from bundle.model.errors import BundleError
from bundle.suite.model import THRESHOLD_METRICS, RunOutcome
from bundle.suite.source import load_suite
from bundle.suite.store import (is_suite_bundle, load_suite_bundle, verify_suite,
                                write_suite_bundle)

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "manifests" / "minibragg-roi.toml"
SUITE_TEXT = """
name = "roi-pair"
target = "minibragg"
[thresholds]
corr_min = 0.9999
sum_ratio_min = 0.999
sum_ratio_max = 1.001
[[cases]]
id = "roi"
args = ["-mat", "A.mat"]
[[cases.runs]]
name = "as-shipped"
args = ["-N", "5"]
[[cases.runs]]
name = "marked-failing"
args = ["-N", "6"]
"""
CREATED = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)
pytestmark = pytest.mark.xdist_group("capture")


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def _capture(bundles: Path, repo: Path | None = None) -> dict:
    extra = ("--repo", str(repo)) if repo else ()
    proc = cli("capture", str(SPEC), "--bundles", str(bundles), "--json", *extra)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def _faulty_repo(root: Path) -> Path:
    """A checkout whose PyTorch fluence is 10x (a real fault: its capture's figures are real,
    so verify, which checks suite.json's claims against the members, holds them true)."""
    repo = root / "faulty"
    shutil.copytree(REPO / "minibragg", repo / "minibragg", ignore=shutil.ignore_patterns("__pycache__"))
    config = repo / "minibragg" / "config.py"
    old = "        return config.flux * config.exposure / (beam_m * beam_m)\n"
    assert old in config.read_text()
    config.write_text(config.read_text().replace(old, "        return 10.0 * config.flux * config.exposure / (beam_m * beam_m)\n"))
    return repo


def _outcome(run: str, out: dict, status: str) -> RunOutcome:
    bundle = Path(out["bundle"])
    m = out["metrics"]
    metrics = {"corr": m["pearson"], "sum_ratio": m["sum_ratio"], "max_abs": m["max_abs_diff"],
               "rmse": m["rmse"], "mean_peak_distance": m["mean_peak_distance"],
               "peaks_matched": m["peaks_matched"]}
    failing = status == "fail"  # the faulty checkout's capture: sum ratio 10
    first = (out.get("first_divergence") or {}).get("key")
    return RunOutcome(
        id=f"roi/{run}", case="roi", run=run, status=status, bundle=bundle.name,
        manifest_sha256=hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest(),
        run_key=hashlib.sha256(run.encode()).hexdigest(), key_fields={"argv": "0" * 64},
        metrics=metrics, thresholds={"corr_min": 0.9999, "sum_ratio_min": 0.999, "sum_ratio_max": 1.001},
        failed=("sum_ratio_max",) if failing else (), verdict=out["verdict"],
        first_divergence=first, roots=tuple(r["key"] for r in out["roots"]),
        pixel=(1039, 685),
        pixel_reason="largest |py - c| among bright pixels" if failing else "",
        wall_s=3.5, peak_rss_kb=250000, worker="tcp://127.0.0.1:1", reused=not failing,
        reason="run key unchanged" if not failing else "argv changed")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A bundles directory with two real captures and the suite bundle over them."""
    root = tmp_path_factory.mktemp("suite-store")
    bundles = root / "bundles"
    suite_file = root / "roi-pair.toml"
    suite_file.write_text(SUITE_TEXT)
    suite = load_suite(suite_file)
    outcomes = [_outcome("as-shipped", _capture(bundles), "pass"),
                _outcome("marked-failing", _capture(bundles, _faulty_repo(root)), "fail")]
    path = write_suite_bundle(bundles, suite, outcomes, executor={"kind": "local", "address": None,
                              "workers": 2, "threads_per_run": 1}, trace="failing", created=CREATED)
    return path, outcomes


@pytest.fixture
def copy(made, tmp_path):
    """The bundles directory copied, to be tampered with."""
    path, _ = made
    shutil.copytree(path.parent, tmp_path / "bundles", symlinks=True)
    return tmp_path / "bundles" / path.name


def test_layout_is_the_models(made):
    path, outcomes = made
    assert path.name.startswith("20261130T120000Z-suite-roi-pair-") and len(path.name.split("-")[-1]) == 8
    assert not list((path.parent / ".staging").glob("*"))  # staging and its lock are gone
    data = json.loads((path / "suite.json").read_text())
    assert list(data) == ["format_version", "kind", "suite_id", "created_utc", "name", "target",
                          "source", "executor", "trace", "summary", "members", "unknown_fields", "files"]
    assert (data["format_version"], data["kind"], data["suite_id"]) == (1, "suite", path.name)
    assert data["summary"] == {"runs": 2, "passed": 1, "failed": 1, "errors": 0, "reused": 1}
    assert data["source"]["format"] == "toml" and data["source"]["copy"] == "source/roi-pair.toml"
    assert [RunOutcome.from_data(m) for m in data["members"]] == outcomes
    listed = {f["path"]: f for f in data["files"]}
    on_disk = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {"suite.json"}
    assert set(listed) == on_disk >= {"suite.parquet", "report.md", "plots/matrix.png",
                                      "ro-crate-metadata.json", "source/roi-pair.toml"}
    for rel, f in listed.items():
        raw = (path / rel).read_bytes()
        assert (f["size"], f["sha256"]) == (len(raw), hashlib.sha256(raw).hexdigest())
    assert is_suite_bundle(path) and is_suite_bundle(path / "suite.json")
    assert not is_suite_bundle(path.parent / outcomes[0].bundle)
    assert load_suite_bundle(path)["name"] == "roi-pair"


def test_parquet_has_one_row_per_run_with_metrics_and_thresholds(made):
    path, _ = made
    rows = pq.read_table(path / "suite.parquet").to_pylist()
    assert [(r["case"], r["run"], r["status"], r["pass"]) for r in rows] == [
        ("roi", "as-shipped", "pass", True), ("roi", "marked-failing", "fail", False)]
    good, bad = rows
    assert good["corr"] == 1.0 and bad["sum_ratio"] == pytest.approx(10.0) and good["max_abs"] == 0
    assert set(THRESHOLD_METRICS) <= set(good)
    assert (good["corr_min"], good["sum_ratio_max"], good["rmse_max"]) == (0.9999, 1.001, None)
    assert bad["failed"] == ["sum_ratio_max"] and bad["roots"] == ["fluence_photons_per_m2"]
    assert (bad["pixel_slow"], bad["pixel_fast"], good["pixel_slow"]) == (1039, 685, 1039)
    assert bad["first_divergence"] == "fluence_photons_per_m2" and good["reused"] and not bad["reused"]
    assert good["peak_rss_kb"] == 250000 and bad["reason"] == "argv changed"


def test_report_summary_matrix_and_drill_down(made):
    path, outcomes = made
    text = (path / "report.md").read_text()
    assert text.startswith("# Suite roi-pair\n")
    assert "**1 of 2 pass · 1 fail · 1 reused**" in text
    assert "| case | as-shipped | marked-failing |" in text
    assert "| roi | ✓ corr 1 · sum 1 | ✗ corr 1 · sum 10 |" in text
    section = text.split("### roi / marked-failing — FAIL", 1)[1]
    assert "failed sum_ratio_max: sum 10, required ≤ 1.001" in section
    assert "traced pixel (1039, 685): largest |py - c| among bright pixels" in section
    assert "first divergence at fluence_photons_per_m2" in section
    assert "roots: fluence_photons_per_m2" in section
    assert f"(../{outcomes[1].bundle}/report.md)" in section and "rerun: argv changed" in section
    assert "### roi / as-shipped" not in text


def test_matrix_png_and_crate_members(made):
    path, outcomes = made
    with Image.open(path / "plots" / "matrix.png") as im:
        assert im.format == "PNG" and im.size[0] > 100
    crate = json.loads((path / "ro-crate-metadata.json").read_text())
    graph = {e["@id"]: e for e in crate["@graph"]}
    parts = {p["@id"] for p in graph["./"]["hasPart"]}
    for o in outcomes:
        assert f"../{o.bundle}/" in parts and graph[f"../{o.bundle}/"]["@type"] == "Dataset"
    assert {"suite.parquet", "report.md", "plots/matrix.png"} <= parts


def test_verify_intact_then_tampered_member_then_parquet(copy):
    assert verify_suite(copy).intact
    ok = cli("verify", str(copy))
    assert ok.returncode == 0 and "intact suite" in ok.stdout, ok.stdout + ok.stderr
    member = load_suite_bundle(copy)["members"][0]["bundle"]
    with open(copy.parent / member / "report.md", "a") as fh:
        fh.write("forged\n")
    result = verify_suite(copy)
    assert not result.intact
    states = {(m.bundle, m.state) for m in result.members}
    assert (member, "TAMPERED") in states and len(states) == 2
    bad = cli("verify", str(copy), "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["intact"] is False


def test_tampered_suite_parquet_or_missing_member_fails(copy):
    data = load_suite_bundle(copy)
    with open(copy / "suite.parquet", "ab") as fh:
        fh.write(b"\0")
    result = verify_suite(copy)
    assert ("suite.parquet", "CHANGED") in result.files and not result.intact
    shutil.rmtree(copy.parent / data["members"][1]["bundle"])
    states = [m.state for m in verify_suite(copy).members]
    assert states == ["OK", "MISSING"]
    proc = cli("verify", str(copy))
    assert proc.returncode == 1 and "MISSING" in proc.stdout


def test_a_member_manifest_swapped_for_another_is_tampered(copy):
    data = load_suite_bundle(copy)
    first, second = (copy.parent / m["bundle"] for m in data["members"])
    (first / "manifest.json").write_bytes((second / "manifest.json").read_bytes())
    checks = verify_suite(copy).members
    assert checks[0].state == "TAMPERED" and "not the one suite.json records" in checks[0].detail


def test_show_prints_the_matrix_after_verifying(copy):
    proc = cli("show", str(copy))
    assert proc.returncode == 0, proc.stderr
    assert "Suite roi-pair: 1 of 2 pass" in proc.stdout and "✗ corr 1 · sum 10" in proc.stdout
    assert "FAIL roi/marked-failing: first divergence at fluence_photons_per_m2" in proc.stdout
    assert json.loads(cli("show", str(copy), "--json").stdout)["kind"] == "suite"
    (copy / "report.md").write_text("forged\n")
    refused = cli("show", str(copy))
    assert refused.returncode == 2 and "not intact" in refused.stderr and "Suite" not in refused.stdout


def test_export_writes_the_matrix_and_failing_traces_never_overwriting(copy, tmp_path):
    to = tmp_path / "reports" / "2026-11-suite"
    proc = cli("export", str(copy), "--to", str(to))
    assert proc.returncode == 0, proc.stderr
    names = {p.relative_to(to).as_posix() for p in to.rglob("*") if p.is_file()}
    assert {"matrix.md", "matrix.png", "README.md", "roi__marked-failing/trace_c_scaling.log",
            "roi__marked-failing/trace_py_scaling.log", "roi__marked-failing/scaling_chain.md"} <= names
    assert not any(n.startswith("roi__as-shipped") for n in names)  # passing runs: no traces
    assert (to / "roi__marked-failing" / "trace_c_scaling.log").read_text().startswith("TRACE_C:")
    assert "1 of 2 pass" in (to / "matrix.md").read_text()
    before = (to / "matrix.md").read_bytes()
    again = cli("export", str(copy), "--to", str(to))
    assert again.returncode == 2 and "never overwrites" in again.stderr
    assert (to / "matrix.md").read_bytes() == before


LEDGER = """# Fix plan

## [SUITE-1] The parity matrix
- Status: in progress
- Attempts History:
  * [2026-11-01] Attempt #3 (someone) — Result: **PARITY**. older attempt
"""


def test_attach_writes_one_attempt_summarizing_the_suite(copy, tmp_path):
    ledger = tmp_path / "fix_plan.md"
    ledger.write_text(LEDGER)
    proc = cli("attach", str(copy), "--fix-plan", str(ledger), "--item", "SUITE-1", "--owner", "me")
    assert proc.returncode == 0, proc.stderr
    text = ledger.read_text()
    assert text.count("Attempt #4 (me)") == 1 and text.endswith("older attempt\n")
    entry = text.split("Attempt #4", 1)[1].split("Attempt #3", 1)[0]
    assert "**PARITY FAILURE** (1 of 2 pass · 1 fail · 1 reused)" in entry
    assert "failures: roi/marked-failing (sum_ratio_max: sum 10, required ≤ 1.001)" in entry
    assert ("roi/marked-failing: first divergence at fluence_photons_per_m2 "
            "(roots: fluence_photons_per_m2)") in entry
    sha = hashlib.sha256((copy / "suite.json").read_bytes()).hexdigest()
    assert f"suite.json sha256 `{sha}`" in entry
    again = cli("attach", str(copy), "--fix-plan", str(ledger), "--item", "SUITE-1", "--owner", "me")
    assert again.returncode == 0 and "already attached" in again.stdout
    assert ledger.read_text() == text


def test_a_suite_bundle_is_never_overwritten(made):
    path, outcomes = made
    suite = load_suite(Path(load_suite_bundle(path)["source"]["path"]))
    with pytest.raises(BundleError, match="already exists"):
        write_suite_bundle(path.parent, suite, outcomes, executor={}, trace="none", created=CREATED)


def test_suite_writers_word_results_only_through_the_vocabularies():
    from bundle.present import vocabulary as v

    writers = ["bundle/suite/report.py", "bundle/suite/export.py", "bundle/suite/ledger.py",
               "cli/suite_bundle.py"]
    for rel in writers:
        text = (REPO / rel).read_text()
        for word in (v.OK, v.BAD, v.FIRST_DIVERGENCE_AT, v.PARITY_FAILURE, "no traced divergence"):
            assert word not in text, (rel, word)


def test_worst_margin_is_signed_relative_and_nan_without_thresholds():
    import math

    from bundle.suite.matrix import margin, worst_margin

    assert margin("corr_min", 0.998, 0.9999) < 0 < margin("corr_min", 1.0, 0.9999)
    assert margin("max_abs_max", 2.0, 1.0) == -1.0 and margin("max_abs_max", 0.0, 0.0) == 0.0
    assert margin("corr_min", None, 0.9) == -1.0  # a metric the run did not produce fails
    worst, which = worst_margin({"metrics": {"corr": 1.0, "sum_ratio": 1.01},
                                 "thresholds": {"corr_min": 0.9999, "sum_ratio_max": 1.001}})
    assert which == "sum_ratio_max" and worst == pytest.approx((1.001 - 1.01) / 1.001)
    assert math.isnan(worst_margin({"metrics": {"corr": 1.0}, "thresholds": {}})[0])


def test_verify_ledger_checks_an_attached_suite_by_its_suite_json_digest(copy, tmp_path):
    ledger = tmp_path / "fix_plan.md"
    ledger.write_text(LEDGER)
    assert cli("attach", str(copy), "--fix-plan", str(ledger), "--item", "SUITE-1").returncode == 0
    ok = cli("verify", "--ledger", str(ledger), "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert [b["path"] for b in json.loads(ok.stdout)["bundles"]] == [str(copy)]
    data = load_suite_bundle(copy)
    with open(copy.parent / data["members"][1]["bundle"] / "report.md", "a") as fh:
        fh.write("forged\n")
    bad = cli("verify", "--ledger", str(ledger))
    assert bad.returncode == 1 and "suite bundle not intact" in bad.stdout


def test_a_yaml_suite_of_errors_keeps_its_unknown_fields_and_draws(tmp_path):
    suite = load_suite(REPO / "tests" / "fixtures" / "parity_cases.yaml")
    outcomes = [RunOutcome(id=r.id, case=r.case, run=r.name, status="error", bundle=None,
                           manifest_sha256=None, run_key="k", key_fields={},
                           thresholds=r.thresholds.to_data(), error="run-c exited 2")
                for r in suite.runs]
    path = write_suite_bundle(tmp_path, suite, outcomes, executor={"kind": "local"}, trace="none",
                              created=CREATED)
    data = load_suite_bundle(path)
    assert data["summary"] == {"runs": 5, "passed": 0, "failed": 0, "errors": 5, "reused": 0}
    assert data["unknown_fields"]["small-detector"] == {"tags": ["geometry", "fast"]}
    assert data["source"]["format"] == "yaml"
    text = (path / "report.md").read_text()
    assert "**0 of 5 pass · 5 errors · 0 reused**" in text and "| case | run 1 | run 2 |" in text
    # the cases' runs differ, so the columns are positions and each cell names its run
    assert "| small-detector | N10 ! error | N5 ! error |" in text
    assert "- error: run-c exited 2" in text
    assert "Fields of the suite file not read" in text and "tags: ['geometry', 'fast']" in text
    result = verify_suite(path)
    assert result.intact and result.members == ()
    assert (path / "plots" / "matrix.png").stat().st_size > 1000


def test_a_suite_json_whose_figures_are_not_its_members_is_tampered(copy):
    """suite.json is an index written beside the members: a run it calls passing whose members
    say otherwise is caught by verify (bundle.suite.claims), and show refuses it."""
    data = json.loads((copy / "suite.json").read_text())
    bad = data["members"][1]
    bad.update(status="pass", failed=[], metrics={**bad["metrics"], "sum_ratio": 1.0})
    (copy / "suite.json").write_text(json.dumps(data))
    result = verify_suite(copy)
    claims = [m for m in result.members if m.role == "claims"]
    assert not result.intact and len(claims) == 1 and claims[0].run == "roi/marked-failing"
    assert "suite.json says" in claims[0].detail and "sum_ratio" in claims[0].detail
    assert cli("verify", str(copy)).returncode == 1
    assert cli("show", str(copy)).returncode == 2
