"""The root typer app: composes the command modules and maps our errors to exit codes, once."""

from __future__ import annotations

import sys

import typer

from bundle.model.errors import NbError
from cli import capture as capture_cmd
from cli import compare as compare_cmd
from cli import show as show_cmd
from cli.output import error_line

app = typer.Typer(
    name="nb-evidence",
    help="Reproducible C-versus-PyTorch parity evidence for nanoBragg-style simulators.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("capture")(capture_cmd.capture)
app.command("compare")(compare_cmd.compare)
app.command("show")(show_cmd.show)


def _register_optional() -> None:
    """Commands from modules that may grow independently; each registers itself here."""
    from cli import image as image_cmd
    from cli import ledger as ledger_cmd
    from cli import replay as replay_cmd
    from cli import verify as verify_cmd

    app.command("verify")(verify_cmd.verify)
    app.command("replay")(replay_cmd.replay)
    app.command("archive")(ledger_cmd.archive)
    app.command("attach")(ledger_cmd.attach)
    app.command("export")(ledger_cmd.export)
    app.add_typer(image_cmd.image_app, name="image")


_register_optional()


def main() -> None:
    try:
        app(prog_name="nb-evidence")
    except NbError as exc:
        from rich.console import Console

        Console(stderr=True, highlight=False, soft_wrap=True).print(error_line(exc), markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        from rich.console import Console

        Console(stderr=True).print("interrupted")
        sys.exit(130)
