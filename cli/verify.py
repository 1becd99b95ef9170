"""`nb-evidence verify BUNDLE [--json]`: is the bundle exactly what its manifest says?

Exit 0 intact, 1 tampered (missing, changed or extra files, or an invalid manifest); library
errors (not a bundle at all) propagate to the app's handler, which exits 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def verify(
    bundle: Path = typer.Argument(..., help="Bundle directory (or its manifest.json)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Check every file of BUNDLE against the sizes and sha256 sums in its manifest."""
    from rich.console import Console
    from rich.markup import escape

    from bundle.store.verify import verify_bundle

    result = verify_bundle(bundle)
    code = 0 if result.intact else 1
    if json_out:
        typer.echo(json.dumps(result.to_dict(), sort_keys=False))
        raise typer.Exit(code)

    console = Console(highlight=False, soft_wrap=True)
    where = escape(str(result.bundle))
    if result.intact:
        mb = result.bytes_hashed / 1e6
        console.print(
            f"[bold green]intact[/] {where}: {result.files_checked} files ({mb:.1f} MB) "
            "match their size and sha256; manifest valid"
        )
        raise typer.Exit(0)
    console.print(f"[bold red]TAMPERED[/] {where}")
    for label, names in (
        ("missing", result.missing),
        ("changed", result.changed),
        ("extra", result.extra),
    ):
        for name in names:
            console.print(f"  [red]{label:8}[/] {escape(name)}")
    for problem in result.schema_problems:
        console.print(f"  [red]manifest[/] {escape(problem)}")
    raise typer.Exit(code)
