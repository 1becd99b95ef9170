"""Preloaded into each LocalCluster worker process (Dask's ``preload``): the worker ignores
SIGINT. A Ctrl-C on a terminal reaches the whole foreground process group, workers included;
the coordinator alone acts on it (bundle.suite.executor: the cancel Event stops the engines,
then the cluster is closed), instead of every worker dying with a KeyboardInterrupt traceback
mid-run."""

from __future__ import annotations

import signal
import threading


def dask_setup(worker) -> None:  # noqa: ARG001 (Dask's preload hook signature)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
