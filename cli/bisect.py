"""`nb-evidence bisect SPEC --repo PATH --good REV --bad REV`: the first commit where a predicate
on SPEC's capture turns bad (bundle.bisect)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from bundle.model.errors import UserError
from cli.output import print_json


def bisect(
    spec: Path = typer.Argument(..., help="Capture spec (TOML) captured on every commit probed."),
    repo: Path = typer.Option(..., "--repo", help="The git repository to bisect (never changed: commits are checked out into scratch worktrees)."),
    good: str = typer.Option(..., "--good", help="A commit where the predicate is good."),
    bad: str = typer.Option(..., "--bad", help="A later commit (a descendant of --good) where it is bad."),
    key: Optional[str] = typer.Option(None, "--key", help="Bad when trace key KEY is beyond tolerance."),
    root: Optional[str] = typer.Option(None, "--root", help="Bad when trace key KEY is a root divergence."),
    verdict: bool = typer.Option(False, "--verdict", help="Bad when the verdict is not parity (the default)."),
    target: Optional[str] = typer.Option(None, "--target", help="Built-in target or a profile TOML; default: the spec's."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Commits probed at once (k-way search); default 1."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="tcp://HOST:PORT of a Dask scheduler to probe on."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds allowed per command of each capture."),
    bundles: Path = typer.Option(Path("bundles"), "--bundles", help="Where the bisect bundle and the probes' bundles are written."),
    json_out: bool = typer.Option(False, "--json", help="Print bisect.json on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Find the first commit between --good and --bad where the predicate turns bad.

    Exit status: 0 first bad commit found; 1 the predicate is not bad at --bad or not good at
    --good (said which), or skipped commits leave a range of candidates; 2 error.
    """
    from bundle.bisect.model import BisectRequest
    from bundle.bisect.run import run_bisect
    from bundle.capture.request import check_timeout

    check_timeout(timeout)
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers}: must be a positive integer")
    if workers is not None and scheduler is not None:
        raise UserError("--workers and --scheduler exclude each other")
    request = BisectRequest(spec=spec, repo=repo, good=good, bad=bad,
                            predicate=predicate_of(key, root, verdict), bundles=bundles,
                            target=target, workers=workers or 1, scheduler=scheduler,
                            timeout=timeout)
    outcome = run_bisect(request, on_event=_listener(quiet, json_out))
    data = json.loads((outcome.bundle / "bisect.json").read_text())
    if json_out:
        print_json(data)
    elif not quiet:
        _summary(data, outcome.bundle)
    raise typer.Exit(outcome.exit_code)


def predicate_of(key: str | None, root: str | None, verdict: bool):
    """Exactly one predicate; none given is --verdict."""
    from bundle.bisect.predicate import Predicate

    given = [f for f, on in (("--key", key is not None), ("--root", root is not None),
                             ("--verdict", verdict)) if on]
    if len(given) > 1:
        raise UserError(f"{' and '.join(given)} exclude each other: give one predicate")
    if key is not None:
        return Predicate("key", key)
    if root is not None:
        return Predicate("root", root)
    return Predicate("verdict")


def _listener(quiet: bool, json_out: bool):
    """Progress on stderr: every event, or with --json only the notes (the dirty tree's)."""
    def hear(event) -> None:
        if not quiet and (not json_out or event.kind == "note"):
            typer.echo(event.message, err=True)

    return hear


def _summary(data: dict, bundle: Path) -> None:
    res = data["result"]
    if res["first_bad"] is not None:
        fb = res["first_bad"]
        typer.echo(f"first bad commit: {fb['sha']} {fb['subject']}")
        typer.echo(f"  files: {', '.join(fb['files']) or '(none)'}")
    elif res["candidates"]:
        typer.echo(f"first bad commit is one of {len(res['candidates'])} (skips hide it):")
        for c in res["candidates"]:
            typer.echo(f"  {c['sha']} {c['subject']}{' (skipped)' if c['skipped'] else ''}")
    else:
        typer.echo(res["reason"])
    typer.echo(f"probed {len(data['probes'])} commits in {data['rounds']} rounds; bundle: {bundle}")
