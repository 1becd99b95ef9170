"""Shared output helpers for commands: one JSON object on stdout, or rich text."""

from __future__ import annotations

import json
import sys

RESULT_EXIT = {"parity": 0, "divergence": 1, "incomplete": 1}


def error_line(exc: BaseException) -> str:
    """How any of our errors reaches the user: one line on stderr, prefixed ``error:``."""
    from bundle.model.files import one_line

    return f"error: {one_line(exc, limit=2000)}"


def print_json(data: dict) -> None:
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def stdout_console():
    """A rich Console for stdout; piped output is not cut to 80 columns, since a truncated key
    name would hide the evidence."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)
