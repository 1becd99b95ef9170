"""`nb-evidence verify BUNDLE [--json]`: is the bundle exactly what its manifest says?

Exit 0 intact, 1 tampered (missing, changed or extra files, or an invalid manifest); library
errors (not a bundle at all) propagate to the app's handler, which exits 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def verify(
    bundle: Optional[Path] = typer.Argument(None, help="Bundle directory (or its manifest.json), or a suite or bisect bundle (every member is verified)."),
    ledger: Optional[Path] = typer.Option(None, "--ledger", help="Check every bundle this ledger (fix_plan.md) references, by the manifest sha256 attach recorded."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Check every file of BUNDLE against the sizes and sha256 sums in its manifest, and the
    manifest's result, tables and report against the comparison recomputed from its logs."""
    from rich.console import Console
    from rich.markup import escape

    from bundle.model.errors import UserError
    from bundle.store.verify import verify_bundle

    if (bundle is None) == (ledger is None):
        raise UserError("verify: give a BUNDLE or --ledger FIX_PLAN (one of them)")
    if ledger is not None:
        _verify_ledger(ledger, json_out)
    from cli import suite_bundle

    if suite_bundle.is_suite(bundle):  # a suite bundle: itself and every member
        suite_bundle.verify(bundle, json_out)
    from bundle.bisect.verify import is_bisect_bundle

    if is_bisect_bundle(bundle):  # a bisect bundle: itself and every probed commit's bundle
        suite_bundle.verify(bundle, json_out, kind="bisect")
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
    for problem in result.schema_problems + result.claims:
        console.print(f"  [red]manifest[/] {escape(problem)}")
    raise typer.Exit(code)


def _verify_ledger(ledger: Path, json_out: bool) -> None:
    """Exit 0 when every referenced bundle is there, unchanged and intact; 1 otherwise."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.markup import escape

    from bundle.ledger.fixplan import verify_ledger

    from bundle.suite.ledger import verify_ledger_suites

    checked = verify_ledger(ledger) + verify_ledger_suites(ledger)  # capture and suite attempts
    code = 0 if all(c.problem is None for c in checked) else 1
    if json_out:
        typer.echo(json.dumps({"ledger": str(ledger), "intact": code == 0,
                               "bundles": [asdict(c) for c in checked]}))
        raise typer.Exit(code)
    console = Console(highlight=False, soft_wrap=True)
    for c in checked:
        word = "[bold green]intact[/]" if c.problem is None else "[bold red]TAMPERED[/]"
        console.print(f"{word} {escape(c.problem or c.path)}")
    console.print(f"{len(checked)} bundle(s) referenced by {escape(str(ledger))} with a manifest sha256; "
                  + ("all intact" if code == 0 else "NOT all intact"))
    raise typer.Exit(code)
