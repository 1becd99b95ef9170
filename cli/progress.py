"""Progress lines on a terminal: one line per step with its elapsed time; silent otherwise."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bundle.capture.runner import Event


class Progress:
    """An on_event sink. Quiet when stderr is not a terminal or --quiet was given."""

    def __init__(self, quiet: bool = False) -> None:
        self.console = None
        if not quiet and sys.stderr.isatty():  # rich is imported only when there is a terminal
            from rich.console import Console

            self.console = Console(stderr=True)
        self.enabled = self.console is not None and self.console.is_terminal
        self._status = None

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return
        if event.kind == "start":
            self._stop()
            self._status = self.console.status(f"[bold]{event.step}[/] {event.message}")
            self._status.start()
        elif event.kind in ("end", "skip"):
            self._stop()
            mark = "[green]✓[/]" if event.ok else "[red]✗[/]"
            took = f" {event.wall_s:.2f} s" if event.wall_s is not None else ""
            self.console.print(f"{mark} {event.step}{took}  [dim]{event.message}[/]")
        else:
            self._stop()
            self.console.print(f"[dim]… {event.step}: {event.message}[/]")

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def close(self) -> None:
        self._stop()
