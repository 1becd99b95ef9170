"""nb-evidence diff on real captures of the minibragg pair (issue 14): a PyTorch fault against
none, both ways; two identical captures; inputs that differ (an argument and a C source file);
--md, --json, attach --against; the plain-data sentence for same inputs, different results; bad
input (a bundle against a suite, a missing path) as one line and exit 2."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bundle.diff.compare import diff_bundles
from bundle.diff.load import diff_paths
from bundle.diff.markdown import markdown
from bundle.diff.words import NOT_REPRODUCIBLE, NOTHING_CHANGED
from bundle.store.schema import load_manifest
from tests.diff_fixtures import FLUENCE, SPEC, capture, cli, make_repo

pytestmark = pytest.mark.xdist_group("capture")

# Keys the fluence fault moves: the root and what it carries down the chain.
FAULT_KEYS = {"fluence_photons_per_m2", "I_pixel_final", "floatimage_accumulated"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("diff")
    ok_repo = make_repo(root / "ok")
    bad_repo = make_repo(root / "bad", FLUENCE)
    bundles = root / "bundles"
    return {"root": root, "ok_repo": ok_repo, "ok": capture(ok_repo, bundles),
            "ok2": capture(ok_repo, bundles), "bad": capture(bad_repo, bundles)}


def _data(a: Path, b: Path) -> tuple[int, dict]:
    proc = cli("diff", str(a), str(b), "--json")
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _keys(data: dict) -> dict[str, str]:
    return {k["key"]: k["transition"] for k in data["keys"]}


def test_fault_introduced_is_a_regression(world):
    code, data = _data(world["ok"], world["bad"])
    assert code == 1 and data["regressed"]
    keys = _keys(data)
    assert keys["fluence_photons_per_m2"] == "regressed"
    assert FAULT_KEYS <= {k for k, t in keys.items() if t == "regressed"}
    assert keys["pix0_vector_meters"] == "unchanged"
    assert data["verdict"]["before"] == "parity" and data["verdict"]["after"] == "divergence"
    assert data["roots"]["after"] == ["fluence_photons_per_m2"]
    assert {r["name"] for r in data["regressions"]} >= FAULT_KEYS | {"verdict"}
    changed = {(c["category"], c["name"]): c for c in data["changes"]}
    # The minibragg profile hashes only the PyTorch engine's __main__.py as its source, so a
    # fault in config.py is named by the repository's commit (each side's own, digested by git).
    commit = changed[("repository", "commit")]
    head = subprocess.run(["git", "-C", str(world["ok_repo"]), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    assert commit["before"] == head and commit["after"] not in (None, head)
    assert not data["not_reproducible"] and data["inputs_changed"]
    factor = {f["name"]: f for f in data["factors"]}["fluence_photons_per_m2"]
    assert factor["before"] == 1.0 and factor["after"] == pytest.approx(10.0)


def test_fault_removed_is_fixed(world):
    code, data = _data(world["bad"], world["ok"])
    assert code == 0 and not data["regressed"]
    keys = _keys(data)
    assert keys["fluence_photons_per_m2"] == "fixed"
    assert set(keys.values()) == {"fixed", "unchanged"}


def test_identical_captures_show_no_change(world):
    code, data = _data(world["ok"], world["ok2"])
    assert code == 0
    assert set(_keys(data).values()) == {"unchanged"} and len(data["keys"]) == 40
    assert data["changes"] == [] and data["arguments"] == [] and not data["results_changed"]
    assert NOTHING_CHANGED in markdown(diff_paths(world["ok"], world["ok2"]))


def test_changed_inputs_are_each_named(world, tmp_path):
    repo = make_repo(tmp_path / "edited")
    c_file = repo / "minibragg" / "minibragg.c"
    c_file.write_text(c_file.read_text() + "\n/* a comment: the source changes, not the result */\n")
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.read_text().replace('"-phisteps", "10"', '"-phisteps", "12"'))
    assert spec.read_text() != SPEC.read_text()
    after = capture(repo, tmp_path / "b", spec)
    code, data = _data(world["ok"], after)
    changed = {(c["category"], c["name"]): c for c in data["changes"]}
    source = changed[("engine source", "minibragg/minibragg.c")]
    assert source["after"] == hashlib.sha256(c_file.read_bytes()).hexdigest()
    assert ("spec", "file (sha256)") in changed and ("arguments", "shared argument list (sha256)") in changed
    tokens = [(t["op"], t["token"]) for t in data["arguments"]]
    assert tokens == [("removed", "10"), ("added", "12")]
    shared = load_manifest(world["ok"])["arguments"]["shared"]
    assert data["arguments"][0]["position"] == shared.index("-phisteps") + 1
    assert ("engine source", "minibragg/config.py") not in changed


def test_same_inputs_different_results_is_said_plainly(world):
    before = load_manifest(world["ok"])
    after = copy.deepcopy(before)
    after["bundle_id"] = "other"
    after["result"]["verdict"] = "divergence"
    after["engines"][1]["trace_sha256"] = "0" * 64
    diff = diff_bundles(before, after)
    assert diff.not_reproducible and diff.regressed
    assert NOT_REPRODUCIBLE in markdown(diff)
    assert not diff_bundles(before, copy.deepcopy(before)).not_reproducible


def test_md_written_once_never_overwritten(world, tmp_path):
    out = tmp_path / "diff.md"
    proc = cli("diff", str(world["ok"]), str(world["bad"]), "--md", str(out))
    assert proc.returncode == 1, proc.stderr
    text = out.read_text()
    assert "regressed: fluence_photons_per_m2" in text and "| fluence_photons_per_m2 |" in text
    again = cli("diff", str(world["ok"]), str(world["bad"]), "--md", str(out))
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert "already exists" in again.stderr and out.read_text() == text


def test_archived_manifest_against_a_bundle(world, tmp_path):
    archived = tmp_path / "manifests" / "archive" / "baseline.json"
    archived.parent.mkdir(parents=True)
    shutil.copyfile(world["ok"] / "manifest.json", archived)
    code, data = _data(archived, world["bad"])
    assert code == 1 and data["before_is_manifest"]
    keys = _keys(data)
    assert keys["fluence_photons_per_m2"] == "regressed" and keys["pix0_vector_meters"] == "unchanged"


def test_attach_against_puts_the_diff_in_the_entry(world, tmp_path):
    ledger = tmp_path / "fix_plan.md"
    ledger.write_text("# Fix plan\n\n## [ITEM-1] Fluence\n- Status: open\n- Attempts History:\n")
    proc = cli("attach", str(world["bad"]), "--fix-plan", str(ledger), "--item", "ITEM-1",
               "--owner", "t", "--against", str(world["ok"]))
    assert proc.returncode == 0, proc.stderr
    text = ledger.read_text()
    assert "    Diff:\n" in text and "      - regressed: fluence_photons_per_m2: ✓ → ✗" in text
    assert "| pix0_vector_meters |" not in text  # the attempt lists only the keys that moved
    from bundle.ledger.fixplan import parse_ledger

    item = parse_ledger(text).item("ITEM-1")
    assert item is not None and item.next_attempt == 2


def test_a_bundle_against_a_suite_is_one_line(world, tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "suite.json").write_text(json.dumps({"kind": "suite", "members": []}))
    for a, b in ((world["ok"], suite), (suite, world["ok"])):
        proc = cli("diff", str(a), str(b))
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "is a suite" in proc.stderr
    missing = cli("diff", str(world["ok"]), str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "nope" in missing.stderr



def _outcome(run_id: str, status: str, corr: float, fd: str | None) -> dict:
    from bundle.suite.model import RunOutcome

    case, run = run_id.split("/")
    return RunOutcome(id=run_id, case=case, run=run, status=status, bundle=None, manifest_sha256=None,
                      run_key="k", key_fields={}, metrics={"corr": corr},
                      thresholds={"corr_min": 0.999}, failed=() if status == "pass" else ("corr_min",),
                      first_divergence=fd, roots=(fd,) if fd else ()).to_data()


def test_suite_diff_on_plain_data():
    """Runs matched by case/run; a run only on one side is listed, not diffed (the real suites
    are in tests/test_diff_suite.py)."""
    from bundle.diff.suites import diff_suites

    before = {"suite_id": "s1", "members": [_outcome("a/r1", "pass", 1.0, None),
                                            _outcome("a/r2", "fail", 0.5, "F_cell"),
                                            _outcome("b/r1", "pass", 1.0, None)]}
    after = {"suite_id": "s2", "members": [_outcome("a/r1", "fail", 0.9, "polar"),
                                           _outcome("a/r2", "pass", 1.0, None),
                                           _outcome("c/r1", "pass", 1.0, None)]}
    diff = diff_suites(before, after)
    assert [r.name for r in diff.regressions] == ["a/r1"]
    runs = {r.id: r for r in diff.runs}
    assert set(runs) == {"a/r1", "a/r2"}
    assert runs["a/r1"].first_divergence.after == "polar"
    corr = runs["a/r1"].metrics[0]
    assert (corr.name, corr.passed_before, corr.passed_after) == ("corr", True, False)
    assert diff.only_before == ("b/r1",) and diff.only_after == ("c/r1",)
    assert [r.name for r in diff_suites(after, before).regressions] == ["a/r2"]
    assert "| a/r1 | pass → fail |" in markdown(diff)


def test_still_failing_shows_its_ratio_moving():
    from bundle.diff.results import key_changes, keys_from_rows

    def rows(ratio: float) -> list[dict]:
        return [{"key": "F_cell", "status": "match", "ratio": 1.0, "rel_diff": 0.0},
                {"key": "F_cell", "status": "differ", "ratio": ratio, "rel_diff": abs(1 - ratio)},
                {"key": "polar", "status": "match", "ratio": 1.0, "rel_diff": 0.0}]

    [cell, polar] = key_changes(keys_from_rows(rows(0.122)), keys_from_rows(rows(0.98)))
    assert (cell.transition, cell.before.ratio, cell.after.ratio) == ("still failing", 0.122, 0.98)
    assert polar.transition == "unchanged"
    [gone] = key_changes({"x": keys_from_rows(rows(0.5))["polar"]}, {})
    assert gone.transition == "gone"


def test_allowed_regressions_cover_the_verdict():
    from bundle.diff.model import Regression
    from bundle.gate.run import split_allowed

    found = (Regression("fluence_photons_per_m2", "✓", "✗"), Regression("verdict", "parity", "divergence"))
    assert split_allowed(found, ("fluence_photons_per_m2",)) == ((), found)
    assert split_allowed(found, ()) == (found, ())
    assert split_allowed(found[1:], ("fluence_photons_per_m2",)) == (found[1:], ())
