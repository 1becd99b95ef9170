"""One capture: plan -> recorded runs -> traces -> comparison, chain, metrics -> bundle.

A request (bundle.capture.request) says which mode: ``execute`` plans only (dry run), runs the
capture inside the pinned image (bundle.container), or runs it here. Here the capture is a row of
named stages, each a function that can be called alone (tests/test_stages.py): run_steps and
collect_traces (bundle.capture.stages), then compare_stage, read_images_stage and place_images,
capture_result, render_stage and write_stage below; a stage that must come before the commands
(a preflight) goes in _run_and_write ahead of run_steps. Images are read while the next engine
runs and plots drawn while the metrics are computed, on the capture's background threads.

This module orchestrates; each concern it calls lives in its own module. It returns data and
never prints: progress goes out through ``on_event``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from bundle.capture import environment, preflight
from bundle.analysis.compare import compare_traces
from bundle.analysis.roots import classify
from bundle.model.errors import ContainerError, SpecError, TargetError, UserError
from bundle.model.hashing import digest, trace_digest  # noqa: F401 (replay imports it from here)
from bundle.capture.plan import Plan, build_plan, describe, detector_shape, resolve_inputs
from bundle.capture.request import CaptureRequest, load_request
from bundle.present.preload import Preload
from bundle.model.records import CaptureResult, CommandRecord, Comparison, FileDigest, Trace
from bundle.capture.runner import Event, EventSink
from bundle.capture.stages import Collected, collect_traces, run_steps
from bundle.capture.spec import Spec
from bundle.capture.target import TargetProfile
from bundle.analysis.trace import parse_file
from bundle.capture.options import CaptureOptions
from bundle.store.writer import (discard_staging, fsync_file, new_bundle_id, open_staging,
                                 user_path, write_bundle)

if TYPE_CHECKING:
    from bundle.capture.images import EngineImage

# The analysis and rendering modules (numpy, Pillow, matplotlib's colour maps, pyarrow, rocrate)
# are imported inside the functions that use them: a capture imports them in the background
# while its first commands run (bundle.present.preload).


@dataclass(frozen=True)
class CapturePlan:
    """What a request will do, before anything runs (``--dry-run`` prints it): the steps as
    planned on this machine, and in the container mode the image and the capture run inside."""

    request: CaptureRequest
    plan: Plan
    image: str | None = None
    inner_argv: tuple[str, ...] = ()
    mounts: tuple = ()  # bundle.container.seam.Mount

    def lines(self) -> list[str]:
        import shlex

        if not self.request.in_container:
            return describe(self.plan)
        head = [f"# in container {self.image}, no network, as the invoking user"]
        head += [f"# mount {m.source} -> {m.target} ({'ro' if m.read_only else 'rw'})"
                 for m in self.mounts]
        head.append(f"nb-evidence {shlex.join(self.inner_argv)}")
        head.append("# which runs these steps (paths as planned here; inside, the repo is /repo):")
        return head + describe(self.plan)


@dataclass(frozen=True)
class CaptureOutcome:
    summary: dict | None  # the --json object; None for a dry run, which runs nothing
    plan: CapturePlan | None = None  # a dry run's plan


def plan_request(request: CaptureRequest) -> CapturePlan:
    """The plan of a request, without running, building or connecting to anything."""
    spec, profile = load_request(request)
    scratch = Path(tempfile.gettempdir()) / "nb-evidence-<scratch>"
    plan = plan_capture(spec, profile, request.options, scratch)
    if not request.in_container:
        return CapturePlan(request, plan)
    from bundle.container.docker_seam import image_content, project_root
    from bundle.container.inner import inner_capture

    image = request.image
    if image is None:
        try:
            image = image_content(project_root()).tag
        except ContainerError as exc:
            image = f"(this checkout's content tag, not computable: {exc})"
    argv, mounts = inner_capture(request)
    return CapturePlan(request, plan, image, tuple(argv), tuple(mounts))


def execute(request: CaptureRequest, on_event: EventSink | None = None) -> CaptureOutcome:
    """Carry out a request in the mode it names: a dry run only plans; in the container mode
    the capture runs inside the pinned image; otherwise here."""
    if request.dry_run:
        return CaptureOutcome(None, plan_request(request))
    spec, profile = load_request(request)
    refuse_missing_gpu(spec, request.option("py", "device"))
    if request.in_container:
        from bundle.container.incontainer import capture_in_container

        return CaptureOutcome(capture_in_container(request, on_event=on_event).result)
    result, path = capture(spec, profile, request.options, on_event=on_event)
    from bundle.present.manifest import result_json

    return CaptureOutcome(result_json(result, user_path(path)))


def refuse_missing_gpu(spec: Spec, py_device: str | None) -> None:
    """A CUDA capture on a machine without a GPU is refused before anything runs (issue 16)."""
    refusal = preflight.device_refusal(spec, environment.gpu_present(), py_device)
    if refusal:
        raise UserError(refusal)


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
    check_sources(target, options)
    for engine, binary in options.prebuilt.items():
        target.engine(engine)
        if not Path(binary).is_file():
            raise TargetError(f"--c-bin {binary}: engine binary not found")
    for engine, log in options.reuse_logs.items():
        profile = target.engine(engine)
        parse_file(log, profile.prefix)  # raises TraceError naming the log when it has no trace


def check_sources(target: TargetProfile, options: CaptureOptions) -> None:
    """Each engine that will be built or run needs its sources in the repo: a missing one is the
    wrong --repo, said before anything runs (not an incomplete bundle with no reason)."""
    for engine in target.engines:
        if engine.name in options.reuse_logs or (options.engines is not None
                                                 and engine.name not in options.engines):
            continue
        sources = engine.sources if engine.name not in options.prebuilt else ()
        missing = next((s for s in sources if not (options.repo / s).is_file()), None)
        if missing is not None:
            raise TargetError(f"--repo {options.repo}: {missing} not found (target {target.name}"
                              f", engine {engine.name} needs it)")


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
    try:
        scratch = Path(tempfile.mkdtemp(prefix="nb-evidence-"))
    except OSError as exc:
        raise io_error(exc, Path(tempfile.gettempdir())) from None
    try:
        plan = plan_capture(spec, target, options, scratch)
        if adjust_plan is not None:
            plan = adjust_plan(plan)
        staging = open_staging(bundles, bundle_id)
        try:
            return _capture(plan, options, bundle_id, start, staging, bundles, emit, preload)
        except BaseException as exc:
            # Staging is not a bundle; leave nothing half-made where bundles are listed.
            discard_staging(staging)
            if isinstance(exc, OSError):  # a full disk, a read-only or forbidden directory
                raise io_error(exc, bundles) from None
            raise
    finally:
        if not options.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def io_error(exc: OSError, where: Path) -> UserError:
    """An I/O failure as one line naming the path (the file the system names, else ``where``)."""
    from bundle.model.files import one_line

    path = exc.filename or where
    return UserError(f"{path}: cannot write: {exc.strerror or one_line(exc)}; nothing was kept")


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
    """The stages in order: run steps, collect traces, compare, read images, render, write."""
    env_info = environment.collect(options.python, _cuda())
    git = environment.git_state(Path(plan.repo))
    reader = ImageReader(plan, background, preload)
    reused: list[str] = []
    records = run_steps(plan, staging, timeout=options.timeout, emit=emit, on_run=reader.start,
                        build_cache=Path(options.build_cache) if options.build_cache else None,
                        on_note=reused.append)
    preload.wait()
    collected = collect_traces(plan, options, records, staging)
    collected = replace(collected, notes=tuple(options.notes) + tuple(reused) + collected.notes)
    comparison, compare_notes = compare_stage(plan, collected, emit)
    # Every independent divergence, not just the first (bundle.analysis.roots).
    roots = classify(comparison, plan.target.graph, plan.spec.amplification) if comparison else None
    from bundle.present import plots

    # The bar chart and key graph need only the comparison: drawn while the images are read.
    plot_dir = staging / "plots"
    bar_jobs = plots.bar_chart_job(comparison, plot_dir) + plots.key_graph_job(roots, plot_dir)
    pending = _draw_in_background(background, bar_jobs, plot_dir)
    read, image_notes, image_failed = read_images_stage(plan, options, collected, reader)
    collected = replace(collected, notes=collected.notes + compare_notes + image_notes,
                        failed=collected.failed or image_failed)
    collected, known, flushes = place_images(plan, options, collected, read, records, staging,
                                             background)
    result = capture_result(plan, options, bundle_id, start, staging, bundles, collected,
                            comparison, records, env_info, git)
    result = replace(result, roots=roots)
    emit(Event("info", "render", "plots, image metrics, report, tables"))
    result, image_jobs = render_stage(result, collected, read, plot_dir, background,
                                      pending + flushes)
    final = write_stage(plan, options, result, collected, read, staging, bundles, git,
                        plot_paths=plots.plot_paths(bar_jobs + image_jobs), known=known)
    emit(Event("info", "bundle", str(final), ok=True))
    return result, final


class ImageReader:
    """Starts reading an engine's image as soon as its run ends (run_steps' ``on_run``), on
    the capture's background executor, once the heavy imports are in."""

    def __init__(self, plan: Plan, background: ThreadPoolExecutor, preload: Preload):
        self.plan, self.shape = plan, detector_shape(plan.spec.args)
        self.wanted = bool(plan.image_arg and self.shape)
        self._background, self._preload = background, preload
        self._images = None  # bundle.capture.images.EngineImages, once the first image is there

    def start(self, engine: str) -> None:
        image = Path(self.plan.scratch) / engine / self.plan.image_arg if self.wanted else None
        if image is None or not image.is_file():
            return
        if self._images is None:
            self._preload.wait()
            from bundle.capture.images import EngineImages
            self._images = EngineImages(self._background, self.shape)
        self._images.start(engine, image)

    def get(self, engine: str) -> EngineImage | None:
        return self._images.get(engine) if self._images is not None else None


