"""One run of a suite, executed on a Dask worker: the member capture (in-process, through
bundle.pipeline.capture, so it is a normal capture with the same plan, runner and bundle
format), its thresholds judged, and the drill-down per trace mode:

- ``failing`` (default): a run that fails its thresholds gets a SECOND member capture traced at
  the drill pixel (bundle.suite.drill), linked as ``trace_bundle``;
- ``all``: every run is traced (a second member at the brightest C pixel);
- ``none``: nothing is traced;
- a run with its own pixel (and a mode other than ``none``) is captured traced at once: its one
  member carries both the image and the trace.

A run whose engine fails (bad arguments) or whose capture is refused becomes status "error" with
one line: the suite goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bundle.capture.options import CaptureOptions
from bundle.capture.target import load_target
from bundle.model.errors import UserError
from bundle.model.files import one_line
from bundle.model.hashing import sha256_file
from bundle.model.records import CaptureResult
from bundle.pipeline import capture
from bundle.present.manifest import metrics_json
from bundle.suite import drill
from bundle.suite.judge import judge, run_metrics
from bundle.suite.members import member_spec
from bundle.suite.model import Run, RunOutcome, Suite


@dataclass(frozen=True)
class MemberJob:
    """Plain data a worker needs for one run (pickled to the worker)."""

    suite: Suite
    run: Run
    repo: str
    bundles: str
    run_key: str
    key_fields: dict[str, str]
    threads: int = 1
    trace: str = "failing"
    timeout: float | None = None
    reason: str = ""
    build_cache: str | None = None
    inputs: tuple[str, ...] = ()  # the repo files the args name (suites declaring no inputs)


def capture_options(job: MemberJob) -> CaptureOptions:
    """The member's options. The C engine is built once per suite (and per change of its
    sources) through the build cache (bundle.capture.buildcache), shared by every worker."""
    return CaptureOptions(repo=Path(job.repo), bundles=Path(job.bundles), timeout=job.timeout,
                          build_cache=job.build_cache)


def worker_name() -> str:
    try:
        from distributed import get_worker

        worker = get_worker()
        return str(worker.name if worker.name is not None else worker.address)
    except (ImportError, ValueError):
        import socket

        return socket.gethostname()


def manifest_sha256(bundle: Path) -> str:
    return sha256_file(bundle / "manifest.json")[1]


def failure_of(result: CaptureResult) -> str | None:
    """One line when the capture produced no image pair to judge (an engine failed)."""
    bad = [c for c in result.commands if not c.ok]
    if result.metrics is not None and not bad:
        return None
    if bad:
        c = bad[0]
        how = c.error or (f"exit {c.exit_code}" if c.exit_code is not None else "failed")
        return one_line(f"{c.step}: {how}" + (f"; {result.notes[0]}" if result.notes else ""))
    return one_line(result.notes[0] if result.notes else "no image metrics (no image pair)")


def trace_fields(result: CaptureResult) -> dict[str, Any]:
    first = result.comparison.first_divergence if result.comparison else None
    roots = tuple(k.key for k in result.roots.of("root")) if result.roots else ()
    return {"verdict": result.verdict, "first_divergence": first.key if first else None,
            "roots": roots}


def peak_rss(*results: CaptureResult) -> int | None:
    values = [c.peak_rss_kb for r in results for c in r.commands if c.peak_rss_kb is not None]
    return max(values) if values else None


def run_member(job: MemberJob) -> RunOutcome:
    """Capture one run (module docstring) and say what it came to."""
    started = time.monotonic()
    base = RunOutcome(id=job.run.id, case=job.run.case, run=job.run.name, status="error",
                      bundle=None, manifest_sha256=None, run_key=job.run_key,
                      key_fields=dict(job.key_fields), thresholds=job.run.thresholds.to_data(),
                      worker=worker_name(), reason=job.reason)
    try:
        outcome = _run(job, base)
    except UserError as exc:
        outcome = replace(base, error=one_line(exc))
    return replace(outcome, wall_s=round(time.monotonic() - started, 3))


def _run(job: MemberJob, base: RunOutcome) -> RunOutcome:
    profile = load_target(job.suite.target)
    options = capture_options(job)
    own = job.run.pixel if job.trace != "none" else None
    spec = member_spec(job.suite, job.run, pixel=own, threads=job.threads, profile=profile,
                       inputs=job.inputs)
    result, path = capture(spec, profile, options)
    outcome = replace(base, bundle=path.name, manifest_sha256=manifest_sha256(path),
                      peak_rss_kb=peak_rss(result))
    error = failure_of(result)
    if error is not None:
        return replace(outcome, error=error)
    metrics = run_metrics(metrics_json(result.metrics))
    failed = judge(metrics, job.run.thresholds)
    outcome = replace(outcome, status="fail" if failed else "pass", metrics=metrics, failed=failed)
    if own is not None:
        return replace(outcome, pixel=own, pixel_reason=drill.OWN, **trace_fields(result))
    if job.trace == "all" or (job.trace == "failing" and failed):
        return _drill_down(job, outcome, profile, options, path, result)
    return outcome


def _drill_down(job: MemberJob, outcome: RunOutcome, profile, options: CaptureOptions,
                path: Path, first: CaptureResult) -> RunOutcome:
    """The second member, traced at the drill pixel, linked to the first."""
    c, py = drill.member_images(path)
    pixel, why = drill.choose_pixel("all" if job.trace == "all" else "failing", None, c, py)
    if pixel is None:
        return replace(outcome, pixel_reason=why)
    spec = member_spec(job.suite, job.run, pixel=pixel, threads=job.threads, profile=profile,
                       inputs=job.inputs)
    traced, trace_path = capture(spec, profile, options)
    return replace(outcome, pixel=pixel, pixel_reason=why, trace_bundle=trace_path.name,
                   trace_manifest_sha256=manifest_sha256(trace_path),
                   peak_rss_kb=peak_rss(first, traced), **trace_fields(traced))
