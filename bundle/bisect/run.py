"""``run_bisect(request)``: the whole bisect, from the revisions to the bisect bundle.

First the ends: --good must judge good and --bad bad (probed together), else the outcome says
which did not (exit 1). Then rounds: each probes as many commits as the executor has workers
(bundle.bisect.search picks them), every one in its own detached worktree in our scratch
directory, removed after its round; the C build cache lives in that scratch directory too, so
commits that did not change the C sources reuse one binary. Progress goes out as events.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from bundle.bisect import git as g
from bundle.bisect.model import BisectEvent, BisectOutcome, BisectRequest
from bundle.bisect.probe import ProbeJob, ProbeResult, probe
from bundle.bisect.search import answer, next_probes, open_range
from bundle.bisect.store import write_bisect_bundle
from bundle.model.files import one_line


Emit = Callable[[BisectEvent], None]


def prepare(request: BisectRequest) -> BisectOutcome:
    """Everything checked before anything runs: the spec, the repository, both revisions, the
    range (a one-line UserError for each)."""
    from bundle.capture.request import load_request, make_request

    spec, _profile = load_request(make_request(request.spec, repo=request.repo,
                                               target=request.target))
    repo = g.repo_root(request.repo)
    good = g.resolve(repo, request.good, "--good")
    bad = g.resolve(repo, request.bad, "--bad")
    commits = g.commit_range(repo, good, bad, request.good, request.bad)
    notes = [g.DIRTY_NOTE] if g.dirty(repo) else []
    return BisectOutcome(request=request, repo=repo, good_sha=good, bad_sha=bad, commits=commits,
                         spec_name=spec.name, notes=notes)


def run_bisect(request: BisectRequest, on_event: Emit | None = None) -> BisectOutcome:
    """Bisect and write the bisect bundle (its path in ``outcome.bundle``)."""
    emit = on_event or (lambda _e: None)
    outcome = prepare(request)
    for note in outcome.notes:
        emit(BisectEvent("note", note))
    scratch = Path(tempfile.mkdtemp(prefix="nb-evidence-bisect-"))
    try:
        with open_executor(request) as executor:
            outcome.executor = executor.describe()
            _search(outcome, executor, scratch, emit)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if outcome.answer is not None and outcome.answer.first_bad is not None:
        sha = outcome.commits[outcome.answer.first_bad].sha
        outcome.first_bad_files = g.files_changed(outcome.repo, sha)
    outcome.bundle = write_bisect_bundle(outcome)
    return outcome


def _search(outcome: BisectOutcome, executor, scratch: Path, emit: Emit) -> None:
    n = len(outcome.commits)
    results: dict[int, str] = {}
    ends = _round(outcome, executor, scratch, [0, n - 1], results, emit)
    for index, value, word in ((0, ends.get(0), "--good"), (n - 1, ends.get(n - 1), "--bad")):
        wanted = "good" if index == 0 else "bad"
        if value != wanted:
            p = outcome.by_sha()[outcome.commits[index].sha]
            outcome.status = "good-is-bad" if index == 0 else "bad-is-good"
            rev = outcome.request.good if index == 0 else outcome.request.bad
            outcome.reason = (f"{word} {rev} is not {wanted}: {outcome.request.predicate.describe()}"
                              f" judged it {value} ({p.reason})")
            return
    while True:
        picks = next_probes(n, results, max(1, executor.workers))
        if not picks:
            break
        _round(outcome, executor, scratch, picks, results, emit)
    outcome.answer = answer(n, results)
    outcome.last_good, outcome.first_bad = open_range(n, results)
    outcome.status = "ambiguous" if outcome.answer.ambiguous else "found"


def _round(outcome: BisectOutcome, executor, scratch: Path, picks: list[int],
           results: dict[int, str], emit: Emit) -> dict[int, str]:
    """Probe ``picks`` at once (each in its own worktree); record and return their values."""
    lo, hi = open_range(len(outcome.commits), results)
    outcome.rounds += 1
    emit(BisectEvent("round", f"round {outcome.rounds}: {hi - lo} commits left, probing "
                     + " ".join(outcome.commits[i].sha[:10] for i in picks),
                     left=hi - lo, probed=len(outcome.probes)))
    index = {outcome.commits[i].sha: i for i in picks}
    trees: list[Path] = []
    got: dict[int, str] = {}
    try:
        jobs = []
        for i in picks:
            trees.append(g.add_worktree(outcome.repo, scratch, outcome.commits[i].sha))
            jobs.append(_job(outcome, outcome.commits[i].sha, trees[-1], scratch))
        for job, res in executor.map(probe, jobs):
            res = res if isinstance(res, ProbeResult) else _crashed(job, res)
            outcome.probes.append(res)
            got[index[res.sha]] = res.value
            emit(BisectEvent("probe", f"{res.sha[:10]} {res.value} ({res.reason})",
                             probed=len(outcome.probes)))
    finally:
        for tree in trees:
            g.remove_worktree(outcome.repo, tree)
    results.update(got)
    return got


def _job(outcome: BisectOutcome, sha: str, tree: Path, scratch: Path) -> ProbeJob:
    r = outcome.request
    return ProbeJob(sha=sha, worktree=str(tree), spec=str(Path(r.spec).resolve()), target=r.target,
                    bundles=str(Path(r.bundles).resolve()), build_cache=str(scratch / "build-cache"),
                    predicate=r.predicate, round=outcome.rounds, timeout=r.timeout)


def _crashed(job: ProbeJob, exc: BaseException) -> ProbeResult:
    return ProbeResult(sha=job.sha, round=job.round, value="skip",
                       reason=f"probe failed: {one_line(exc)}", verdict=None, key_ratio=None,
                       key_rel_diff=None, wall_s=0.0, bundle_id=None, build=None)


class SerialExecutor:
    """One probe at a time in this process: the executor's interface (bundle.suite.executor)
    for one worker, and the fallback where that executor is not available."""

    workers = 1

    def describe(self) -> dict:
        return {"kind": "serial", "address": None, "workers": 1, "threads_per_run": 1}

    def map(self, fn, items) -> Iterator:
        for item in items:
            try:
                yield item, fn(item)
            except Exception as exc:  # a probe's bug is that commit's skip, not the bisect's end
                yield item, exc


@contextlib.contextmanager
def open_executor(request: BisectRequest):
    """This process alone for one worker (no cluster to start for plain bisection); the suites'
    Dask executor (bundle.suite.executor) for more workers or a scheduler."""
    from bundle.suite.executor import ExecutorConfig
    from bundle.suite.executor import open_executor as open_dask

    if request.scheduler is None and (request.workers or 1) <= 1:
        yield SerialExecutor()
        return
    with open_dask(ExecutorConfig(workers=request.workers, scheduler=request.scheduler)) as ex:
        yield ex
