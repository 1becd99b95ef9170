"""`nb-evidence capture SPEC`: one spec through every engine, one bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bundle.model.errors import UserError
from cli.output import RESULT_EXIT, print_json, stdout_console
from cli.progress import Progress


def capture(
    spec: Path = typer.Argument(..., help="Capture spec (TOML), e.g. manifests/cli-flags-003-phase-j.toml."),
    target: Optional[str] = typer.Option(None, "--target", help="Built-in target (minibragg, nanobragg) or a profile TOML; default: the spec's."),
    repo: Optional[Path] = typer.Option(None, "--repo", help="The checkout the target builds and runs from."),
    bundles: Path = typer.Option(Path("bundles"), "--bundles", help="Where bundles are written."),
    c_bin: Optional[Path] = typer.Option(None, "--c-bin", envvar="NB_C_BIN", help="Prebuilt C binary instead of building it (hashed and recorded)."),
    c_log: Optional[Path] = typer.Option(None, "--c-log", help="Reuse an already captured C trace log instead of running C."),
    c_only: bool = typer.Option(False, "--c-only", help="Run only the C engine."),
    py_only: bool = typer.Option(False, "--py-only", help="Run only the PyTorch engine."),
    py_dtype: Optional[str] = typer.Option(None, "--py-dtype", help="PyTorch dtype (float32|float64), recorded."),
    py_device: Optional[str] = typer.Option(None, "--py-device", help="PyTorch device (cpu|cuda), recorded."),
    c_threads: Optional[int] = typer.Option(None, "--c-threads", help="OMP_NUM_THREADS for the C engine, recorded."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds allowed per command."),
    in_container: bool = typer.Option(False, "--in-container", help="Run the whole capture inside the pinned image."),
    native: bool = typer.Option(False, "--native", help="Run on this machine (the default)."),
    image: Optional[str] = typer.Option(None, "--image", help="Image for --in-container: cpu (default, this checkout's content tag), cuda (make image-cuda) or a tag."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and run nothing."),
    keep_scratch: bool = typer.Option(False, "--keep-scratch", help="Keep the engines' scratch directories."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Run SPEC through both engines with one argument list, compare, and write a bundle.

    Exit status: 0 parity, 1 divergence or incomplete trace, 2 error.
    """
    # The library is imported here, not at module level, so `--help` and the light commands
    # start without loading matplotlib and rocrate.
    from bundle.capture.request import make_request
    from bundle.pipeline import execute

    request = make_request(
        spec, repo=repo, bundles=bundles, target=target, c_bin=c_bin, c_log=c_log,
        c_only=c_only, py_only=py_only, timeout=timeout, in_container=in_container,
        native=native, image=image, dry_run=dry_run, keep_scratch=keep_scratch,
        engine_options={("py", "dtype"): py_dtype, ("py", "device"): py_device,
                        ("c", "threads"): c_threads})
    progress = Progress(quiet=quiet or json_out or dry_run)
    try:
        outcome = execute(request, on_event=progress)
    finally:
        progress.close()
    if outcome.summary is None:
        for line in outcome.plan.lines():
            typer.echo(line)
        return
    _finish(outcome.summary, json_out, quiet, timeout)


def _finish(summary: dict, json_out: bool, quiet: bool, timeout: float | None) -> None:
    for note in summary.get("notes") or ():
        if note.startswith("warning: "):  # the preflight's (issue 17): shown even with --json
            typer.echo(note, err=True)
    if json_out:
        print_json(summary)
    elif not quiet:
        from cli.render import summary_renderables

        console = stdout_console()
        for renderable in summary_renderables({"result": summary}):
            console.print(renderable)
        console.print(f"bundle: {summary.get('bundle')}  verdict: {summary['verdict']}")
    timed_out = [c for c in summary.get("failed_commands", []) if c.get("timed_out")]
    if timed_out:
        # A timeout is the user's limit being hit: an error (exit 2), though the partial bundle
        # with everything captured up to then is kept.
        raise UserError(f"--timeout {timeout:g}: command {timed_out[0]['step']} timed out; "
                        f"partial bundle kept at {summary.get('bundle')}")
    raise typer.Exit(RESULT_EXIT.get(summary["verdict"], 1))

