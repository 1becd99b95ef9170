"""`nb-evidence gate BASELINE`: capture on the current checkout, diff against BASELINE, fail on a
regression. stdout: the new bundle's path; stderr: what was chosen and one line per regression;
$GITHUB_STEP_SUMMARY (when set): a Markdown summary appended.

Exit status: 0 nothing regressed (or only allowed keys), 1 a regression, 2 an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer


def gate(
    baseline: Path = typer.Argument(..., help="An archived bundle, a suite bundle, or a manifest under manifests/archive/."),
    capture: Optional[str] = typer.Option(None, "--capture", help="Capture this spec (default: the baseline's own)."),
    suite: Optional[str] = typer.Option(None, "--suite", help="Run this suite (default: the baseline suite's own)."),
    repo: Optional[Path] = typer.Option(None, "--repo", help="The checkout to capture (default: as capture decides)."),
    allow: Optional[List[str]] = typer.Option(None, "--allow", help="A key (or metric, or `verdict`) allowed to regress: reported, not failing. Repeatable."),
    bundles: Path = typer.Option(Path("bundles"), "--bundles", help="Where the new bundle is written."),
) -> None:
    """Fail (exit 1) when the current checkout regresses against BASELINE."""
    from bundle.gate.run import GateRequest, run_gate
    from bundle.model.errors import UserError

    outcome = run_gate(GateRequest(str(baseline), capture, suite, str(repo) if repo else None,
                                   tuple(allow or ()), str(bundles)))
    typer.echo(f"gate: {outcome.chose}", err=True)
    for line in outcome.lines():
        typer.echo(line, err=True)
    for r in outcome.allowed:
        typer.echo(f"allowed: {r.name}: {r.before} → {r.after}", err=True)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(outcome.summary_markdown())
        except OSError as exc:
            raise UserError(f"$GITHUB_STEP_SUMMARY {summary}: cannot append: {exc.strerror or exc}") from None
    typer.echo(outcome.bundle)
    raise typer.Exit(outcome.exit_code)
