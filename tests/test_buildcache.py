"""The C build cache (bundle/capture/buildcache.py) on real gcc builds of the tiny test engine:
a miss builds and stores, a hit reuses the original build's record and binary, a changed source
misses, a failed build is cached, and two processes at once build once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bundle import pipeline
from bundle.capture.buildcache import build_key, cached_build
from bundle.capture.options import CaptureOptions
from bundle.capture.runner import run_step
from bundle.capture.spec import load_spec
from bundle.capture.target import load_target
from test_capture import PROFILE, bundles_in, make_repo, run_cli

REUSED = "reused the cached build"


def _capture(repo: Path, bundles: Path, cache: Path):
    spec, target = load_spec(repo / "spec.toml"), load_target(str(PROFILE))
    opts = CaptureOptions(repo=repo, bundles=bundles, build_cache=str(cache))
    return pipeline.capture(spec, target, opts)


def _reused(result) -> list[str]:
    return [n for n in result.notes if REUSED in n]


def test_one_build_for_many_captures_and_the_hit_records_the_original_build(tmp_path):
    repo, cache = make_repo(tmp_path), tmp_path / "cache"
    results = [_capture(repo, tmp_path / "b", cache) for _ in range(3)]
    assert [len(_reused(r)) for r, _ in results] == [0, 1, 1]
    builds = [next(c for c in r.commands if c.step == "build-c") for r, _ in results]
    # the command that really made the binary, not a fake record of a copy
    assert builds[1] == builds[0] and builds[2] == builds[0]
    assert all(r.verdict == results[0][0].verdict for r, _ in results)
    [entry] = [p for p in cache.iterdir() if p.is_dir()]
    assert f"cached build {entry.name[:12]} " in _reused(results[1][0])[0]
    # a bundle made from a cache hit is a bundle like any other: verify recomputes its claims
    hit_bundle = results[1][1]
    assert (hit_bundle / "logs" / "build-c.stdout").is_file()
    proc = run_cli("verify", str(hit_bundle), cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_bundle_made_from_a_hit_replays(tmp_path):
    repo, cache = make_repo(tmp_path), tmp_path / "cache"
    _capture(repo, tmp_path / "b0", cache)
    _result, hit = _capture(repo, tmp_path / "b1", cache)
    proc = run_cli("replay", str(hit), "--bundles", str(tmp_path / "r"), "--json", "--trust",
                   cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["reproduced"] is True
    [new] = bundles_in(tmp_path / "r")
    assert not any(REUSED in n for n in json.loads((new / "manifest.json").read_text())["notes"])


def test_a_changed_source_misses(tmp_path):
    repo, cache = make_repo(tmp_path), tmp_path / "cache"
    _capture(repo, tmp_path / "b", cache)
    (repo / "tiny.c").write_text((repo / "tiny.c").read_text() + "/* a harmless comment */\n")
    result, _ = _capture(repo, tmp_path / "b", cache)
    assert _reused(result) == []
    result, _ = _capture(repo, tmp_path / "b", cache)
    assert len(_reused(result)) == 1
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2


def test_a_failed_build_is_cached_and_its_runs_skipped(tmp_path):
    repo, cache = make_repo(tmp_path), tmp_path / "cache"
    (repo / "tiny.c").write_text("this is not C\n")
    first, _ = _capture(repo, tmp_path / "b", cache)
    second, path = _capture(repo, tmp_path / "b", cache)
    b1, b2 = (next(c for c in r.commands if c.step == "build-c") for r in (first, second))
    assert not b1.ok and b2 == b1 and len(_reused(second)) == 1
    assert next(c for c in second.commands if c.step == "run-c").error == "not run: build-c failed"
    assert "error" in (path / "logs" / "build-c.stderr").read_text()


_TWO_AT_ONCE = """
import json, sys, time
from pathlib import Path
from bundle.capture.buildcache import cached_build
from bundle.capture.plan import Step
from bundle.capture.runner import run_step
repo, scratch, cache = (Path(a) for a in sys.argv[1:4])
step = Step(name="build-c", role="build", engine="c",
            argv_template=("gcc", "-O2", "-o", "{scratch}/build/tiny", "{repo}/tiny.c", "-lm"),
            argv=("gcc", "-O2", "-o", f"{scratch}/build/tiny", f"{repo}/tiny.c", "-lm"),
            cwd=f"{scratch}/build", sources=(("repo", "tiny.c"),))
roots = {"repo": str(repo), "scratch": str(scratch)}
(scratch / "staging").mkdir(parents=True)
def run():
    time.sleep(0.5)  # long enough that the other process is waiting on the lock
    return run_step(step, scratch / "staging", roots)
