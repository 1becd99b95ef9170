"""Where runs execute: a Dask cluster (a LocalCluster of worker processes by default, or an
existing scheduler). The interface bundle.suite and bundle.bisect both use.

    with open_executor(ExecutorConfig(workers=2)) as ex:
        for item, result in ex.map(task, items):   # results as they finish
            ...
    # Ctrl-C inside the with block: every pending and running task is cancelled, the
    # engines killed, the cluster closed; bundle.model.errors.Interrupted propagates.

Interface:

  open_executor(config: ExecutorConfig, on_event=None) -> contextmanager yielding an Executor
  Executor.workers: int                      # how many runs go at once
  Executor.describe() -> dict                # {"kind": "local"|"scheduler", "address", "workers",
                                             #  "threads_per_run"} for suite.json / bisect bundles
  Executor.map(fn, items) -> Iterator[(item, result_or_exception)]   # as they finish; fn and
                                             # items must pickle (module-level fn, plain data)

Why the cancel Event: a running Dask task cannot be interrupted from outside, and its engines
run in their own process groups (bundle.capture.runner). So each task starts a watcher thread
that polls a distributed Event named for this executor; when the coordinator sets it, the
watcher sets the task's threading.Event, which the runner's wait loop checks
(runner.cancel_event): the engine's process group is killed and reaped, staging discarded, and
the task returns CANCELLED. Only then are the futures cancelled and the cluster closed.

Worker death: Dask reschedules a task whose worker died (``distributed.scheduler.allowed-failures``)
and ``retries`` resubmits one that raised; a capture writes its bundle by an atomic rename, so a
killed task leaves staging (cleaned by the next capture's open_staging), never a listed bundle.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from bundle.model.errors import Interrupted, UserError

RETRIES = 2
POLL_S = 0.2
DRAIN_S = 30.0  # how long the coordinator waits for cancelled tasks to stop their engines
CANCELLED = "cancelled"  # what a task stopped by the cancel Event returns


@dataclass(frozen=True)
class ExecutorConfig:
    workers: int | None = None  # LocalCluster worker processes; None: cores // threads_per_run
    scheduler: str | None = None  # tcp://HOST:PORT of an existing cluster
    threads_per_run: int = 1  # OMP_NUM_THREADS of each run


def default_workers(threads_per_run: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, threads_per_run))


def run_cancellable(fn: Callable[[Any], Any], item: Any, event_name: str) -> Any:
    """On the worker: ``fn(item)`` with a watcher that stops its engines when the coordinator
    sets the named Event (module docstring). Module-level, so it pickles by reference."""
    from distributed import Event

    from bundle.capture.runner import cancel_event

    remote = Event(event_name)
    if remote.is_set():
        return CANCELLED
    stop, done = threading.Event(), threading.Event()

    def watch() -> None:
        while not done.wait(POLL_S):
            try:
                if remote.is_set():
                    stop.set()
                    return
            except Exception:  # the scheduler is gone: nobody is waiting for this run any more
                stop.set()
                return

    watcher = threading.Thread(target=watch, daemon=True, name="nb-cancel-watch")
    watcher.start()
    token = cancel_event.set(stop)
    try:
        return fn(item)
    except Interrupted:
        return CANCELLED
    finally:
        cancel_event.reset(token)
        done.set()


class Executor:
    """A connected Dask client (and the LocalCluster it started, when it started one)."""

    def __init__(self, config: ExecutorConfig, client, cluster, workers: int):
        self.config, self.client, self.cluster, self.workers = config, client, cluster, workers
        self.event_name = f"nb-evidence-cancel-{uuid.uuid4().hex}"
        self._futures: list = []

    def describe(self) -> dict:
        return {"kind": "scheduler" if self.cluster is None else "local",
                "address": self.client.scheduler.address, "workers": self.workers,
                "threads_per_run": self.config.threads_per_run}

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        from distributed import as_completed

        items = list(items)
        futures = [self.client.submit(run_cancellable, fn, item, self.event_name, pure=False,
                                      retries=RETRIES, key=f"nb-run-{i}-{uuid.uuid4().hex[:8]}")
                   for i, item in enumerate(items)]
        self._futures += futures
        index = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures):
            item = items[index[future.key]]
            try:
                yield item, future.result()
            except Exception as exc:  # the task raised (after its retries), or its worker died
                yield item, exc

    def cancel_all(self) -> None:
        """Stop every run: the Event stops running engines, pending tasks return at once."""
        from distributed import Event, wait

        try:
            Event(self.event_name, client=self.client).set()
            pending = [f for f in self._futures if not f.done()]
            if pending:
                wait(pending, timeout=DRAIN_S)
            self.client.cancel(self._futures, force=True)
        except Exception:  # best effort: the cluster is closed next either way
            pass

    def close(self) -> None:
        try:
            self.client.close(timeout=10)
        finally:
            if self.cluster is not None:
                self.cluster.close(timeout=20)


def _connect(config: ExecutorConfig, on_event) -> Executor:
    from distributed import Client, LocalCluster

    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout=20)
        except (OSError, TimeoutError) as exc:
            raise UserError(f"--scheduler {config.scheduler}: cannot connect ({exc})") from None
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        on_event("info", f"Dask scheduler {config.scheduler}, {workers} workers: the bundles "
                         "directory and the repo must be on a filesystem every worker shares")
        return Executor(config, client, None, workers)
    workers = config.workers or default_workers(config.threads_per_run)
    # Worker processes (engines and torch hold the GIL-free work, but a crash or a kill takes one
    # worker only), one task each; no dashboard, bound to the loopback interface only.
    with warnings.catch_warnings():
        # Without a dashboard the scheduler still serves its health routes, on 127.0.0.1 (the
        # host) and port 8787 or, when taken, another: Dask warns about the fallback, harmlessly.
        warnings.simplefilter("ignore", UserWarning)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1", scheduler_port=0,
                               memory_limit=0, silence_logs=logging.ERROR)
    try:
        client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    on_event("info", f"Dask LocalCluster {cluster.scheduler_address}, {workers} worker processes")
    return Executor(config, client, cluster, workers)


@contextmanager
def open_executor(config: ExecutorConfig, on_event: Callable[[str, str], None] | None = None
                  ) -> Iterator[Executor]:
    """A connected Executor; closed (and on Ctrl-C every run stopped first) when the block
    ends. KeyboardInterrupt is re-raised as Interrupted(SIGINT)."""
    emit = on_event or (lambda _kind, _message: None)
    executor = _connect(config, emit)
    try:
        yield executor
    except (KeyboardInterrupt, Interrupted) as exc:
        emit("info", "interrupted: stopping every run and closing the cluster")
        executor.cancel_all()
        if isinstance(exc, KeyboardInterrupt):
            import signal

            raise Interrupted(signal.SIGINT) from None
        raise
    finally:
        started = time.monotonic()
        executor.close()
        emit("info", f"cluster closed in {time.monotonic() - started:.1f} s")
