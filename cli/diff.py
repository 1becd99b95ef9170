"""`nb-evidence diff A B`: before (A) against after (B), two bundles or two suites.

Exit status: 0 nothing regressed, 1 anything regressed, 2 an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cli.output import print_json, stdout_console


def write_new(path: Path, text: str, flag: str) -> None:
    """Write a file that must not exist yet (never overwrite): one line and exit 2 otherwise."""
    from bundle.model.errors import UserError
    from bundle.model.files import write_atomic

    if path.exists() or path.is_symlink():
        raise UserError(f"{flag} {path}: already exists; nothing written")
    try:
        write_atomic(path, text.encode("utf-8"), exclusive=True)
    except FileExistsError:
        raise UserError(f"{flag} {path}: already exists; nothing written") from None
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot write: {exc.strerror or exc}") from None


def diff(
    a: Path = typer.Argument(..., help="Before: a bundle, an archived manifest JSON, or a suite bundle."),
    b: Path = typer.Argument(..., help="After: the same kind as A."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    md: Optional[Path] = typer.Option(None, "--md", help="Also write the diff as Markdown to FILE (never overwritten)."),
) -> None:
    """What changed between two runs and whether anything regressed.

    Exit status: 0 nothing regressed, 1 something regressed, 2 an error.
    """
    from bundle.diff.load import diff_paths
    from bundle.diff.markdown import markdown

    result = diff_paths(a, b)
    text = markdown(result)
    if md is not None:
        write_new(md, text, "--md")
    if json_out:
        print_json(result.to_data())
    else:
        from rich.markdown import Markdown

        stdout_console().print(Markdown(text))
    raise typer.Exit(1 if result.regressed else 0)