got = cached_build(step, scratch / "staging", roots, cache, run)
print(json.dumps({"hit": got.hit, "start": got.record.start_utc, "ok": got.record.ok,
                  "binary": (scratch / "build" / "tiny").is_file()}))
"""


def test_two_processes_at_once_build_once(tmp_path):
    repo, cache = make_repo(tmp_path), tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, "-c", _TWO_AT_ONCE, str(repo),
                               str(tmp_path / f"s{i}"), str(cache)], stdout=subprocess.PIPE,
                              text=True) for i in range(2)]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert sorted(o["hit"] for o in outs) == [False, True]
    assert outs[0]["start"] == outs[1]["start"]  # one build, recorded once, seen twice
    assert all(o["ok"] and o["binary"] for o in outs)


def test_the_key_keeps_the_template_not_the_scratch_path(tmp_path):
    repo = make_repo(tmp_path)
    spec, target = load_spec(repo / "spec.toml"), load_target(str(PROFILE))
    opts = CaptureOptions(repo=repo, bundles=tmp_path / "b")
    keys = []
    for name in ("s1", "s2"):
        (tmp_path / name).mkdir()
        plan = pipeline.plan_capture(spec, target, opts, tmp_path / name)
        build = next(s for s in plan.steps if s.role == "build")
        keys.append(build_key(build, plan.roots()))
    assert keys[0] == keys[1]
    # and a miss then a hit through cached_build itself, the binary copied into the new cwd
    staging = tmp_path / "staging"
    staging.mkdir()
    plan = pipeline.plan_capture(spec, target, opts, tmp_path / "s1")
    build = next(s for s in plan.steps if s.role == "build")
    first = cached_build(build, staging, plan.roots(), tmp_path / "c",
                         lambda: run_step(build, staging, plan.roots()))
    plan2 = pipeline.plan_capture(spec, target, opts, tmp_path / "s2")
    build2 = next(s for s in plan2.steps if s.role == "build")
    second = cached_build(build2, staging, plan2.roots(), tmp_path / "c",
                          lambda: (_ for _ in ()).throw(AssertionError("must not build")))
    assert (first.hit, second.hit) == (False, True)
    assert (tmp_path / "s2" / "build" / "tiny").stat().st_mode & 0o111


def _roi_capture(repo: Path, bundles: Path, cache: Path, spec_path: Path):
    spec, target = load_spec(spec_path), load_target("minibragg")
    return pipeline.capture(spec, target, CaptureOptions(repo=repo, bundles=bundles,
                                                         build_cache=str(cache)))


def test_prepare_inputs_is_cached_by_its_modules_package_and_rerun_when_it_changes(tmp_path):
    """The ROI spec prepares its inputs with `{python} -m minibragg.inputs`: the step records
    the package's files as its inputs, a second capture reuses the prepared inputs, and an edit
    to the package makes them again."""
    import shutil

    root = Path(__file__).resolve().parent.parent
    repo, cache = tmp_path / "repo", tmp_path / "cache"
    shutil.copytree(root / "minibragg", repo / "minibragg", ignore=shutil.ignore_patterns("__pycache__"))
    spec_path = root / "manifests" / "minibragg-roi.toml"
    first, _ = _roi_capture(repo, tmp_path / "b", cache, spec_path)
    prepare = next(c for c in first.commands if c.step == "prepare-inputs")
    assert {"minibragg/inputs.py", "minibragg/__init__.py"} <= {f.path for f in prepare.inputs}
    second, _ = _roi_capture(repo, tmp_path / "b", cache, spec_path)
    assert any("prepare-inputs: reused the cached inputs" in n for n in second.notes)
    assert next(c for c in second.commands if c.step == "prepare-inputs") == prepare
    assert second.verdict == first.verdict == "parity"
    with open(repo / "minibragg" / "inputs.py", "a") as fh:
        fh.write("# a changed input maker\n")
    third, _ = _roi_capture(repo, tmp_path / "b", cache, spec_path)
    assert not any("prepare-inputs: reused" in n for n in third.notes)


def test_a_prepare_command_whose_sources_cannot_be_named_is_never_cached():
    from bundle.capture.plan import module_sources

    assert module_sources(("{python}", "-m", "a.b", "--out", "{inputs}")) == (
        ("repo", "a/b.py"), ("repo", "a/b/__main__.py"))
    assert module_sources(("{python}", "make_inputs.py")) == ()
    assert module_sources(("sh", "-c", "curl x | sh")) == ()
