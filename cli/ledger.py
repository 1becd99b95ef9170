"""`nb-evidence attach | archive | export`: put a bundle's evidence where the users keep records.

- attach: log the bundle as the newest attempt of an item in the ledger (docs/fix_plan.md);
- archive: keep its manifest.json under manifests/archive/<bundle-id>.json in the repository;
- export: write trace_*_scaling.log, scaling_chain.md and README.md into a reports/ directory.

Library errors (NbError subclasses) propagate to the app's handler (exit 2).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Optional

import typer

# Libraries are imported inside the commands: every command module is imported to build the CLI,
# and `nb-evidence capture` should not pay for the others' imports before its engines start.


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def default_owner() -> str:
    return os.environ.get("USER") or "nb-evidence"


def attach(
    bundle: Path = typer.Argument(..., help="Bundle directory."),
    fix_plan: Path = typer.Option(Path("docs/fix_plan.md"), "--fix-plan", help="The ledger to add the attempt to."),
    item: str = typer.Option(..., "--item", help="Ledger item id, as in its `## [ITEM-ID] Title` heading."),
    owner: Optional[str] = typer.Option(None, "--owner", help="Who made the attempt (default: $USER)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the entry; write nothing."),
    against: Optional[Path] = typer.Option(None, "--against", help="An older bundle: put the diff OLD -> BUNDLE in the entry."),
) -> None:
    """Log BUNDLE as the newest attempt of ITEM in the ledger."""
    from rich.markup import escape
    from rich.text import Text

    from bundle.ledger import fixplan as ledger_lib
    from cli import suite_bundle

    if suite_bundle.is_suite(bundle):  # one attempt summarizing the whole suite
        if against is not None:
            from bundle.model.errors import UserError

            raise UserError(f"--against {against}: attaching a suite takes no --against; "
                            "compare suites with `nb-evidence diff`")
        suite_bundle.attach(bundle, fix_plan, item, owner or default_owner(), dry_run)
        return
    diff_text = None
    if against is not None:
        from bundle.diff.load import diff_paths
        from bundle.diff.markdown import markdown

        diff_text = markdown(diff_paths(against, bundle), all_keys=False)
    result = ledger_lib.attach(bundle, fix_plan, item, owner or default_owner(), dry_run=dry_run,
                               today=date.today(), diff_markdown=diff_text)
    console = _console()
    where = escape(str(result.ledger))
    if result.already_attached:
        num = f" (Attempt #{result.attempt_no})" if result.attempt_no else ""
        console.print(
            f"bundle {escape(result.bundle_id)} is already attached to "
            f"{escape('[' + result.item + ']')}{num} in {where}; nothing written"
        )
        return
    console.print(Text(result.entry.rstrip("\n")))
    if result.written:
        console.print(
            f"[green]attached[/] as Attempt #{result.attempt_no} under {escape('[' + result.item + ']')} in {where}"
        )
    else:
        console.print(
            f"dry run: would add Attempt #{result.attempt_no} under {escape('[' + result.item + ']')} "
            f"in {where}; nothing written"
        )


def archive(
    bundle: Path = typer.Argument(..., help="Bundle directory."),
    repo: Optional[Path] = typer.Option(None, "--repo", help="Repository root (default: the git root around the current directory)."),
) -> None:
    """Copy BUNDLE's manifest.json to manifests/archive/<bundle-id>.json in the repository."""
    from rich.markup import escape

    from bundle.store import archive as archive_lib

    root = repo or archive_lib.find_repo_root(Path.cwd()) or Path.cwd()
    result = archive_lib.archive(bundle, root)
    console = _console()
    if result.created:
        console.print(f"[green]archived[/] {escape(str(result.path))}")
    else:
        console.print(f"already archived, identical: {escape(str(result.path))}; nothing written")


def export(
    bundle: Path = typer.Argument(..., help="Bundle directory."),
    to: Path = typer.Option(..., "--to", help="Target directory, e.g. reports/2026-11-cli-flags/phase_j (created)."),
) -> None:
    """Write BUNDLE's traces, chain table and a README into a reports/ directory (never overwrites)."""
    from rich.markup import escape

    from bundle.ledger import export as export_lib
    from cli import suite_bundle

    if suite_bundle.is_suite(bundle):  # the matrix and the failing runs' traces
        suite_bundle.export(bundle, to)
        return
    written = export_lib.export(bundle, to)
    console = _console()
    console.print(f"[green]exported[/] {len(written)} files to {escape(str(to))}:")
    for p in written:
        console.print(f"  {escape(p.name)}")
