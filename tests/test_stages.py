"""Each stage of a capture called alone, on real files: the tiny test engines built by gcc and
run by Python, their logs in a real staging directory (bundle/capture/stages.py and the later
stages in bundle/pipeline.py)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from bundle import pipeline
from bundle.capture import environment
from bundle.capture.options import CaptureOptions
from bundle.capture.spec import load_spec
from bundle.capture.stages import Collected, collect_traces, run_steps
from bundle.capture.target import load_target
from bundle.model.records import EngineRun
from bundle.present.preload import Preload
from bundle.store.verify import verify_bundle
from bundle.store.writer import new_bundle_id
from capture_fixtures import REF_TRACE, make_trace
from test_capture import PROFILE, make_repo


def _planned(tmp_path: Path, bug: str = "", **options):
    repo = make_repo(tmp_path, bug)
    spec, target = load_spec(repo / "spec.toml"), load_target(str(PROFILE))
    opts = CaptureOptions(repo=repo, bundles=tmp_path / "bundles", **options)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    staging = tmp_path / "staging"
    staging.mkdir()
    return pipeline.plan_capture(spec, target, opts, scratch), opts, staging


def test_run_steps_records_every_step_and_reports_each_engine_run(tmp_path):
    plan, opts, staging = _planned(tmp_path)
    ran: list[str] = []
    records = run_steps(plan, staging, timeout=60, on_run=ran.append)
    assert [r.step for r in records] == [s.name for s in plan.steps]
    assert all(r.ok for r in records), [(r.step, r.exit_code, r.error) for r in records]
    assert ran == ["c", "py"]
    assert (staging / "logs" / "run-c.stdout").read_text().count("TRACE_C:") >= 10


def test_run_steps_skips_what_a_failed_build_required(tmp_path):
    plan, opts, staging = _planned(tmp_path)
    (Path(plan.repo) / "tiny.c").write_text("this is not C\n")
    ran: list[str] = []
    records = {r.step: r for r in run_steps(plan, staging, timeout=60, on_run=ran.append)}
    build = next(s for s in plan.steps if s.role == "build")
    assert not records[build.name].ok
    assert records["run-c"].error == f"not run: {build.name} failed" and records["run-c"].exit_code is None
    assert ran == ["py"]


def test_collect_traces_parses_each_engine_and_notes_a_failure(tmp_path):
    plan, opts, staging = _planned(tmp_path)
    (Path(plan.repo) / "tiny.c").write_text("this is not C\n")
    records = run_steps(plan, staging, timeout=60)
    got = collect_traces(plan, opts, records, staging)
    assert got.ran == ["c", "py"]
    assert got.traces["c"] is None and got.traces["py"] is not None
    assert got.failed
    assert got.runs[0].failed_steps == ("build-c", "run-c")
    assert "c: no trace lines with prefix TRACE_C: in logs/run-c.stdout" in got.notes
    assert got.engines[1]["trace_sha256"] and got.engines[1]["log"] == "logs/run-py.stdout"


def _collected(*names: str) -> Collected:
    traces = {n: make_trace(f"TRACE_{n.upper()}:", REF_TRACE) for n in names}
    if len(names) > 1:  # the second engine differs in F_cell
        items = [(k, tuple(x * 1.001 for x in v) if k == "F_cell" else v) for k, v in REF_TRACE]
        traces[names[1]] = make_trace(f"TRACE_{names[1].upper()}:", items)
    runs = tuple(EngineRun(engine=n, prefix=t.prefix, trace=t, image_path=None, failed_steps=())
                 for n, t in traces.items())
    return Collected(runs=runs, traces=traces, engines=tuple({"name": n} for n in names),
                     notes=(), failed=False)


def test_compare_stage_names_the_first_divergence(tmp_path):
    plan, _opts, _staging = _planned(tmp_path)
    comparison, notes = pipeline.compare_stage(plan, _collected("c", "py"))
    assert comparison.first_divergence.key == "F_cell"
    assert notes == ()
    assert pipeline.compare_stage(plan, _collected("py")) == (
        None, ("only py ran (single-engine capture): nothing to compare",))


def test_read_images_stage_reads_what_each_engine_wrote(tmp_path):
    plan, opts, staging = _planned(tmp_path)
    for engine, data in (("c", np.arange(64, dtype="<f4")), ("py", b"short")):
        (Path(plan.scratch) / engine).mkdir(parents=True, exist_ok=True)
        path = Path(plan.scratch) / engine / plan.image_arg
        path.write_bytes(data.tobytes() if isinstance(data, np.ndarray) else data)
    preload = Preload()
    with ThreadPoolExecutor(max_workers=2) as background:
        reader = pipeline.ImageReader(plan, background, preload)
        reader.start("c")
        reader.start("py")
        read, notes, failed = pipeline.read_images_stage(plan, opts, _collected("c", "py"), reader)
    assert list(read) == ["c"] and read["c"].image.shape == (8, 8)
    assert failed and len(notes) == 1 and notes[0].startswith("py: ") and "img.bin" in notes[0]


def test_render_and_write_stages_make_a_bundle_that_verifies(tmp_path):
    plan, opts, staging = _planned(tmp_path)
    records = run_steps(plan, staging, timeout=60)
    collected = collect_traces(plan, opts, records, staging)
    comparison, _notes = pipeline.compare_stage(plan, collected)
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    start = datetime.now(timezone.utc)
    bundle_id = new_bundle_id(plan.spec.name, plan.spec.args_sha256(), start)
    env_info = environment.collect(opts.python, {"available": False, "device": None})
    git = environment.git_state(Path(plan.repo))
    result = pipeline.capture_result(plan, opts, bundle_id, start, staging,
                                     bundles, collected, comparison, records, env_info, git)
    assert result.verdict == "parity" and result.status == "complete"
    with ThreadPoolExecutor(max_workers=2) as background:
        result, jobs = pipeline.render_stage(result, collected, {}, staging / "plots",
                                             background, [])
    assert result.metrics is None and jobs == []
    final = pipeline.write_stage(plan, opts, result, collected, {}, staging, bundles, git,
                                 plot_paths={})
    assert final == bundles / bundle_id and not staging.exists()
    manifest = json.loads((final / "manifest.json").read_text())
    assert manifest["arguments"] == pipeline.plan_arguments(plan)
    assert [e["name"] for e in manifest["engines"]] == ["c", "py"]
    checked = verify_bundle(final)
    assert checked.intact and not checked.schema_problems, checked
