"""The recorded runner: executes plan steps and returns a CommandRecord for each, success or not.

Every command's stdout/stderr goes straight to files under the bundle's ``logs/`` (never into our
memory: a trace log can be hundreds of MB); peak RSS comes from ``wait4``'s rusage for exactly
that child; a timeout kills the command's whole process group. Files staged in, read and produced
are hashed. Nothing here prints: progress goes out through an ``on_event`` callback.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from contextvars import ContextVar
from pathlib import Path
from typing import Callable

from bundle.capture.environment import command_env, redacted
from bundle.model.errors import Interrupted
from bundle.model.hashing import digest
from bundle.capture.plan import Step
from bundle.capture.sources import package_files
from bundle.model.records import CommandRecord, FileDigest


@dataclass(frozen=True)
class Event:
    """Progress: a step started or finished (the CLI shows these; the library never prints)."""

    kind: str  # "start" | "end" | "skip" | "info"
    step: str
    message: str = ""
    ok: bool | None = None
    wall_s: float | None = None


EventSink = Callable[[Event], None]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of every file under a directory."""
    found = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            p = Path(root) / name
            try:
                st = p.stat()
            except OSError:
                continue
            found[str(p.relative_to(directory))] = (st.st_size, st.st_mtime_ns)
    return found


def _wait(proc: subprocess.Popen, timeout: float | None) -> tuple[int | None, int | None, bool]:
    """(exit code, peak RSS kB, timed out). wait4 gives the rusage of this child alone."""
    result: dict = {}

    def reap() -> None:
        _pid, status, usage = os.wait4(proc.pid, 0)
        result["status"] = status
        result["rss"] = usage.ru_maxrss

    waiter = threading.Thread(target=reap, daemon=True)
    waiter.start()
    try:
        _join(waiter, timeout)
    except BaseException:
        # A signal (bundle.model.errors.Interrupted) or Ctrl-C: the engine's whole process group
        # goes with us, reaped, so nothing runs on with PPID 1 re-creating its scratch.
        _kill_group(proc.pid)
        waiter.join()
        raise
    timed_out = waiter.is_alive()
    if timed_out:
        _kill_group(proc.pid)
        waiter.join()
    proc.returncode = os.waitstatus_to_exitcode(result["status"])  # keep Popen from re-waiting
    code = None if timed_out else proc.returncode
    return code, result.get("rss"), timed_out


# A cooperative stop for captures that no signal reaches (a Dask worker's task thread,
# bundle.suite.executor): while the Event set here is set, the command being waited on is
# stopped exactly as a signal stops it (its process group killed and reaped, Interrupted raised,
# staging and scratch cleaned up by the callers' ``finally``). Set per thread (a ContextVar).
cancel_event: ContextVar[threading.Event | None] = ContextVar("nb_evidence_cancel", default=None)


def _join(thread: threading.Thread, timeout: float | None) -> None:
    """Wait for ``thread`` up to ``timeout`` seconds in short waits, not one long one: a signal
    the kernel hands to another of our threads is acted on only when this (the main) thread
    next runs Python code, and one long wait would hold it until the engine ends."""
    deadline = None if timeout is None else time.monotonic() + timeout
    stop = cancel_event.get()
    while thread.is_alive():
        if stop is not None and stop.is_set():
            raise Interrupted(signal.SIGINT)
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        thread.join(_POLL_S if left is None else min(_POLL_S, left))


_POLL_S = 0.2


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _source_digests(step: Step, roots: dict[str, str]) -> list[FileDigest]:
    inputs = []
    for root, rel in step.sources:
        base = Path(roots["repo"]) if root == "repo" else Path(roots["scratch"]) / "inputs"
        for f in package_files(base, rel) if root == "repo" else [rel]:
            if (base / f).is_file():
                inputs.append(digest(base / f, f, root))
    return inputs


def _stage_inputs(step: Step, cwd: Path) -> str | None:
    """Copy the step's inputs into its cwd; the last one that could not be, as an error."""
    error = None
    for src, dst in step.stage:
        target = cwd / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(src, target)
        except OSError as exc:
            error = f"cannot stage input {src}: {exc.strerror}"
    return error


def run_step(step: Step, bundle_dir: Path, roots: dict[str, str], timeout: float | None = None,
             on_event: EventSink | None = None) -> CommandRecord:
    """Run one step; write its logs under bundle_dir/logs; hash what it read and wrote."""
    emit = on_event or (lambda _e: None)
    cwd = Path(step.cwd)
    cwd.mkdir(parents=True, exist_ok=True)
    logs = bundle_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / f"{step.name}.stdout", logs / f"{step.name}.stderr"

    inputs = _source_digests(step, roots)
    error = _stage_inputs(step, cwd)
    env = command_env(dict(step.env))
    before = _snapshot(cwd)
    staged = {dst for _src, dst in step.stage}

    emit(Event("start", step.name, " ".join(step.argv[:3])))
    start, t0 = utc_now(), time.perf_counter()
    code = rss = None
    timed_out = False
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        if error is None:
            try:
                proc = subprocess.Popen(step.argv, cwd=cwd, env=env, stdout=out, stderr=err,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            except OSError as exc:
                error = f"cannot start {step.argv[0]}: {exc.strerror or exc}"
            else:
                code, rss, timed_out = _wait(proc, timeout)
                if timed_out:
                    error = f"timed out after {timeout:g} s"
    wall = time.perf_counter() - t0
    end = utc_now()

    outputs = []
    for rel, stat in sorted(_snapshot(cwd).items()):
        if rel in staged and before.get(rel) == stat:
            continue
        if before.get(rel) != stat:
            outputs.append(digest(cwd / rel, rel, f"scratch:{step.engine or step.name}"))
    record = CommandRecord(
        step=step.name, role=step.role, engine=step.engine, argv=step.argv, cwd=step.cwd,
        env=redacted(env), start_utc=start, end_utc=end, wall_s=round(wall, 6), exit_code=code,
        timed_out=timed_out, error=error, peak_rss_kb=rss,
        stdout=digest(out_path, f"logs/{step.name}.stdout", "bundle"),
        stderr=digest(err_path, f"logs/{step.name}.stderr", "bundle"),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
    )
    emit(Event("end", step.name, error or f"exit {code}", ok=record.ok, wall_s=wall))
    return record


def skipped(step: Step, bundle_dir: Path, reason: str) -> CommandRecord:
    """A step not run because one it requires failed: recorded so the manifest shows why."""
    logs = bundle_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    now = utc_now()
    return CommandRecord(step=step.name, role=step.role, engine=step.engine, argv=step.argv,
                         cwd=step.cwd, env=(), start_utc=now, end_utc=now, wall_s=0.0,
                         exit_code=None, error=f"not run: {reason}")
