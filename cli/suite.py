"""`nb-evidence suite SUITE`: every run of a suite (our TOML or the upstream YAML) as a member
capture on Dask, one suite bundle; and the progress bar it shows."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

from cli.output import print_json, stdout_console


class SuiteProgress:
    """One rich progress bar (runs done/total, failures so far, elapsed, ETA) on a terminal;
    silent off one or when quiet. A --scheduler's shared-filesystem note always goes to stderr."""

    def __init__(self, quiet: bool) -> None:
        self.bar = self.task = None
        self.failures = 0
        self.quiet = quiet
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.bar = Progress(TextColumn("[bold]suite[/]"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[failures]} failing"),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=False)

    def __call__(self, event) -> None:
        if event.kind == "notice":
            self._line(event.message, always=True)
        elif event.kind == "start" and self.bar is not None:
            self.bar.start()
            self.task = self.bar.add_task("runs", total=event.total, failures=0)
        elif event.kind == "run" and event.outcome is not None:
            self.failures += event.outcome.status != "pass"
            if self.bar is not None and self.task is not None:
                self.bar.update(self.task, advance=1, failures=self.failures)

    def _line(self, message: str, always: bool = False) -> None:
        if self.bar is not None:
            self.bar.console.print(f"[dim]{message}[/]")
        elif always or not self.quiet:
            print(message, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def suite(
    suite_file: Path = typer.Argument(..., metavar="SUITE", help="A suite: our TOML format or the upstream parity_cases.yaml."),
    target: Optional[str] = typer.Option(None, "--target", help="Target profile; default: the suite's (TOML) or nanobragg (YAML)."),
    repo: Optional[Path] = typer.Option(None, "--repo", help="The checkout the target builds and runs from."),
    bundles: Path = typer.Option(Path("bundles"), "--bundles", help="Where member and suite bundles are written."),
    workers: Optional[int] = typer.Option(None, "--workers", help="LocalCluster worker processes (default: cores / threads per run)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="tcp://HOST:PORT of an existing Dask scheduler (bundles and repo on a shared filesystem)."),
    threads_per_run: int = typer.Option(1, "--threads-per-run", help="OMP_NUM_THREADS of each run."),
    resume: bool = typer.Option(False, "--resume", help="Reuse member bundles with the same run key that still verify."),
    only: Optional[List[str]] = typer.Option(None, "--only", help="Run only this case id or case/run id (repeatable)."),
    trace: str = typer.Option("failing", "--trace", help="Drill-down: failing (default), all or none."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds allowed per command."),
    json_out: bool = typer.Option(False, "--json", help="Print suite.json's data on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Run every run of SUITE as a capture on Dask and write a suite bundle.

    Exit status: 0 every run passes, 1 any run fails, 2 error.
    """
    from bundle.suite.model import SuiteRequest
    from bundle.suite.run import check_request, run_suite

    request = SuiteRequest(suite_path=str(suite_file), bundles=str(bundles), target=target,
                           repo=str(repo) if repo else None, workers=workers, scheduler=scheduler,
                           threads_per_run=threads_per_run, resume=resume,
                           only=tuple(only or ()), trace=trace, timeout=timeout)
    check_request(request)
    progress = SuiteProgress(quiet=quiet or json_out)
    started = time.monotonic()
    try:
        outcome = run_suite(request, on_event=progress)
    finally:
        progress.close()
    if json_out:
        print_json({"suite_bundle": outcome.path, **outcome.data})
    elif not quiet:
        _summary(outcome, time.monotonic() - started)
    raise typer.Exit(outcome.exit_code)


def _summary(outcome, wall: float) -> None:
    from rich.markup import escape  # case ids, errors and reasons are the user's text

    s = outcome.data["summary"]
    console = stdout_console()
    for m in outcome.data["members"]:
        if m["status"] != "pass" or not m.get("reused") and m.get("reason"):
            why = escape(m.get("error") or ", ".join(m.get("failed") or ()) or "")
            drill = f"  first divergence {escape(m['first_divergence'])}" if m.get("first_divergence") else ""
            rerun = f"  [dim]rerun: {escape(m['reason'])}[/]" if m.get("reason") and not m.get("reused") else ""
            console.print(f"{m['status']:5} {escape(m['id'])}  {why}{drill}{rerun}", markup=True)
    console.print(f"{s['passed']} of {s['runs']} pass, {s['failed']} fail, {s['errors']} errors, "
                  f"{s['reused']} reused  ({wall:.1f} s)")
    console.print(f"suite bundle: {outcome.path}")
