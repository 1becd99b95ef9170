"""``nb-evidence replay SUITE_BUNDLE``: every member of a suite bundle (its image members and
drill-down members) replayed through bundle.replay, on the same executor as a suite's runs.
Each replay is a new bundle naming its original; the gate is replay's own (a tampered member is
refused, a foreign one runs only with --trust)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bundle.model.errors import UserError
from bundle.model.files import one_line
from bundle.suite.executor import ExecutorConfig, open_executor
from bundle.suite.store import load_suite_bundle, suite_root


@dataclass(frozen=True)
class ReplayJob:
    run: str
    role: str  # "image" | "trace"
    original: str  # the member bundle's path
    repo: str | None
    bundles: str
    trust: bool = False
    timeout: float | None = None


def replay_member(job: ReplayJob) -> dict[str, Any]:
    """On a worker: one member replayed natively; a refusal or error as one line."""
    from bundle.replay import replay_bundle

    row = {"run": job.run, "role": job.role, "original": Path(job.original).name}
    try:
        outcome = replay_bundle(Path(job.original), repo=Path(job.repo) if job.repo else None,
                                bundles=Path(job.bundles), trust=job.trust, timeout=job.timeout,
                                in_container=False)
    except UserError as exc:
        return {**row, "reproduced": False, "bundle": None, "error": one_line(exc)}
    return {**row, "reproduced": bool(outcome.summary["reproduced"]),
            "bundle": Path(outcome.summary["bundle"]).name, "error": None}


def replay_jobs(path: Path, repo: Path | None, bundles: Path, trust: bool,
                timeout: float | None) -> list[ReplayJob]:
    root = suite_root(path)
    data = load_suite_bundle(root)
    jobs = []
    for m in data["members"]:
        for role, key in (("image", "bundle"), ("trace", "trace_bundle")):
            if m.get(key):
                jobs.append(ReplayJob(m["id"], role, str((root.parent / m[key]).resolve()),
                                      str(repo) if repo else None, str(bundles.resolve()),
                                      trust, timeout))
    return jobs


def replay_suite(path: Path, *, repo: Path | None = None, bundles: Path = Path("bundles"),
                 trust: bool = False, timeout: float | None = None,
                 config: ExecutorConfig = ExecutorConfig(),
                 on_event: Callable[[str, str], None] | None = None) -> dict[str, Any]:
    """{"suite", "replays": [one row per member, in suite order], "reproduced": all of them}."""
    jobs = replay_jobs(Path(path), repo, Path(bundles), trust, timeout)
    Path(bundles).mkdir(parents=True, exist_ok=True)
    rows: dict[tuple[str, str], dict] = {}
    with open_executor(config, on_event=on_event) as ex:
        for job, result in ex.map(replay_member, jobs):
            if not isinstance(result, dict):
                result = {"run": job.run, "role": job.role, "original": Path(job.original).name,
                          "reproduced": False, "bundle": None, "error": one_line(str(result))}
            rows[(job.run, job.role)] = result
    ordered = [rows[(j.run, j.role)] for j in jobs]
    return {"suite": str(suite_root(path)), "replays": ordered,
            "reproduced": bool(ordered) and all(r["reproduced"] for r in ordered)}
