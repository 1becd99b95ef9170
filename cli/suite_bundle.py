"""verify, show, export and attach on a suite bundle (a directory with suite.json): the commands
detect one with bundle.suite.store.is_suite_bundle and hand it here. Thin: the work is in
bundle/suite/; this module only prints.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer

from cli.output import print_json, stdout_console


def is_suite(path: Path | None) -> bool:
    if path is None:
        return False
    from bundle.suite.store import is_suite_bundle

    return is_suite_bundle(path)


def verify(path: Path, json_out: bool, kind: str = "suite") -> None:
    """Exit 0 when the suite (or bisect) bundle and every member are intact, 1 otherwise."""
    from rich.markup import escape

    if kind == "bisect":
        from bundle.bisect.verify import verify_bisect as verify_many
    else:
        from bundle.suite.store import verify_suite as verify_many

    result = verify_many(path)
    code = 0 if result.intact else 1
    if json_out:
        typer.echo(json.dumps(result.to_dict()))
        raise typer.Exit(code)
    console = stdout_console()
    for rel, state in result.files:
        if state != "OK":
            console.print(f"  [red]{state.lower():8}[/] {escape(rel)}")
    for m in result.members:
        colour = "green" if m.state == "OK" else "red"
        detail = f": {escape(m.detail)}" if m.detail else ""
        console.print(f"  [{colour}]{m.state:8}[/] {escape(m.run)} ({m.role}) {escape(m.bundle)}{detail}")
    word = "[bold green]intact[/]" if result.intact else "[bold red]TAMPERED[/]"
    console.print(f"{word} {kind} {escape(str(result.path))}: {len(result.files)} files, "
                  f"{len(result.members)} member bundles")
    raise typer.Exit(code)


def show(path: Path, json_out: bool) -> None:
    """The matrix as a rich table, after verifying the suite (a tampered one is refused)."""
    from rich.markup import escape
    from rich.table import Table

    from bundle.model.errors import BundleError
    from bundle.suite import vocabulary as words
    from bundle.suite.report import matrix_rows
    from bundle.suite.store import load_suite_bundle, verify_suite

    if not verify_suite(path).intact:
        raise BundleError(f"{path}: suite bundle is not intact; see `nb-evidence verify {path}`")
    data = load_suite_bundle(path)
    if json_out:
        print_json(data)
        return
    header, rows = matrix_rows(list(data["members"]))
    table = Table(title=f"{words.suite_title(data['name'])}: {words.summary_line(data['summary'])}")
    for h in header:
        table.add_column(escape(h))
    for row in rows:
        table.add_row(escape(row[0]), *(_cell(c) for c in row[1:]))
    console = stdout_console()
    console.print(table)
    for m in data["members"]:
        if m["status"] != "pass":
            where = words.divergence_text(m)
            console.print(f"  [red]{words.status_word(m['status'])}[/] {escape(m['id'])}: {escape(where)}"
                          + (f" → ../{escape(m['trace_bundle'] or m['bundle'] or '')}/" if m.get("bundle") else ""))


def _cell(text: str) -> str:
    from rich.markup import escape

    from bundle.suite import vocabulary as words

    colour = {words.OK: "green", words.BAD: "red", words.ERROR_MARK: "yellow"}.get(text[:1])
    return f"[{colour}]{escape(text)}[/]" if colour else escape(text)


def export(path: Path, to: Path) -> None:
    from rich.markup import escape

    from bundle.suite.export import export_suite

    written = export_suite(path, to)
    console = stdout_console()
    console.print(f"[green]exported[/] {len(written)} files to {escape(str(to))}:")
    for p in written:
        console.print(f"  {escape(p.relative_to(to).as_posix())}")


def attach(path: Path, fix_plan: Path, item: str, owner: str, dry_run: bool) -> None:
    from rich.markup import escape
    from rich.text import Text

    from bundle.suite.ledger import attach_suite

    from rich.console import Console

    result = attach_suite(path, fix_plan, item, owner, dry_run=dry_run, today=date.today())
    console = Console(highlight=False, soft_wrap=True)  # as a capture's attach: entry lines unbroken
    where, tag = escape(str(result.ledger)), escape("[" + result.item + "]")
    if result.already_attached:
        console.print(f"suite bundle {escape(result.bundle_id)} is already attached to {tag} in {where}; nothing written")
        return
    console.print(Text(result.entry.rstrip("\n")))
    verb = "attached" if result.written else "dry run: would add"
    console.print(f"{verb} Attempt #{result.attempt_no} under {tag} in {where}"
                  + ("" if result.written else "; nothing written"))
