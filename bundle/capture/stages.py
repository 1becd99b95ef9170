"""The first stages of one capture, each a function of its inputs: run the plan's steps, then
collect each engine's trace from what they left. (Comparing, reading the images, rendering and
writing are the later stages, in bundle.pipeline, above the analysis and presentation layers.)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from bundle.analysis.trace import parse_file
from bundle.capture.buildcache import cached_build
from bundle.capture.options import CaptureOptions
from bundle.capture.plan import Plan
from bundle.capture.runner import Event, EventSink, run_step, skipped
from bundle.capture.target import EngineProfile
from bundle.model.errors import SpecError, TraceError
from bundle.model.hashing import digest, trace_digest
from bundle.model.records import CommandRecord, EngineRun, Trace


def _quiet(_event: Event) -> None:
    return None


def run_steps(plan: Plan, staging: Path, *, timeout: float | None = None,
              emit: EventSink = _quiet,
              on_run: Callable[[str], None] | None = None, build_cache: Path | None = None,
              on_note: Callable[[str], None] | None = None) -> tuple[CommandRecord, ...]:
    """Run the plan's steps in order, logs into ``staging``; a step whose requirement failed is
    recorded as skipped. ``on_run(engine)`` is called as soon as an engine's run step succeeds
    (so its image can be read while the next engine runs). With ``build_cache``, build steps go
    through bundle.capture.buildcache; ``on_note`` hears each reuse, for the bundle's notes."""
    roots = {"repo": plan.repo, "scratch": plan.scratch}
    records: list[CommandRecord] = []
    done: dict[str, bool] = {}
    for step in plan.steps:
        failed_req = [r for r in step.requires if not done.get(r, False)]
        if failed_req:
            records.append(skipped(step, staging, f"{failed_req[0]} failed"))
            emit(Event("skip", step.name, f"{failed_req[0]} failed", ok=False))
            done[step.name] = False
            continue
        rec = _run_one(step, staging, roots, timeout, emit, build_cache, on_note)
        if step.role == "prepare":
            check_prepared(plan, rec)
        records.append(rec)
        done[step.name] = rec.ok
        if on_run is not None and rec.ok and step.role == "run" and step.engine:
            on_run(step.engine)
    return tuple(records)


def _run_one(step, staging: Path, roots: dict[str, str], timeout: float | None, emit: EventSink,
             build_cache: Path | None, on_note: Callable[[str], None] | None) -> CommandRecord:
    def run() -> CommandRecord:
        return run_step(step, staging, roots, timeout=timeout, on_event=emit)

    # a prepare step only with named sources (bundle.capture.buildcache's docstring)
    cacheable = step.role == "build" or (step.role == "prepare" and bool(step.sources))
    if build_cache is None or not cacheable:
        return run()
    got = cached_build(step, staging, roots, build_cache, run)
    if got.hit:
        emit(Event("start", step.name, "from the build cache"))
        emit(Event("end", step.name, got.note or "", ok=got.record.ok, wall_s=0.0))
        if on_note is not None and got.note:
            on_note(got.note)
    return got.record


def check_prepared(plan: Plan, record: CommandRecord) -> None:
    """An input the repo lacks must come out of the prepare command; one that exists nowhere is
    bad input (exit 2, no bundle), not a partial capture run without it."""
    inputs = Path(plan.scratch) / "inputs"
    for f, origin in plan.input_origin.items():
        if origin == "prepare" and not (inputs / f).is_file():
            how = "" if record.ok else f" ({record.error or f'it exited {record.exit_code}'})"
            raise SpecError(f"{plan.spec.source}: input file {f} is not in the repo and "
                            f"inputs.prepare did not make it{how}")


@dataclass(frozen=True)
class Collected:
    """Each engine's run as its logs tell it: ``engines`` is the manifest's per-engine record."""

    runs: tuple[EngineRun, ...]
    traces: Mapping[str, Trace | None]
    engines: tuple[dict, ...]
    notes: tuple[str, ...]
    failed: bool  # some engine's command failed

    @property
    def ran(self) -> list[str]:
        return [r.engine for r in self.runs]


def collect_traces(plan: Plan, options: CaptureOptions, records: Sequence[CommandRecord],
                   staging: Path) -> Collected:
    """Parse each engine's trace (its run's stdout, or the reused log copied into the bundle)
    and note what failed; engines left out of this capture are left out here too."""
    runs, traces, engines, notes = [], {}, [], []
    for profile in plan.target.engines:
        name = profile.name
        if options.engines and name not in options.engines and name not in options.reuse_logs:
            continue
        run, info, said = _engine_trace(plan, options, profile, records, staging)
        runs.append(run)
        traces[name] = run.trace
        engines.append(info)
        notes += said
    return Collected(runs=tuple(runs), traces=traces, engines=tuple(engines), notes=tuple(notes),
                     failed=any(r.failed_steps for r in runs))


def _engine_trace(plan: Plan, options: CaptureOptions, profile: EngineProfile,
                  records: Sequence[CommandRecord],
                  staging: Path) -> tuple[EngineRun, dict, list[str]]:
    name = profile.name
    failed_steps = tuple(r.step for r in records if r.engine == name and not r.ok)
    info: dict = {"name": name, "prefix": profile.prefix,
                  "options": dict(plan.spec.engines.get(name, {})),
                  "argv": list(plan.engine_argv.get(name, ())),
                  "added": list(plan.engine_extras.get(name, ())),
                  "failed_steps": list(failed_steps), "image": None}
    notes: list[str] = []
    if name in options.reuse_logs:
        log = _reuse_log(name, Path(options.reuse_logs[name]), staging, info, notes)
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
    info["trace_sha256"] = trace_digest(trace)
    run = EngineRun(engine=name, prefix=profile.prefix, trace=trace, image_path=None,
                    failed_steps=failed_steps)
    return run, info, notes


def _reuse_log(name: str, src: Path, staging: Path, info: dict, notes: list[str]) -> Path:
    log = staging / "logs" / f"reused-{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, log)
    d = digest(log, f"logs/reused-{name}.log", "bundle")
    info["reused_log"] = {"source": str(src.resolve()), "sha256": d.sha256, "size": d.size}
    notes.append(f"{name}: trace reused from {src} (sha256 {d.sha256[:12]}), not re-run")
    return log
