"""Captures for real: the tiny test engines (a C program built by gcc, a Python program) run
through the CLI exactly as a user would, in a throw-away git checkout."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ENGINES = Path(__file__).parent / "engines"
PROFILE = ENGINES / "tiny-profile.toml"
SPEC = """\
name = "tiny"
item = "TINY-001"
phase = "A"
target = "{profile}"
pixel = [3, 5]
args = ["-fluence", "1e18", "-detpixels", "8", "-floatfile", "img.bin"]
"""


def make_repo(root: Path, bug: str = "") -> Path:
    repo = root / "repo"
    repo.mkdir()
    (repo / "tiny.c").write_bytes((ENGINES / "tiny.c").read_bytes())
    py = (ENGINES / "tiny.py").read_text().replace('BUG = ""', f'BUG = "{bug}"')
    (repo / "tiny.py").write_text(py)
    (repo / "spec.toml").write_text(SPEC.format(profile=PROFILE))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t",
                    "commit", "-qm", "init"], check=True)
    (repo / "untracked-notes.txt").write_text("the user's own file\n")
    return repo


def run_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def tree_digest(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if ".git" in p.relative_to(root).parts:
            continue
        out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest()
                                         if p.is_file() else "dir")
    return out


def bundles_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.fixture
def repo(tmp_path) -> Path:
    return make_repo(tmp_path)


def test_capture_parity_json_and_bundle(repo, tmp_path):
    before = tree_digest(repo)
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(tmp_path / "b"),
                   "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # quiet when not a terminal
    out = json.loads(proc.stdout)
    assert out["verdict"] == "parity" and out["status"] == "complete"
    assert out["first_divergence"] is None and out["first_chain_divergence"] is None
    assert out["keys_compared"] == 10
    assert out["missing"] == {"c": [], "py": []}
    assert {f["key"] for f in out["chain"]["factors"]} >= {"fluence_photons_per_m2", "I_pixel_final"}
    assert out["chain"]["consistency"]["c"]["consistent"] is True
    # The repo is byte-identical (tracked and untracked files; no Fdump.bin, no __pycache__).
    assert tree_digest(repo) == before
    [bundle] = bundles_in(tmp_path / "b")
    assert Path(out["bundle"]).name == bundle.name
    for name in ("manifest.json", "report.md", "traces.parquet", "comparison.parquet",
                 "chain.parquet", "metrics.parquet", "commands.parquet",
                 "logs/run-c.stdout", "logs/run-py.stdout", "logs/build-c.stderr"):
        assert (bundle / name).is_file(), name
    manifest = json.loads((bundle / "manifest.json").read_text())
    shared = manifest["arguments"]["shared"]
    assert shared == ["-fluence", "1e18", "-detpixels", "8", "-floatfile", "img.bin"]
    assert manifest["arguments"]["sha256"] == hashlib.sha256("\0".join(shared).encode()).hexdigest()
    for engine, argv in manifest["arguments"]["engines"].items():
        # the shared list appears verbatim; only the trace flag follows it
        i = argv.index(shared[0])
        assert argv[i:i + len(shared)] == shared
        assert argv[i + len(shared):] == ["-trace_pixel", "3", "5"]
    steps = [c["step"] for c in manifest["commands"]]
    assert steps == ["build-c", "run-c", "run-py"]
    run_c = manifest["commands"][1]
    assert run_c["exit_code"] == 0 and run_c["peak_rss_kb"] > 0
    assert set(run_c["env"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ", "PYTHONPATH",
                                 "PYTHONDONTWRITEBYTECODE", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                 "KMP_DUPLICATE_LIB_OK", "CUDA_VISIBLE_DEVICES"}
    produced = {o["path"] for o in run_c["outputs"]}
    assert {"img.bin", "Fdump.bin"} <= produced  # the stray file is recorded, in scratch
    assert manifest["target"]["repo_commit"] and manifest["target"]["repo_dirty"] is True
    assert manifest["environment"]["versions"]["gcc"]
    table = pq.read_table(bundle / "comparison.parquet").to_pylist()
    assert len(table) == 14 and all(r["match"] for r in table)
    assert pq.read_table(bundle / "traces.parquet").num_rows == 28


def test_secret_env_is_never_recorded(repo, tmp_path):
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": "hunter2", "NB_API_TOKEN": "hunter3"}
    proc = subprocess.run([sys.executable, "-m", "cli", "capture", "spec.toml", "--repo", ".",
                           "--bundles", str(tmp_path / "b"), "--json"], cwd=repo, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    [bundle] = bundles_in(tmp_path / "b")
    text = "".join(p.read_text(errors="replace") for p in bundle.rglob("*") if p.is_file())
    assert "hunter2" not in text and "hunter3" not in text
    assert "AWS_SECRET_ACCESS_KEY" not in text


def test_fluence_ignored_names_the_chain_factor(tmp_path):
    repo = make_repo(tmp_path, bug="fluence")
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(tmp_path / "b"),
                   "--json", cwd=repo)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["verdict"] == "divergence"
    assert out["first_chain_divergence"]["key"] == "fluence_photons_per_m2"
    assert out["first_chain_divergence"]["ratio"] == pytest.approx(1e6)
    assert out["first_divergence"]["key"] == "fluence_photons_per_m2"
    assert out["chain"]["consistency"]["py"]["consistent"] is True
    assert out["metrics"]["sum_ratio"] == pytest.approx(1e6, rel=1e-5)


def test_printed_factor_not_used_is_not_self_consistent(tmp_path):
    repo = make_repo(tmp_path, bug="lie")
    out = json.loads(run_cli("capture", "spec.toml", "--repo", ".", "--bundles",
                             str(tmp_path / "b"), "--json", cwd=repo).stdout)
    py = out["chain"]["consistency"]["py"]
    assert py["consistent"] is False
    assert py["ratio"] == pytest.approx(1e-6)
    assert out["chain"]["consistency"]["c"]["consistent"] is True


def test_crash_midway_gives_partial_bundle(tmp_path):
    repo = make_repo(tmp_path, bug="crash")
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(tmp_path / "b"),
                   "--json", cwd=repo)
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["status"] == "partial" and out["verdict"] == "incomplete"
    assert "fluence_photons_per_m2" in out["missing"]["py"]
    assert out["failed_commands"][0]["step"] == "run-py" and out["failed_commands"][0]["exit_code"] == 1
    assert any("run-py" in n and "after 5 trace lines" in n for n in out["notes"])
    [bundle] = bundles_in(tmp_path / "b")
    report = (bundle / "report.md").read_text()
    assert "dtype mismatch in tiny engine" in report  # the stderr tail is in the report


def test_never_overwrites_and_ids_differ(repo, tmp_path):
    from bundle.model.errors import BundleError
    from bundle.store.writer import open_staging

    bundles = tmp_path / "b"
    for _ in range(2):
        assert run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(bundles),
                       "--quiet", cwd=repo).returncode == 0
    first, second = bundles_in(bundles)
    assert first.name != second.name
    digest_before = tree_digest(first)
    with pytest.raises(BundleError, match="never overwritten"):
        open_staging(bundles, first.name)
    assert tree_digest(first) == digest_before


SLOW_PROFILE = """\
name = "slow"
[[engines]]
name = "c"
prefix = "TRACE_C:"
build = ["gcc", "-O2", "-o", "{{build}}/tiny", "{{repo}}/tiny.c", "-lm"]
run = ["{{build}}/tiny", "{{args}}"]
trace = ["-trace_pixel", "{{slow}}", "{{fast}}"]
[[engines]]
name = "py"
prefix = "TRACE_PY:"
run = ["{{python}}", "-c", "import time, sys; time.sleep({sleep}); print('TRACE_PY: steps 10')", "{{args}}"]
trace = []
"""


def test_sigkill_leaves_no_half_bundle(repo, tmp_path):
    profile = tmp_path / "slow.toml"
    profile.write_text(SLOW_PROFILE.format(sleep=30))
    bundles = tmp_path / "b"
    scratch = tmp_path / "tmp"  # a killed capture cannot remove its scratch: keep it in tmp_path
    scratch.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "cli", "capture", "spec.toml", "--target",
                             str(profile), "--repo", ".", "--bundles", str(bundles), "--quiet"],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, TMPDIR=str(scratch)))
    deadline = time.time() + 60
    while time.time() < deadline and not list((bundles / ".staging").glob("*/logs/run-py.stdout")):
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list((bundles / ".staging").glob("*")), "capture should have been mid-way"
    assert bundles_in(bundles) == []
    assert list(scratch.glob("nb-evidence-*")), "the scratch directory should have been in TMPDIR"


def test_timeout_is_recorded_and_exits_2(repo, tmp_path):
    profile = tmp_path / "slow.toml"
    profile.write_text(SLOW_PROFILE.format(sleep=30))
    t0 = time.time()
    proc = run_cli("capture", "spec.toml", "--target", str(profile), "--repo", ".",
                   "--bundles", str(tmp_path / "b"), "--timeout", "2", cwd=repo)
    assert time.time() - t0 < 25
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: --timeout 2") and "run-py" in line
    [bundle] = bundles_in(tmp_path / "b")  # the evidence so far is kept, as a partial bundle
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["status"] == "partial"
    assert [c["timed_out"] for c in manifest["commands"]] == [False, False, True]


@pytest.mark.parametrize("mutate, needle", [
    (lambda s: s + 'tolerence = 1\n', "unknown field tolerence"),
    (lambda s: s.replace('name = "tiny"', 'name = "tiny'), "not valid TOML"),
    (lambda s: s.replace('args = [', 'argz = ['), "unknown field argz"),
    (lambda s: s.replace("pixel = [3, 5]", "pixel = [3, 9]"), "outside the image"),
    (lambda s: s + '[inputs]\nfiles = ["missing.hkl"]\n', "input file missing.hkl not found"),
])
def test_bad_spec_one_line_exit_2_nothing_written(repo, tmp_path, mutate, needle):
    spec = repo / "bad.toml"
    spec.write_text(mutate((repo / "spec.toml").read_text()))
    proc = run_cli("capture", "bad.toml", "--repo", ".", "--bundles", str(tmp_path / "b"), cwd=repo)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "bad.toml" in lines[0], proc.stderr
    assert not (tmp_path / "b").exists() or bundles_in(tmp_path / "b") == []


def test_missing_spec_and_missing_binary(repo, tmp_path):
    proc = run_cli("capture", "nope.toml", "--repo", ".", cwd=repo)
    assert proc.returncode == 2 and "nope.toml: spec file not found" in proc.stderr
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--c-bin", "/no/such/binary",
                   "--bundles", str(tmp_path / "b"), cwd=repo)
    assert proc.returncode == 2 and "--c-bin /no/such/binary" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_profile_cannot_change_the_shared_arguments(repo, tmp_path):
    profile = tmp_path / "p.toml"
    profile.write_text(PROFILE.read_text().replace('run = ["{build}/tiny", "{args}"]',
                                                   'run = ["{build}/tiny", "{args}", "-fluence", "1"]'))
    proc = run_cli("capture", "spec.toml", "--target", str(profile), "--repo", ".", cwd=repo)
    assert proc.returncode == 2 and "identical argument list" in proc.stderr
    spec = repo / "clash.toml"
    spec.write_text((repo / "spec.toml").read_text().replace('"img.bin"]', '"img.bin", "-trace_pixel", "1", "1"]'))
    proc = run_cli("capture", "clash.toml", "--repo", ".", cwd=repo)
    assert proc.returncode == 2 and "already sets" in proc.stderr


def test_dry_run_prints_plan_and_runs_nothing(repo, tmp_path):
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(tmp_path / "b"),
                   "--dry-run", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "[build-c]" in proc.stdout and "[run-py]" in proc.stdout and "-trace_pixel 3 5" in proc.stdout
    assert not (tmp_path / "b").exists()


def test_reused_c_log_and_py_only(repo, tmp_path):
    bundles = tmp_path / "b"
    assert run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(bundles), "-q",
                   cwd=repo).returncode == 0
    [first] = bundles_in(bundles)
    c_log = first / "logs" / "run-c.stdout"
    proc = run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(bundles), "--json",
                   "--c-log", str(c_log), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["verdict"] == "parity"
    second = [b for b in bundles_in(bundles) if b != first][0]
    manifest = json.loads((second / "manifest.json").read_text())
    assert [c["step"] for c in manifest["commands"]] == ["run-py"]
    c_info = next(e for e in manifest["engines"] if e["name"] == "c")
    assert c_info["reused_log"]["sha256"] == hashlib.sha256(c_log.read_bytes()).hexdigest()


def test_compare_offline_any_prefixes(tmp_path):
    a = tmp_path / "a.log"
    b = tmp_path / "b.log"
    a.write_text("banner\nTRACE_C: steps 10\nTRACE_C: polar 0.5\n 50% done\nTRACE_C: omega_pixel 1e-6\n")
    b.write_text("TRACE_PY: steps 10\r\nTRACE_PY: polar 0.6\r\nTRACE_PY: omega_pixel 1e-6\r\n")
    proc = run_cli("compare", str(a), str(b), "--json", "--out", str(tmp_path / "cmp"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["verdict"] == "divergence"
    assert out["first_divergence"]["key"] == "polar"
    assert out["first_divergence"]["c"] == 0.5 and out["first_divergence"]["py"] == 0.6
    assert (tmp_path / "cmp" / "comparison.parquet").is_file()
    # the same --out again is refused, the first result kept
    again = run_cli("compare", str(a), str(b), "--out", str(tmp_path / "cmp"), cwd=tmp_path)
    assert again.returncode == 2 and "--out" in again.stderr
    proc = run_cli("compare", str(a), str(a), "--json", cwd=tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["verdict"] == "parity"
    empty = tmp_path / "empty.log"
    empty.write_text("no trace here\n")
    proc = run_cli("compare", str(a), str(empty), cwd=tmp_path)
    assert proc.returncode == 2 and "empty.log" in proc.stderr and "Traceback" not in proc.stderr


def test_show_prints_summary(repo, tmp_path):
    bundles = tmp_path / "b"
    run_cli("capture", "spec.toml", "--repo", ".", "--bundles", str(bundles), "-q", cwd=repo)
    [bundle] = bundles_in(bundles)
    proc = run_cli("show", str(bundle), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "PARITY" in proc.stdout.upper()
    assert "fluence_photons_per_m2" in proc.stdout