def compare_stage(plan: Plan, collected: Collected,
                  emit: EventSink = lambda _e: None) -> tuple[Comparison | None, tuple[str, ...]]:
    """The first two engines' traces compared key by key (None when neither has a trace)."""
    ran, target, spec = collected.ran, plan.target, plan.spec
    if len(ran) == 1:
        return None, (f"only {ran[0]} ran (single-engine capture): nothing to compare",)
    if len(ran) < 2:
        return None, ()
    ref_name, cand_name = ran[0], ran[1]
    ref_t = collected.traces[ref_name] or Trace(prefix=target.engine(ref_name).prefix, entries=())
    cand_t = collected.traces[cand_name] or Trace(prefix=target.engine(cand_name).prefix, entries=())
    comparison = None
    if ref_t.entries or cand_t.entries:
        emit(Event("info", "compare", f"{ref_name} vs {cand_name}"))
        comparison = compare_traces(ref_t, cand_t, ref_name, cand_name, spec.tolerance,
                                    spec.per_key)
    notes: tuple[str, ...] = ()
    if len(ran) > 2:
        notes = (f"engines beyond the first two ({', '.join(ran[2:])}) were run and "
                 f"recorded but only {ref_name} vs {cand_name} is compared",)
    return comparison, notes


def read_images_stage(plan: Plan, options: CaptureOptions, collected: Collected,
                      reader: ImageReader) -> tuple[dict[str, EngineImage], tuple[str, ...], bool]:
    """Each engine's image that was read (waiting for it), the notes on those that were not, and
    whether one could not be read (a failure, unlike an engine that wrote none)."""
    read: dict[str, EngineImage] = {}
    notes: list[str] = []
    failed = False
    if not reader.wanted:
        return read, (), False
    for run in collected.runs:
        if run.engine in options.reuse_logs or run.failed_steps:
            continue
        got = reader.get(run.engine)
        if got is None:
            notes.append(f"{run.engine}: no image at {plan.image_arg}")
        elif got.error is not None:
            notes.append(f"{run.engine}: {got.error}")
            failed = True
        else:
            read[run.engine] = got
    return read, tuple(notes), failed


