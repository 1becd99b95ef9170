"""nb-evidence bisect end to end, on real git repositories made of minibragg's files (tests/
bisect_repo.py): real worktrees, real gcc through the build cache, real captures.

The main history has 24 commits after --good: docs-only ones, C-comment-only ones, a C file that
does not build (fixed in the next commit) and one that injects a fault into the PyTorch engine.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bisect_repo import FAULT_KEY, c_digest, make_history, small_spec, snapshot

KINDS = ["docs", "c-comment", "docs", "c-comment", "docs", "c-broken", "c-fixed", "docs",
         "c-comment", "docs", "docs", "c-comment", "docs", "fault", "docs", "c-comment", "docs",
         "docs", "c-comment", "docs", "docs", "c-comment", "docs", "docs"]
FAULT_AT = KINDS.index("fault") + 1  # index among the shas (0 is the initial commit)


def bisect_cli(tmp: Path, repo: Path, *args: str, timeout: float = 600):
    return subprocess.run([sys.executable, "-m", "cli", "bisect", str(tmp / "spec.toml"),
                           "--repo", str(repo), "--bundles", str(tmp / "bundles"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp)


@pytest.fixture(scope="module")
def main_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bisect-main")
    repo, shas = make_history(tmp, KINDS)
    small_spec(tmp / "spec.toml")
    before = snapshot(repo)
    proc = bisect_cli(tmp, repo, "--good", shas[0], "--bad", "main", "--json")
    return tmp, repo, shas, before, proc


@pytest.mark.xdist_group("bisect")
def test_finds_exactly_the_injected_commit(main_run):
    tmp, repo, shas, _before, proc = main_run
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    first = data["result"]["first_bad"]
    assert first["sha"] == shas[FAULT_AT] and first["subject"] == f"fault {FAULT_AT}"
    assert first["files"] == ["minibragg/config.py"]
    assert data["result"]["last_good"] == shas[FAULT_AT - 1]
    assert data["predicate"] == {"kind": "verdict", "key": None, "flag": "--verdict"}
    # the bundle: one row per probed commit, members beside it, a report in the order
    bundle = tmp / "bundles" / data["bisect_id"]
    assert {f["path"] for f in data["files"]} == {"probes.parquet", "report.md"}
    import pyarrow.parquet as pq

    rows = pq.read_table(bundle / "probes.parquet").to_pylist()
    assert [r["sha"] for r in rows] == [p["sha"] for p in data["probes"]]
    assert all((tmp / "bundles" / m / "manifest.json").is_file() for m in data["members"])
    report = (bundle / "report.md").read_text()
    assert report.index("## Commits probed") < report.index("## First bad commit") < \
        report.index("## Last good against first bad")
    assert data["diff"] is not None and "fluence_photons_per_m2" in report


@pytest.mark.xdist_group("bisect")
def test_probes_no_more_than_log2_n_plus_2_on_one_worker(main_run):
    _tmp, _repo, shas, _before, proc = main_run
    data = json.loads(proc.stdout)
    n = len(shas) - 1
    assert data["commits"] == n == 24
    assert len(data["probes"]) <= math.ceil(math.log2(n)) + 2
    assert data["executor"]["workers"] == 1


@pytest.mark.xdist_group("bisect")
def test_builds_c_only_as_often_as_the_c_sources_changed(main_run):
    _tmp, repo, _shas, _before, proc = main_run
    probes = json.loads(proc.stdout)["probes"]
    distinct = {c_digest(repo, p["sha"]) for p in probes}
    built = [p for p in probes if p["build"] in ("built", "failed")]
    assert len(built) == len(distinct) < len(probes)
    assert all(p["build"] == "reused" for p in probes if p not in built)


@pytest.mark.xdist_group("bisect")
def test_leaves_the_repository_byte_identical(main_run):
    _tmp, repo, _shas, before, proc = main_run
    assert proc.returncode == 0, proc.stderr
    assert snapshot(repo) == before
    assert len(before["worktrees"].strip().split("\n\n")) == 1


@pytest.mark.xdist_group("bisect")
def test_an_unbuildable_commit_is_skipped(tmp_path):
    # 0 good; 1 breaks the C build; 2 fixes it; 3 injects the fault. The first probe between
    # the ends is 1 (the lower middle), which cannot be built: skipped, its neighbour tried next.
    repo, shas = make_history(tmp_path, ["c-broken", "c-fixed", "fault"])
    small_spec(tmp_path / "spec.toml")
    proc = bisect_cli(tmp_path, repo, "--good", shas[0], "--bad", shas[3], "--key", FAULT_KEY,
                      "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["result"]["first_bad"]["sha"] == shas[3]
    assert data["result"]["skipped"] == [shas[1]]
    skipped = next(p for p in data["probes"] if p["sha"] == shas[1])
    assert skipped["value"] == "skip" and "build-c failed" in skipped["reason"]
    bad = next(p for p in data["probes"] if p["sha"] == shas[3])
    assert bad["key_ratio"] == pytest.approx(10.0)
    assert "(skipped)" not in (tmp_path / "bundles" / data["bisect_id"] / "report.md").read_text()


@pytest.mark.xdist_group("bisect")
def test_a_dirty_tree_is_allowed_and_said(tmp_path):
    repo, shas = make_history(tmp_path, ["fault"])
    small_spec(tmp_path / "spec.toml")
    (repo / "NOTES.md").write_text("my uncommitted edit\n")
    before = snapshot(repo)
    proc = bisect_cli(tmp_path, repo, "--good", "main~1", "--bad", "main")
    assert proc.returncode == 0, proc.stderr
    assert "only committed trees are probed; uncommitted changes are ignored" in proc.stderr
    assert proc.stdout.startswith(f"first bad commit: {shas[1]} fault 1")
    assert snapshot(repo) == before


@pytest.mark.xdist_group("bisect")
def test_not_bad_at_bad_says_which_and_exits_1(tmp_path):
    repo, shas = make_history(tmp_path, ["docs"])
    small_spec(tmp_path / "spec.toml")
    before = snapshot(repo)
    proc = bisect_cli(tmp_path, repo, "--good", shas[0], "--bad", shas[1], "--json")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["result"]["status"] == "bad-is-good"
    assert data["result"]["reason"].startswith(f"--bad {shas[1]} is not bad")
    assert snapshot(repo) == before


@pytest.mark.xdist_group("bisect")
def test_interrupted_leaves_no_worktree_and_the_repository_unchanged(tmp_path):
    repo, _shas = make_history(tmp_path, ["docs", "docs", "fault"])
    small_spec(tmp_path / "spec.toml")
    before = snapshot(repo)
    proc = subprocess.Popen([sys.executable, "-m", "cli", "bisect", str(tmp_path / "spec.toml"),
                             "--repo", str(repo), "--good", "main~3", "--bad", "main",
                             "--bundles", str(tmp_path / "bundles")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (repo / ".git" / "worktrees").is_dir():
        time.sleep(0.05)
    assert (repo / ".git" / "worktrees").is_dir(), "no worktree was ever added"
    time.sleep(1.0)  # into the capture
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert snapshot(repo) == before
    assert not list((tmp_path / "bundles").glob("*bisect*"))


@pytest.mark.parametrize("args, said", [
    (("--good", "nosuchrev", "--bad", "main"), "--good nosuchrev: no such commit"),
    (("--good", "main", "--bad", "main~2"), "--good main is not an ancestor of --bad main~2"),
    (("--good", "main~1", "--bad", "main", "--key", "a", "--root", "b"), "exclude each other"),
    (("--good", "main~1", "--bad", "main", "--workers", "0"), "--workers 0"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, said):
    repo, _shas = make_history(tmp_path, ["docs", "docs"])
    small_spec(tmp_path / "spec.toml")
    before = snapshot(repo)
    proc = bisect_cli(tmp_path, repo, *args)
    assert proc.returncode == 2, proc.stderr
    assert said in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert snapshot(repo) == before and not (tmp_path / "bundles").exists()


def test_not_a_repository_is_one_line_and_exit_2(tmp_path):
    small_spec(tmp_path / "spec.toml")
    (tmp_path / "plain").mkdir()
    proc = bisect_cli(tmp_path, tmp_path / "plain", "--good", "a", "--bad", "b")
    assert proc.returncode == 2 and "not a git repository" in proc.stderr


@pytest.mark.xdist_group("bisect")
def test_two_workers_probe_two_commits_a_round_on_the_dask_executor(tmp_path):
    repo, shas = make_history(tmp_path, ["docs", "fault", "c-comment", "docs"])
    small_spec(tmp_path / "spec.toml")
    before = snapshot(repo)
    proc = bisect_cli(tmp_path, repo, "--good", shas[0], "--bad", shas[4], "--workers", "2",
                      "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["result"]["first_bad"]["sha"] == shas[2]
    assert data["executor"]["kind"] == "local" and data["executor"]["workers"] == 2
    rounds = {}
    for p in data["probes"]:
        rounds.setdefault(p["round"], []).append(p["sha"])
    assert sorted(rounds[1]) == sorted([shas[0], shas[4]])
    assert sorted(rounds[2]) == sorted([shas[1], shas[3]])  # the range split in three
    assert snapshot(repo) == before


@pytest.mark.xdist_group("bisect")
def test_skips_that_hide_the_first_bad_commit_give_the_candidate_range(tmp_path):
    # 1 breaks the C build, 2 injects the fault while it is still broken, 3 fixes the build:
    # 1 and 2 are skips, so the first bad commit is one of 1, 2, 3.
    repo, shas = make_history(tmp_path, ["c-broken", "fault", "c-fixed"])
    small_spec(tmp_path / "spec.toml")
    proc = bisect_cli(tmp_path, repo, "--good", shas[0], "--bad", shas[3])
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("first bad commit is one of 3 (skips hide it):")
    assert f"{shas[1]} c-broken 1 (skipped)" in proc.stdout
    assert f"{shas[2]} fault 2 (skipped)" in proc.stdout
    [bundle] = (tmp_path / "bundles").glob("*-bisect-*")
    data = json.loads((bundle / "bisect.json").read_text())
    assert data["result"]["status"] == "ambiguous" and data["result"]["first_bad"] is None
    assert [c["sha"] for c in data["result"]["candidates"]] == shas[1:]
    assert "## Candidate range" in (bundle / "report.md").read_text()


@pytest.mark.xdist_group("bisect")
def test_verify_checks_the_bisect_bundle_and_every_probed_member(main_run, tmp_path):
    import shutil

    tmp, _repo, _shas, _before, proc = main_run
    data = json.loads(proc.stdout)
    copy = tmp_path / "bundles"
    shutil.copytree(tmp / "bundles", copy, ignore=shutil.ignore_patterns(".*"))
    bundle = copy / data["bisect_id"]
    verify = [sys.executable, "-m", "cli", "verify", str(bundle)]
    ok = subprocess.run(verify, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{len(data['members'])} member bundles" in ok.stdout
    assert set(data["member_manifests"]) == set(data["members"])
    # bisect.json says a bad probe was good (which would move the first bad commit): its
    # member says otherwise
    forged = json.loads((bundle / "bisect.json").read_text())
    row = next(p for p in forged["probes"] if p["value"] == "bad" and p["bundle_id"])
    row["value"], row["verdict"] = "good", "parity"
    original = (bundle / "bisect.json").read_text()
    (bundle / "bisect.json").write_text(json.dumps(forged))
    lied = subprocess.run(verify, capture_output=True, text=True, timeout=120)
    assert lied.returncode == 1 and "bisect.json says good (parity)" in lied.stdout, lied.stdout
    (bundle / "bisect.json").write_text(original)
    # a member's report edited after the fact: that member is named TAMPERED, exit 1
    member = copy / data["members"][0]
    (member / "report.md").write_text("all good\n")
    bad = subprocess.run(verify, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "TAMPERED" in bad.stdout and data["members"][0] in bad.stdout
    # and bisect.json's own listed report
    (member / "report.md").unlink()
    (bundle / "report.md").write_text("nothing to see\n")
    assert subprocess.run(verify, capture_output=True, text=True, timeout=120).returncode == 1
