"""Where runs execute: a Dask cluster (a LocalCluster of worker processes by default, or an
existing scheduler). The interface bundle.suite and bundle.bisect both use; the implementation
is filled in by the suite work (issue 13).

    with open_executor(ExecutorConfig(workers=2)) as ex:
        for item, result in ex.map(task, items):   # results as they finish
            ...
    # Ctrl-C inside the with block: every pending and running task is cancelled, the
    # engines killed, the cluster closed; bundle.model.errors.Interrupted propagates.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExecutorConfig:
    workers: int | None = None  # LocalCluster worker processes; None: cores // threads_per_run
    scheduler: str | None = None  # tcp://HOST:PORT of an existing cluster
    threads_per_run: int = 1  # OMP_NUM_THREADS of each run


# The implementation (issue 13) provides, in this module:
#
#   open_executor(config: ExecutorConfig, on_event=None) -> contextmanager yielding an Executor
#   Executor.workers: int                      # how many runs go at once
#   Executor.describe() -> dict                # {"kind": "local"|"scheduler", "address", "workers",
#                                              #  "threads_per_run"} for suite.json / bisect bundles
#   Executor.map(fn, items) -> Iterator[(item, result_or_exception)]   # as they finish; fn and
#                                              # items must pickle (module-level fn, plain data)
