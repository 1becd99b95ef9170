"""`nb-evidence replay BUNDLE|MANIFEST`: re-run a recorded capture and judge whether it reproduces."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cli.output import print_json
from cli.progress import Progress


def replay(
    source: Path = typer.Argument(..., help="A bundle directory or an archived manifest JSON."),
    repo: Optional[Path] = typer.Option(None, "--repo", help="The checkout to re-run against (default: the recorded one)."),
    bundles: Path = typer.Option(Path("bundles"), "--bundles", help="Where the new bundle is written."),
    in_container: bool = typer.Option(False, "--in-container", help="Re-run inside the recorded image (the default for a containerized bundle)."),
    native: bool = typer.Option(False, "--native", help="Re-run on this machine (the default for a native bundle)."),
    trust: bool = typer.Option(False, "--trust", help="Run commands this checkout would not run (recorded in the new manifest)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the commands a replay would run, each marked builtin or foreign; run nothing."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds allowed per command."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Re-run a bundle's recorded commands and write a NEW bundle naming the original.

    Exit status: 0 reproduced, 1 not reproduced or a tampered bundle, 2 error or refused.
    """
    from bundle.model.errors import UserError
    from bundle.replay import replay_bundle, replay_plan

    if in_container and native:
        raise UserError("--in-container and --native exclude each other")
    from bundle.suite.store import is_suite_bundle

    if is_suite_bundle(source) and not dry_run:
        _replay_suite(source, repo, bundles, trust, timeout, json_out, quiet, in_container)
    if dry_run:
        planned = replay_plan(source, repo=repo, trust=trust)
        if json_out:
            print_json({"commands": [{"step": c.step, "origin": c.origin, "command": c.line}
                                     for c in planned]})
        else:
            for c in planned:
                typer.echo(f"{c.origin:8} [{c.step}] {c.line}")
        raise typer.Exit(0)

    progress = Progress(quiet=quiet or json_out)
    try:
        outcome = replay_bundle(source, repo=repo, bundles=bundles, trust=trust, timeout=timeout,
                                in_container=True if in_container else False if native else None,
                                on_event=progress)
    finally:
        progress.close()
    if json_out:
        print_json(outcome.summary)
    elif not quiet:
        _render(outcome.summary)
    raise typer.Exit(0 if outcome.summary["reproduced"] else 1)


def _render(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    styles = {"identical": "green", "within tolerance": "green", "differs": "bold red"}
    table = Table(title=f"replay of {summary['replay_of']}", title_justify="left")
    for col in ("engine", "output", "verdict", "detail"):
        table.add_column(col)
    for o in summary["outputs"]:
        detail = o.get("detail", "")
        if o.get("first_divergence"):
            fd = o["first_divergence"]
            detail = (f"first key that moved: {fd['key']}[{fd['component']}] "
                      f"{fd.get('original')} -> {fd.get('replay')}")
        table.add_row(o["engine"], o["output"],
                      f"[{styles.get(o['verdict'], '')}]{o['verdict']}[/]", detail)
    console = Console()
    console.print(table)
    image = summary.get("image")
    if image:
        how = "rebuilt from this checkout's Dockerfile" if image["rebuilt"] else "the recorded image"
        match = "matches" if image["id_matches"] else "does NOT match"
        console.print(f"image: {how}, id {image['used'][:19]} {match} the recorded {str(image['recorded'])[:19]}")
    if summary.get("trusted"):
        console.print("[yellow]trusted[/]: --trust ran commands as the manifest recorded them")
    word = "[green]REPRODUCED[/]" if summary["reproduced"] else "[bold red]NOT REPRODUCED[/]"
    console.print(f"{word}  new bundle: {summary['bundle']}")


def _replay_suite(source: Path, repo, bundles: Path, trust: bool, timeout, json_out: bool,
                  quiet: bool, in_container: bool) -> None:
    """A suite bundle: every member replayed (natively) on a LocalCluster, as the suite ran."""
    from bundle.model.errors import UserError
    from bundle.suite.replay import replay_suite

    if in_container:
        raise UserError(f"--in-container: replay of a suite bundle ({source}) runs natively")
    summary = replay_suite(source, repo=repo, bundles=bundles, trust=trust, timeout=timeout)
    if json_out:
        print_json(summary)
    elif not quiet:
        for row in summary["replays"]:
            word = "reproduced" if row["reproduced"] else "NOT reproduced"
            typer.echo(f"{word:15} {row['run']} ({row['role']}) {row['original']} -> "
                       f"{row['bundle'] or row['error']}")
        typer.echo("REPRODUCED" if summary["reproduced"] else "NOT REPRODUCED")
    raise typer.Exit(0 if summary["reproduced"] else 1)
