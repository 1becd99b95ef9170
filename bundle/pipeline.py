"""One capture: plan -> recorded runs -> traces -> comparison, chain, metrics -> bundle.

This module orchestrates; each concern it calls lives in its own module (plan, runner, trace,
compare, metrics, report, plots, crate, tables, manifest, writer). It returns data and never
prints: progress goes out through ``on_event``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from bundle.capture import environment, preflight
from bundle.analysis.compare import compare_traces
from bundle.analysis.roots import classify
from bundle.model.errors import SpecError, TargetError, TraceError
from bundle.model.hashing import digest
from bundle.capture.plan import Plan, build_plan, detector_shape, resolve_inputs
from bundle.present.preload import Preload
from bundle.model.records import (CaptureResult, CommandRecord, Comparison, EngineRun, FileDigest,
                            Trace)
from bundle.capture.runner import Event, EventSink, run_step, skipped
from bundle.capture.spec import Spec
from bundle.capture.target import TargetProfile
from bundle.analysis.trace import parse_file
from bundle.capture.options import CaptureOptions
from bundle.store.writer import fsync_file, new_bundle_id, open_staging, user_path, write_bundle

if TYPE_CHECKING:
    from bundle.capture.images import EngineImage

# The analysis and rendering modules (numpy, Pillow, matplotlib's colour maps, pyarrow, rocrate)
# are imported inside the functions that use them: a capture imports them in the background
# while its first commands run (bundle.present.preload).


def check_inputs(spec: Spec, target: TargetProfile, options: CaptureOptions) -> None:
    """Everything that can be checked before anything runs, so bad input costs nothing."""
    if not options.repo.is_dir():
        raise SpecError(f"--repo {options.repo}: not a directory")
    shape = detector_shape(spec.args)
    if spec.pixel is not None and shape is not None:
        slow, fast = shape
        if not (0 <= spec.pixel[0] < slow and 0 <= spec.pixel[1] < fast):
            raise SpecError(f"{spec.source}: pixel {list(spec.pixel)} (slow, fast) is outside the "
                            f"image of {slow} slow x {fast} fast pixels")
    for engine, binary in options.prebuilt.items():
        target.engine(engine)
        if not Path(binary).is_file():
            raise TargetError(f"--c-bin {binary}: engine binary not found")
    for engine, log in options.reuse_logs.items():
        profile = target.engine(engine)
        parse_file(log, profile.prefix)  # raises TraceError naming the log when it has no trace


def plan_capture(spec: Spec, target: TargetProfile, options: CaptureOptions, scratch: Path) -> Plan:
    origin = resolve_inputs(spec, options.repo)
    runnable = tuple(e.name for e in target.engines
                     if e.name not in options.reuse_logs
                     and (options.engines is None or e.name in options.engines))
    return build_plan(spec, target, options.repo.resolve(), scratch, options.python, origin,
                      engines=runnable, prebuilt=options.prebuilt)


def _cuda() -> dict:
    # Without importing torch (seconds of start-up): device nodes tell whether a GPU is present.
    present = Path("/dev/nvidiactl").exists() or Path("/dev/dxg").exists()
    return {"available": present, "how": "device nodes (/dev/nvidiactl)"}


def trace_digest(trace: Trace | None) -> str | None:
    """sha256 over a trace's key lines as parsed (key and tokens), blind to every free line, so
    replay can tell an identical trace from one whose timings or banners changed."""
    if trace is None:
        return None
    h = hashlib.sha256()
    for e in trace.entries:
        h.update(("\t".join((e.key, *e.tokens)) + "\n").encode())
    return h.hexdigest()


def verdict_of(comparison: Comparison | None, failed: bool) -> str:
    if comparison is None:
        return "incomplete"
    statuses = {r.status for r in comparison.rows}
    if statuses & {"differ", "unparsed"}:
        return "divergence"
    if failed:
        return "incomplete"
    if statuses - {"match"}:
        return "divergence"
    return "parity"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def capture(spec: Spec, target: TargetProfile, options: CaptureOptions,
            on_event: EventSink | None = None,
            adjust_plan: Callable[[Plan], Plan] | None = None) -> tuple[CaptureResult, Path]:
    """Run the spec through every engine of the target and write one bundle. Returns the result
    and the bundle's path. Bad input raises before anything is written.

    ``adjust_plan`` sees the plan before anything runs and may refuse it or swap its steps
    (replay vets a manifest's commands this way, through this very same code path).
    """
    emit = on_event or (lambda _e: None)
    check_inputs(spec, target, options)
    # issue 17: the repo's declared dependencies, before anything runs (refused in a container)
    warned = preflight.enforce(options.repo, environment.container_info())
    options = replace(options, notes=options.notes + warned)
    preload = Preload()
    start = datetime.now(timezone.utc)
    bundle_id = new_bundle_id(spec.name, spec.args_sha256(), start)
    bundles = options.bundles.resolve()
    scratch = Path(tempfile.mkdtemp(prefix="nb-evidence-"))
    try:
        plan = plan_capture(spec, target, options, scratch)
        if adjust_plan is not None:
            plan = adjust_plan(plan)
        staging = open_staging(bundles, bundle_id)
        try:
            return _capture(plan, options, bundle_id, start, staging, bundles, emit, preload)
        except BaseException:
            # Staging is not a bundle; leave nothing half-made where bundles are listed.
            shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:
        if not options.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _capture(plan: Plan, options: CaptureOptions, bundle_id: str, start: datetime,
             staging: Path, bundles: Path, emit: EventSink,
             preload: Preload) -> tuple[CaptureResult, Path]:
    # Background threads: an engine's image is read while the next engine runs, and the plots
    # are drawn (and the images flushed to disk) while the last image is read and the metrics
    # computed (bundle.capture.images says why threads).
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="nb-capture") as background:
        return _run_and_write(plan, options, bundle_id, start, staging, bundles, emit,
                              background, preload)


def _run_and_write(plan: Plan, options: CaptureOptions, bundle_id: str, start: datetime,
                   staging: Path, bundles: Path, emit: EventSink, background: ThreadPoolExecutor,
                   preload: Preload) -> tuple[CaptureResult, Path]:
    spec, target = plan.spec, plan.target
    roots = {"repo": plan.repo, "scratch": plan.scratch}
    env_info = environment.collect(options.python, _cuda())
    git = environment.git_state(Path(plan.repo))
    known: dict[str, FileDigest] = {}  # bundle files already hashed (the images)
    shape = detector_shape(spec.args)
    images_wanted = bool(plan.image_arg and shape)
    engine_images = None  # bundle.capture.images.EngineImages, once the first image is there
    records: list[CommandRecord] = []
    done: dict[str, bool] = {}
    for step in plan.steps:
        failed_req = [r for r in step.requires if not done.get(r, False)]
        if failed_req:
            records.append(skipped(step, staging, f"{failed_req[0]} failed"))
            emit(Event("skip", step.name, f"{failed_req[0]} failed", ok=False))
            done[step.name] = False
            continue
        rec = run_step(step, staging, roots, timeout=options.timeout, on_event=emit)
        records.append(rec)
        done[step.name] = rec.ok
        if images_wanted and rec.ok and step.role == "run" and step.engine:
            image = Path(plan.scratch) / step.engine / plan.image_arg
            if image.is_file():
                if engine_images is None:
                    preload.wait()
                    from bundle.capture.images import EngineImages
                    engine_images = EngineImages(background, shape)
                engine_images.start(step.engine, image)

    preload.wait()
    from bundle.present import plots
    from bundle.analysis.metrics import image_metrics

    notes: list[str] = list(options.notes)
    runs: list[EngineRun] = []
    traces: dict[str, Trace | None] = {}
    engines_info = []
    failed_any = False
    for profile in target.engines:
        name = profile.name
        if options.engines and name not in options.engines and name not in options.reuse_logs:
            continue
        failed_steps = tuple(r.step for r in records if r.engine == name and not r.ok)
        failed_any |= bool(failed_steps)
        info: dict = {"name": name, "prefix": profile.prefix,
                      "options": dict(spec.engines.get(name, {})),
                      "argv": list(plan.engine_argv.get(name, ())),
                      "added": list(plan.engine_extras.get(name, ())),
                      "failed_steps": list(failed_steps), "image": None}
        if name in options.reuse_logs:
            src = Path(options.reuse_logs[name])
            log = staging / "logs" / f"reused-{name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, log)
            d = digest(log, f"logs/reused-{name}.log", "bundle")
            info["reused_log"] = {"source": str(src.resolve()), "sha256": d.sha256, "size": d.size}
            notes.append(f"{name}: trace reused from {src} (sha256 {d.sha256[:12]}), not re-run")
        else:
            log = staging / "logs" / f"run-{name}.stdout"
        if name in options.prebuilt:
            b = Path(options.prebuilt[name])
            bd = digest(b, str(b.resolve()), "absolute")
            info["binary"] = {"path": bd.path, "sha256": bd.sha256, "size": bd.size}
        info["log"] = log.relative_to(staging).as_posix()
        try:
            trace = parse_file(log, profile.prefix) if log.exists() else None
        except TraceError:
            trace = None
        if trace is None:
            notes.append(f"{name}: no trace lines with prefix {profile.prefix} in {info['log']}")
        for step_name in failed_steps:
            rec = next(r for r in records if r.step == step_name)
            how = rec.error or f"exited {rec.exit_code}"
            got = f" after {len(trace.entries)} trace lines" if trace is not None else ""
            notes.append(f"{name}: command {step_name} {how}{got}")
        traces[name] = trace
        info["trace_sha256"] = trace_digest(trace)
        runs.append(EngineRun(engine=name, prefix=profile.prefix, trace=trace, image_path=None,
                              failed_steps=failed_steps))
        engines_info.append(info)

    ran = [r.engine for r in runs]
    comparison = None
    if len(ran) >= 2:
        ref_name, cand_name = ran[0], ran[1]
        ref_t = traces[ref_name] or Trace(prefix=target.engine(ref_name).prefix, entries=())
        cand_t = traces[cand_name] or Trace(prefix=target.engine(cand_name).prefix, entries=())
        if ref_t.entries or cand_t.entries:
            emit(Event("info", "compare", f"{ref_name} vs {cand_name}"))
            comparison = compare_traces(ref_t, cand_t, ref_name, cand_name, spec.tolerance,
                                        spec.per_key)
        if len(ran) > 2:
            notes.append(f"engines beyond the first two ({', '.join(ran[2:])}) were run and "
                         f"recorded but only {ref_name} vs {cand_name} is compared")
    elif len(ran) == 1:
        notes.append(f"only {ran[0]} ran (single-engine capture): nothing to compare")
    # Every independent divergence, not just the first (bundle.analysis.roots).
    roots = classify(comparison, target.graph, spec.amplification) if comparison else None

    # The bar chart needs only the comparison: drawn while the images are still being read.
    plot_dir = staging / "plots"
    bar_jobs = plots.bar_chart_job(comparison, plot_dir) + plots.key_graph_job(roots, plot_dir)
    pending = _draw_in_background(background, bar_jobs, plot_dir)

    read: dict[str, EngineImage] = {}
    if images_wanted:
        for run in runs:
            if run.engine in options.reuse_logs or run.failed_steps:
                continue
            got = engine_images.get(run.engine) if engine_images is not None else None
            if got is None:
                notes.append(f"{run.engine}: no image at {plan.image_arg}")
            elif got.error is not None:
                notes.append(f"{run.engine}: {got.error}")
                failed_any = True
            else:
                read[run.engine] = got
    images = {name: got.image for name, got in read.items()}
    both = len(ran) >= 2 and ran[0] in read and ran[1] in read
    if both:
        img_dir = staging / "images"
        img_dir.mkdir(exist_ok=True)
        for name in (ran[0], ran[1]):
            rel = f"images/{name}.bin"
            known[rel] = _bundle_copy(read[name].path, staging / rel, rel, records, name,
                                      plan.image_arg, options.keep_scratch)
            # flushed to disk now, so the whole bundle's flush before the rename is quick
            pending.append(background.submit(fsync_file, staging / rel))
            runs[ran.index(name)] = replace(runs[ran.index(name)], image_path=rel)
            engines_info[ran.index(name)]["image"] = rel

    status = "partial" if (failed_any or any(t is None for t in traces.values())) else "complete"
    verdict = verdict_of(comparison, status == "partial")
    bundle_rel = user_path(bundles / bundle_id)
    reproduce = options.reproduce or f"nb-evidence replay {bundle_rel}"
    stderr_tails = {r.step: _tail(staging / r.stderr.path) for r in records
                    if not r.ok and r.stderr is not None}
    result = CaptureResult(
        bundle_id=bundle_id, status=status, verdict=verdict, spec=spec.to_data(),
        target=target.name, pixel=spec.pixel, engines=tuple(runs), comparison=comparison,
        metrics=None, commands=tuple(records), environment=env_info, notes=tuple(notes),
        reproduce=reproduce, created_utc=start.isoformat().replace("+00:00", "Z"),
        extra={"stderr_tails": stderr_tails, "target": {"repo": plan.repo, **git}}, roots=roots,
    )
    emit(Event("info", "render", "plots, image metrics, report, tables"))
    if both:  # before the image plots start: on two cores they would only slow each other
        ref, cand = read[ran[0]], read[ran[1]]
        result = replace(result, metrics=image_metrics(
            ref.image, cand.image, ran[0], ran[1], spec.pixel, ref.summary, cand.summary))
    image_plot_jobs = plots.image_jobs(result, images, plot_dir,
                                       pooled={n: got.pooled for n, got in read.items()},
                                       summaries={n: got.summary for n, got in read.items()})
    pending += _draw_in_background(background, image_plot_jobs, plot_dir)
    for job in pending:
        job.result()  # a plot that failed raises here, as it would in the foreground

    inputs = []
    for f in spec.inputs.files:
        origin = plan.input_origin.get(f)
        base = Path(plan.repo) if origin == "repo" else Path(plan.scratch) / "inputs"
        if (base / f).is_file():
            d = digest(base / f, f, "repo" if origin == "repo" else "input")
            inputs.append({"path": f, "root": d.root, "size": d.size, "sha256": d.sha256,
                           "origin": origin})
    target_data = {"name": target.name, "profile": target.to_data(), "repo": plan.repo, **git}
    if env_info.get("container") and os.environ.get("NB_HOST_REPO"):
        target_data["host_repo"] = os.environ["NB_HOST_REPO"]
    arguments = {"shared": list(plan.shared_args), "sha256": spec.args_sha256(),
                 "engines": {k: list(v) for k, v in plan.engine_argv.items()},
                 "templates": {s.name: list(s.argv_template) for s in plan.steps},
                 "roots": {"repo": plan.repo, "scratch": plan.scratch, "python": plan.python}}
    final = write_bundle(staging, bundles, result, images, target=target_data,
                         arguments=arguments, engines=engines_info, inputs=inputs,
                         bundle_path=bundle_rel, replay_of=options.replay_of,
                         plot_paths=plots.plot_paths(bar_jobs + image_plot_jobs), known=known)
    emit(Event("info", "bundle", str(final), ok=True))
    return result, final


def _draw_in_background(background: ThreadPoolExecutor, jobs: list, plot_dir: Path) -> list[Future]:
    if jobs:
        plot_dir.mkdir(parents=True, exist_ok=True)
    return [background.submit(draw) for _name, _path, draw in jobs]


def _bundle_copy(src: Path, dst: Path, rel: str, records: list[CommandRecord], engine: str,
                 image_arg: str, keep_scratch: bool) -> FileDigest:
    """Put an engine's image into the bundle and return its digest. The scratch copy goes away
    with the scratch directory, so it is moved (a rename on one file system) unless the user
    keeps the scratch; its sha256 is the one the runner recorded when the engine wrote it."""
    if keep_scratch:
        shutil.copyfile(src, dst)
    else:
        shutil.move(src, dst)
    run = next((r for r in records if r.engine == engine and r.role == "run"), None)
    recorded = next((o for o in (run.outputs if run else ()) if o.path == image_arg), None)
    size = dst.stat().st_size
    if recorded is not None and recorded.size == size:
        return FileDigest(path=rel, size=size, sha256=recorded.sha256, root="bundle")
    return digest(dst, rel, "bundle")
