"""``--resume``: which runs reuse an earlier member bundle and which rerun, and why.

Earlier members are found through the earlier suite bundles in the same bundles directory (their
suite.json lists every member with its run key). A run reuses one only when the run key is the
same AND the member (and its drill-down member, if any) still verifies
(bundle.suite.store.check_member: present, the manifest recorded, intact) AND the member's own
manifest matches the run (its arguments, the digests of the repo files it read); the reused
figures (metrics, verdict, first divergence, roots) are then read from the members' manifests,
never taken from suite.json, which is only an index. Anything else reruns, with the reason: the first run-key field that changed, "no earlier member", or "earlier
member failed verification". The thresholds are not part of the key: a reused run is judged
again against today's, and reruns when it now needs a drill-down its member lacks.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterator

from bundle.capture.target import load_target
from bundle.model.errors import BundleError
from bundle.store.verify import file_sha256
from bundle.suite.claims import member_manifest, recorded
from bundle.suite.judge import judge
from bundle.suite.members import member_spec
from bundle.suite.key import first_changed
from bundle.suite.model import RunOutcome
from bundle.suite.store import check_member, is_suite_bundle, load_suite_bundle
from bundle.suite.task import MemberJob

REUSED = "reused: same run key, member verifies"
NO_EARLIER = "no earlier member"
FAILED_VERIFY = "earlier member failed verification"
MISMATCH = "earlier member is not what its suite.json says"


def earlier_members(bundles: Path) -> Iterator[RunOutcome]:
    """Every member entry of every readable suite bundle in ``bundles``, newest suite first."""
    for path in sorted((p for p in bundles.iterdir() if p.is_dir() and not p.name.startswith(".")),
                       key=lambda p: p.name, reverse=True):
        if not is_suite_bundle(path):
            continue
        try:
            data = load_suite_bundle(path)
        except BundleError:
            continue
        for member in data.get("members", []):
            try:
                yield RunOutcome.from_data(member)
            except (TypeError, ValueError):
                continue


def verifies(bundles: Path, old: RunOutcome) -> bool:
    if not old.bundle:
        return False
    checks = [check_member(bundles, old.id, "image", old.bundle, old.manifest_sha256)]
    if old.trace_bundle:
        checks.append(check_member(bundles, old.id, "trace", old.trace_bundle,
                                   old.trace_manifest_sha256))
    return all(c.state == "OK" for c in checks)


def mismatch(bundles: Path, old: RunOutcome, job: MemberJob) -> str | None:
    """Why the verified member on disk is not this run's (None when it is): its argument list
    must be the member spec's and every repo file its commands read must still have the digest
    recorded. suite.json is someone's file; the member's own manifest is what verify checked."""
    manifest = member_manifest(bundles, old.bundle)
    own = job.run.pixel if job.trace != "none" else None
    spec = member_spec(job.suite, job.run, pixel=own, threads=job.threads,
                       profile=load_target(job.suite.target), inputs=job.inputs)
    if list(manifest["spec"].get("args") or []) != list(spec.args):
        return "its arguments are not this run's"
    repo = Path(job.repo)
    # as the run key: an input file counts when the run's arguments name it (bundle.suite.key)
    unread = set(spec.inputs.files) - set(spec.args)
    for command in manifest["commands"]:
        for f in command.get("inputs") or ():
            if f.get("path") in unread:
                continue
            here = repo / str(f.get("path"))
            if f.get("root") == "repo" and (not here.is_file()
                                            or file_sha256(here) != f.get("sha256")):
                return f"{f['path']} changed"
    return None


def reuse(job: MemberJob, old: RunOutcome) -> RunOutcome | None:
    """The earlier outcome as this run's, judged against today's thresholds; None when it would
    now need a drill-down it lacks."""
    failed = judge(old.metrics, job.run.thresholds)
    needs_trace = job.trace == "all" or (job.trace == "failing" and bool(failed))
    if needs_trace and old.verdict is None:
        return None
    return replace(old, id=job.run.id, case=job.run.case, run=job.run.name,
                   status="fail" if failed else "pass", failed=failed,
                   thresholds=job.run.thresholds.to_data(), reused=True, reason=REUSED,
                   worker="", wall_s=old.wall_s)


def resume_plan(jobs: list[MemberJob], bundles: Path
                ) -> tuple[dict[str, RunOutcome], list[MemberJob]]:
    """(run id -> reused outcome, the jobs to run, each with its reason)."""
    by_key: dict[str, list[RunOutcome]] = {}
    by_id: dict[str, RunOutcome] = {}
    for old in earlier_members(bundles):
        if old.status in ("pass", "fail"):
            by_key.setdefault(old.run_key, []).append(old)
        by_id.setdefault(old.id, old)
    reused, todo = {}, []
    for job in jobs:
        candidates = by_key.get(job.run_key, [])
        good = next((o for o in candidates if verifies(bundles, o)), None)
        differs = mismatch(bundles, good, job) if good is not None else None
        if differs is not None:
            todo.append(replace(job, reason=f"{MISMATCH}: {differs}"))
            continue
        outcome = reuse(job, recorded(bundles, good)) if good is not None else None
        if outcome is not None:
            reused[job.run.id] = outcome
            continue
        todo.append(replace(job, reason=rerun_reason(job, candidates, good, by_id.get(job.run.id))))
    return reused, todo


def rerun_reason(job: MemberJob, candidates: list[RunOutcome], good: RunOutcome | None,
                 previous: RunOutcome | None) -> str:
    if good is not None:
        return "earlier member lacks the drill-down this run now needs"
    if candidates:
        return FAILED_VERIFY
    if previous is None:
        return NO_EARLIER
    changed = first_changed(previous.key_fields, job.key_fields)
    if changed is None:  # same key, but the earlier run was an error
        return f"earlier run ended in {previous.status}"
    return f"{changed} changed"
