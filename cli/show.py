"""`nb-evidence show BUNDLE`: a bundle's summary on the terminal."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.output import print_json, stdout_console


def show(
    bundle: Path = typer.Argument(..., help="A bundle directory (or its manifest.json), or a suite bundle."),
    json_out: bool = typer.Option(False, "--json", help="Print the bundle's result object."),
) -> None:
    """Print a bundle's verdict, first divergence, chain, metrics and failed commands.

    A bundle directory is verified first: a forged verdict is never shown as evidence (exit 1)."""
    from bundle.store.schema import load_manifest
    from bundle.store.verify import require_intact
    from cli import suite_bundle

    if suite_bundle.is_suite(bundle):  # a suite bundle: its matrix, after verifying every member
        suite_bundle.show(bundle, json_out)
        return

    if bundle.is_dir() or bundle.name == "manifest.json":
        require_intact(bundle)
    manifest = load_manifest(bundle)
    if json_out:
        print_json(manifest["result"])
        return
    from cli.render import summary_renderables

    console = stdout_console()
    for renderable in summary_renderables(manifest):
        console.print(renderable)
