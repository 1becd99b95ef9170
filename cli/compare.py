"""`nb-evidence compare C_LOG PY_LOG`: the comparison offline, on two logs already captured."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cli.output import RESULT_EXIT, print_json, stdout_console


def compare(
    c_log: Path = typer.Argument(..., help="The reference log (e.g. the C run's stdout)."),
    py_log: Path = typer.Argument(..., help="The candidate log (e.g. the PyTorch run's stdout)."),
    rtol: float = typer.Option(1e-6, "--rtol", min=0, help="Relative tolerance."),
    atol: float = typer.Option(0.0, "--atol", min=0, help="Absolute tolerance."),
    c_prefix: Optional[str] = typer.Option(None, "--c-prefix", help="Trace prefix in C_LOG (default: detected)."),
    py_prefix: Optional[str] = typer.Option(None, "--py-prefix", help="Trace prefix in PY_LOG (default: detected)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write comparison tables and report into this new directory."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    target: Optional[str] = typer.Option(None, "--target", help="Target NAME or PROFILE whose key graph classifies the divergences (default: nanobragg's when the logs' keys are nanoBragg's)."),
) -> None:
    """Line two trace logs up key by key and name the first divergence (whatever their prefixes).

    Exit status: 0 parity, 1 divergence, 2 error.
    """
    from bundle.analysis.offline import compare_logs
    from bundle.store.offline import write_comparison

    graph, default_graph = _graphs(target)
    outcome = compare_logs(c_log, py_log, rtol=rtol, atol=atol, ref_prefix=c_prefix,
                           cand_prefix=py_prefix, graph=graph, default_graph=default_graph)
    if out is not None:
        write_comparison(outcome, out)
        outcome.summary["out"] = str(out)
    if json_out:
        print_json(outcome.summary)
    else:
        from cli.render import summary_renderables

        console = stdout_console()
        for renderable in summary_renderables({"result": outcome.summary}):
            console.print(renderable)
    raise typer.Exit(RESULT_EXIT[outcome.summary["verdict"]])


def _graphs(target: Optional[str]):
    """(the --target's key graph, the built-in nanobragg graph to fall back on)."""
    from bundle.capture.target import load_target

    if target is not None:
        return load_target(target).graph, None
    return None, load_target("nanobragg").graph
