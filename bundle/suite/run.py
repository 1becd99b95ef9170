"""``nb-evidence suite``: every run of a suite as a member capture on the executor, the earlier
members reused where ``--resume`` allows, and the suite bundle written.

Order of work: everything that can be refused is refused before anything runs (flags, the suite
file, ``--only``, the repo); then the run keys; then resume's reuse; then the rest on Dask; then
the suite bundle. Progress goes out through ``on_event`` (SuiteEvent); nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

from bundle.capture.request import default_repo
from bundle.capture.target import load_target
from bundle.model.errors import SpecError, UserError
from bundle.model.files import one_line
from bundle.suite.executor import ExecutorConfig, default_workers, open_executor
from bundle.suite.key import run_key
from bundle.suite.members import member_spec
from bundle.suite.model import Run, RunOutcome, Suite, SuiteOutcome, SuiteRequest
from bundle.suite.resume import resume_plan
from bundle.suite.source import load_suite
from bundle.suite.store import load_suite_bundle, write_suite_bundle
from bundle.suite.task import MemberJob, run_member

TRACE_MODES = ("failing", "all", "none")


@dataclass(frozen=True)
class SuiteEvent:
    """Progress: ``kind`` "info" (a line), "start" (total runs in ``total``), "run" (one run
    finished: ``outcome``), "done"."""

    kind: str
    message: str = ""
    total: int = 0
    outcome: RunOutcome | None = None


def check_request(request: SuiteRequest) -> None:
    """The flags' own errors, before the suite file is read."""
    if request.workers is not None and request.scheduler:
        raise UserError("--workers and --scheduler: give one (a scheduler's cluster has its own workers)")
    if request.workers is not None and request.workers < 1:
        raise UserError(f"--workers {request.workers}: must be at least 1")
    if request.threads_per_run < 1:
        raise UserError(f"--threads-per-run {request.threads_per_run}: must be at least 1")
    if request.trace not in TRACE_MODES:
        raise UserError(f"--trace {request.trace}: must be one of {', '.join(TRACE_MODES)}")
    if request.timeout is not None and not request.timeout > 0:
        raise UserError(f"--timeout {request.timeout:g}: must be a positive number of seconds")
    if request.scheduler and not request.scheduler.startswith(("tcp://", "tls://", "inproc://")):
        raise UserError(f"--scheduler {request.scheduler}: expected an address like tcp://HOST:PORT")


def select_runs(suite: Suite, only: Sequence[str]) -> tuple[Run, ...]:
    """The runs ``--only`` names (case ids or case/run ids), in suite order; all without it."""
    if not only:
        return suite.runs
    cases = {c.id for c in suite.cases}
    runs = {r.id for r in suite.runs}
    unknown = next((o for o in only if o not in cases and o not in runs), None)
    if unknown is not None:
        raise SpecError(f"--only {unknown}: no such case or case/run in {suite.source}")
    return tuple(r for r in suite.runs if r.case in only or r.id in only)


def make_jobs(request: SuiteRequest, suite: Suite, runs: Iterable[Run], repo: Path,
              bundles: Path) -> list[MemberJob]:
    profile = load_target(suite.target)
    jobs = []
    for run in runs:
        own = run.pixel if request.trace != "none" else None
        spec = member_spec(suite, run, pixel=own, threads=request.threads_per_run, profile=profile)
        key, fields = run_key(spec, profile, repo)
        jobs.append(MemberJob(suite=suite, run=run, repo=str(repo), bundles=str(bundles),
                              run_key=key, key_fields=fields, threads=request.threads_per_run,
                              trace=request.trace, timeout=request.timeout,
                              build_cache=str(bundles / ".build-cache")))
    return jobs


def error_outcome(job: MemberJob, exc: BaseException) -> RunOutcome:
    """A task that raised (after Dask's retries) or whose worker died too often."""
    return RunOutcome(id=job.run.id, case=job.run.case, run=job.run.name, status="error",
                      bundle=None, manifest_sha256=None, run_key=job.run_key,
                      key_fields=dict(job.key_fields), thresholds=job.run.thresholds.to_data(),
                      reason=job.reason, error=one_line(f"{type(exc).__name__}: {exc}"))


def run_suite(request: SuiteRequest, on_event: Callable[[SuiteEvent], None] | None = None
              ) -> SuiteOutcome:
    """Run a suite (module docstring) and return the suite bundle written."""
    emit = on_event or (lambda _e: None)
    check_request(request)
    suite = load_suite(Path(request.suite_path), request.target)
    runs = select_runs(suite, request.only)
    repo = Path(request.repo) if request.repo else default_repo(Path(request.suite_path), suite.target)
    if not repo.is_dir():
        raise UserError(f"--repo {repo}: not a directory")
    bundles = Path(request.bundles)
    bundles.mkdir(parents=True, exist_ok=True)
    jobs = make_jobs(request, suite, runs, repo.resolve(), bundles.resolve())
    reused, todo = resume_plan(jobs, bundles) if request.resume else ({}, jobs)
    emit(SuiteEvent("start", f"{len(jobs)} runs, {len(reused)} reused", total=len(jobs)))
    for outcome in reused.values():
        emit(SuiteEvent("run", outcome.reason, outcome=outcome))
    config = ExecutorConfig(workers=request.workers, scheduler=request.scheduler,
                            threads_per_run=request.threads_per_run)
    done, executor = dict(reused), idle_executor(config)
    if todo:
        done_now, executor = execute_jobs(config, todo, emit)
        done.update(done_now)
    outcomes = [done[job.run.id] for job in jobs]
    path = write_suite_bundle(bundles, suite, outcomes, executor=executor, trace=request.trace,
                              created=datetime.now(timezone.utc))
    emit(SuiteEvent("done", str(path)))
    data = load_suite_bundle(path)
    return SuiteOutcome(str(path), data, 0 if all(o.status == "pass" for o in outcomes) else 1)


def idle_executor(config: ExecutorConfig) -> dict:
    """suite.json's executor when every run was reused (no cluster was started)."""
    return {"kind": "scheduler" if config.scheduler else "local", "address": config.scheduler,
            "workers": config.workers or default_workers(config.threads_per_run),
            "threads_per_run": config.threads_per_run}


def execute_jobs(config: ExecutorConfig, jobs: list[MemberJob], emit
                 ) -> tuple[dict[str, RunOutcome], dict]:
    """Every job on the executor, as they finish. Ctrl-C: see bundle.suite.executor."""
    done: dict[str, RunOutcome] = {}
    with open_executor(config, on_event=lambda kind, msg: emit(SuiteEvent(kind, msg))) as ex:
        described = ex.describe()
        for job, result in ex.map(run_member, jobs):
            outcome = result if isinstance(result, RunOutcome) else error_outcome(
                job, result if isinstance(result, BaseException) else RuntimeError(str(result)))
            outcome = replace(outcome, reason=job.reason or outcome.reason)
            done[job.run.id] = outcome
            emit(SuiteEvent("run", outcome.status, outcome=outcome))
    return done, described