def compared_images(collected: Collected, read: Mapping[str, EngineImage]) -> tuple[str, ...]:
    """The two engines whose images are compared, or () when one of them has none."""
    ran = collected.ran
    return (ran[0], ran[1]) if len(ran) >= 2 and ran[0] in read and ran[1] in read else ()


def place_images(plan: Plan, options: CaptureOptions, collected: Collected,
                 read: Mapping[str, EngineImage], records: Sequence[CommandRecord], staging: Path,
                 background: ThreadPoolExecutor
                 ) -> tuple[Collected, dict[str, FileDigest], list[Future]]:
    """The compared images moved into the bundle (images/<engine>.bin), flushed in the
    background; returns the runs naming them, their digests and the pending flushes."""
    pair = compared_images(collected, read)
    known: dict[str, FileDigest] = {}
    flushes: list[Future] = []
    runs, engines = list(collected.runs), [dict(e) for e in collected.engines]
    if pair:
        (staging / "images").mkdir(exist_ok=True)
    for name in pair:
        rel = f"images/{name}.bin"
        known[rel] = _bundle_copy(read[name].path, staging / rel, rel, records, name,
                                  plan.image_arg, options.keep_scratch)
        # flushed to disk now, so the whole bundle's flush before the rename is quick
        flushes.append(background.submit(fsync_file, staging / rel))
        at = collected.ran.index(name)
        runs[at] = replace(runs[at], image_path=rel)
        engines[at]["image"] = rel
    return replace(collected, runs=tuple(runs), engines=tuple(engines)), known, flushes


