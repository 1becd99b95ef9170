"""The root typer app: composes the command modules and maps our errors to exit codes, once."""

from __future__ import annotations

import signal
import sys

import typer

from bundle.model.errors import Interrupted, NbError
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
    from cli import diff as diff_cmd
    from cli import gate as gate_cmd
    from cli import image as image_cmd
    from cli import ledger as ledger_cmd
    from cli import replay as replay_cmd
    from cli import suite as suite_cmd
    from cli import verify as verify_cmd

    app.command("verify")(verify_cmd.verify)
    app.command("replay")(replay_cmd.replay)
    app.command("suite")(suite_cmd.suite)
    app.command("archive")(ledger_cmd.archive)
    app.command("attach")(ledger_cmd.attach)
    app.command("export")(ledger_cmd.export)
    app.command("diff")(diff_cmd.diff)
    app.command("gate")(gate_cmd.gate)
    app.add_typer(image_cmd.image_app, name="image")


_register_optional()


TRAPPED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, _frame) -> None:
    # Later signals are ignored: the cleanup the first one starts (killing engine process
    # groups and containers, removing scratch and staging) must not itself be cut short. A
    # Python no-op, not SIG_IGN: a signal already pending when SIG_IGN is set makes CPython
    # raise "ignored due to race condition" in the middle of that cleanup.
    for sig in TRAPPED:
        signal.signal(sig, _ignore)
    raise Interrupted(signum)


def _ignore(_signum: int, _frame) -> None:
    return None


def main() -> None:
    for sig in TRAPPED:
        signal.signal(sig, _interrupt)
    try:
        code = app(prog_name="nb-evidence", standalone_mode=False)
    except NbError as exc:
        _fail(error_line(exc), exc.exit_code)
    except typer.TyperException as exc:  # typer's (click's) usage errors
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # no arguments asks for the help text, not for an error line
            sys.exit(exc.exit_code)
        _fail(usage_line(exc), exc.exit_code)
    except (Interrupted, KeyboardInterrupt, typer.Abort) as exc:
        _fail("interrupted", getattr(exc, "exit_code", 130))
    sys.exit(code if isinstance(code, int) else 0)


def usage_line(exc: typer.TyperException) -> str:
    """A usage error (unknown option, missing argument, bad value) in our one-line format, naming
    the command it was given to."""
    ctx = getattr(exc, "ctx", None)
    where = f"{ctx.command_path}: " if ctx is not None else ""
    hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    return error_line(f"{where}{exc.format_message()}{hint}")


def _fail(line: str, code: int) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(line, markup=False)
    sys.exit(code)
