"""One probe: capture the spec on one commit's worktree (in-process, bundle.pipeline) with the
bisect's build cache, and judge the result. Module-level and picklable both ways, so an executor
can run it on a worker process.

A commit whose capture cannot even start (its sources missing, its inputs not made) is a skip,
like one whose build fails: it says nothing about the predicate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from bundle.bisect.predicate import Judged, Predicate, judge
from bundle.model.errors import UserError
from bundle.model.files import one_line

REUSED = "reused the cached build"


@dataclass(frozen=True)
class ProbeJob:
    sha: str
    worktree: str
    spec: str  # the spec file as the user gave it (the same for every commit)
    target: str | None
    bundles: str
    build_cache: str
    predicate: Predicate
    round: int
    timeout: float | None = None


@dataclass(frozen=True)
class ProbeResult:
    sha: str
    round: int
    value: str  # good | bad | skip
    reason: str
    verdict: str | None
    key_ratio: float | None
    key_rel_diff: float | None
    wall_s: float
    bundle_id: str | None
    build: str | None  # "built" | "reused" | "failed" | None (no build step ran)

    def to_data(self) -> dict:
        return dict(self.__dict__)


def probe(job: ProbeJob) -> ProbeResult:
    """Capture and judge one commit; never raises for a commit that cannot be tested."""
    t0 = time.perf_counter()
    try:
        result, path = _capture(job)
    except UserError as exc:
        return ProbeResult(job.sha, job.round, "skip", f"capture refused: {one_line(exc)}",
                           None, None, None, round(time.perf_counter() - t0, 3), None, None)
    from bundle.present.manifest import result_json

    summary = result_json(result, str(path))
    judged = judge(job.predicate, summary, key_rows(result, job.predicate.key))
    return _result(job, judged, result, path.name, time.perf_counter() - t0)


def _capture(job: ProbeJob):
    from bundle.capture.request import load_request, make_request
    from bundle.pipeline import capture, refuse_missing_gpu

    request = make_request(Path(job.spec), repo=Path(job.worktree), bundles=Path(job.bundles),
                           target=job.target, timeout=job.timeout)
    options = replace(request.options, build_cache=job.build_cache)
    spec, profile = load_request(request)
    refuse_missing_gpu(spec, None)
    return capture(spec, profile, options)


def key_rows(result, key: str | None) -> list[dict]:
    """KEY's comparison rows as plain data (the predicate's input)."""
    if key is None or result.comparison is None:
        return []
    return [{"status": r.status, "ratio": r.ratio, "rel_diff": r.rel_diff}
            for r in result.comparison.rows if r.key == key]


def _build_state(result) -> str | None:
    builds = [c for c in result.commands if c.role == "build"]
    if not builds:
        return None
    if any(REUSED in n for n in result.notes):
        return "reused"
    return "built" if all(c.ok for c in builds) else "failed"


def _result(job: ProbeJob, judged: Judged, result, bundle_id: str, wall: float) -> ProbeResult:
    return ProbeResult(sha=job.sha, round=job.round, value=judged.value, reason=judged.reason,
                       verdict=result.verdict, key_ratio=judged.key_ratio,
                       key_rel_diff=judged.key_rel_diff, wall_s=round(wall, 3),
                       bundle_id=bundle_id, build=_build_state(result))