def capture_result(plan: Plan, options: CaptureOptions, bundle_id: str, start: datetime,
                   staging: Path, bundles: Path, collected: Collected,
                   comparison: Comparison | None, records: Sequence[CommandRecord],
                   env_info: dict, git: dict) -> CaptureResult:
    """The result record: status, verdict, and what a reader needs of each failed command."""
    # A trace past the parser's caps (bundle.analysis.trace) was not compared in full: never parity.
    truncated = tuple(f"{name}: {t.truncated} key lines past the trace caps were counted, not compared"
                      for name, t in collected.traces.items() if t is not None and t.truncated)
    partial = (collected.failed or any(t is None for t in collected.traces.values())
               or bool(truncated))
    status = "partial" if partial else "complete"
    bundle_rel = user_path(bundles / bundle_id)
    stderr_tails = {r.step: _tail(staging / r.stderr.path) for r in records
                    if not r.ok and r.stderr is not None}
    return CaptureResult(
        bundle_id=bundle_id, status=status, verdict=verdict_of(comparison, partial),
        spec=plan.spec.to_data(), target=plan.target.name, pixel=plan.spec.pixel,
        engines=collected.runs, comparison=comparison, metrics=None, commands=tuple(records),
        environment=env_info, notes=collected.notes + truncated,
        reproduce=options.reproduce or f"nb-evidence replay {bundle_rel}",
        created_utc=start.isoformat().replace("+00:00", "Z"),
        extra={"stderr_tails": stderr_tails, "target": {"repo": plan.repo, **git}},
    )


def render_stage(result: CaptureResult, collected: Collected, read: Mapping[str, EngineImage],
                 plot_dir: Path, background: ThreadPoolExecutor,
                 pending: list[Future]) -> tuple[CaptureResult, list]:
    """Image metrics, then the image plots drawn in the background; waits for every pending
    job (a plot that failed raises here, as it would in the foreground)."""
    from bundle.analysis.metrics import image_metrics
    from bundle.present import plots

    pair = compared_images(collected, read)
    if pair:  # before the image plots start: on two cores they would only slow each other
        ref, cand = read[pair[0]], read[pair[1]]
        result = replace(result, metrics=image_metrics(
            ref.image, cand.image, pair[0], pair[1], result.pixel, ref.summary, cand.summary))
    images = {name: got.image for name, got in read.items()}
    jobs = plots.image_jobs(result, images, plot_dir,
                            pooled={n: got.pooled for n, got in read.items()},
                            summaries={n: got.summary for n, got in read.items()})
    for job in pending + _draw_in_background(background, jobs, plot_dir):
        job.result()
    return result, jobs


def write_stage(plan: Plan, options: CaptureOptions, result: CaptureResult, collected: Collected,
                read: Mapping[str, EngineImage], staging: Path, bundles: Path, git: dict, *,
                plot_paths: Mapping[str, str],
                known: Mapping[str, FileDigest] | None = None) -> Path:
    """Report, tables, crate and manifest into staging, then the rename into place."""
    from bundle.present.manifest import target_data

    host_repo = os.environ.get("NB_HOST_REPO") if result.environment.get("container") else None
    target = target_data(plan.target.name, plan.target.to_data(), plan.repo, git, host_repo)
    return write_bundle(staging, bundles, result, {n: got.image for n, got in read.items()},
                        target=target, arguments=plan_arguments(plan),
                        engines=list(collected.engines), inputs=input_digests(plan),
                        bundle_path=user_path(bundles / result.bundle_id),
                        replay_of=options.replay_of, trusted=options.trusted,
                        plot_paths=plot_paths, known=known)


def input_digests(plan: Plan) -> list[dict]:
    """The spec's input files as the engines read them (from the repo or the prepared inputs)."""
    inputs = []
    for f in plan.spec.inputs.files:
        origin = plan.input_origin.get(f)
        base = Path(plan.repo) if origin == "repo" else Path(plan.scratch) / "inputs"
        if (base / f).is_file():
            d = digest(base / f, f, "repo" if origin == "repo" else "input")
            inputs.append({"path": f, "root": d.root, "size": d.size, "sha256": d.sha256,
                           "origin": origin})
    return inputs


def plan_arguments(plan: Plan) -> dict:
    """The manifest's ``arguments``: the shared list, each engine's argv, each step's template."""
    from bundle.present.manifest import arguments_data

    return arguments_data(plan.shared_args, plan.spec.args_sha256(), plan.engine_argv,
                          {s.name: s.argv_template for s in plan.steps},
                          {"repo": plan.repo, "scratch": plan.scratch, "python": plan.python})


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
