"""`nb-evidence capture SPEC`: one spec through every engine, one bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bundle.model.errors import UserError
from cli.output import RESULT_EXIT, print_json, stdout_console
from cli.progress import Progress


def default_repo(target_name: str) -> Path:
    """minibragg's repo is the nb-evidence checkout that ships it; anything else: the cwd."""
    if target_name == "minibragg":
        # cli/ and minibragg/ are siblings, in a checkout and in site-packages alike.
        root = Path(__file__).resolve().parent.parent
        if (root / "minibragg" / "minibragg.c").is_file():
            return root
    return Path.cwd()


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
    from bundle.capture.options import CaptureOptions
    from bundle.pipeline import capture as run_capture, plan_capture
    from bundle.present.manifest import result_json
    from bundle.capture.plan import describe
    from bundle.capture.spec import load_spec, with_engine_option
    from bundle.capture.target import load_target
    from bundle.capture.environment import gpu_present
    from bundle.capture.preflight import device_refusal

    if in_container and native:
        raise UserError("--in-container and --native exclude each other")
    if c_only and py_only:
        raise UserError("--c-only and --py-only exclude each other")
    loaded = load_spec(spec)
    profile = load_target(target or loaded.target)
    for option, value, engine in (("dtype", py_dtype, "py"), ("device", py_device, "py"),
                                  ("threads", c_threads, "c")):
        if value is not None:
            if option == "dtype" and value not in ("float32", "float64"):
                raise typer.BadParameter("must be float32 or float64", param_hint="--py-dtype")
            loaded = with_engine_option(loaded, engine, option, value)
    refusal = device_refusal(loaded, gpu_present(), py_device)  # issue 16: before anything runs
    if refusal and not dry_run:
        raise UserError(refusal)
    repo_path = (repo or default_repo(profile.name)).resolve()
    options = CaptureOptions(
        repo=repo_path,
        bundles=bundles,
        engines=("c",) if c_only else ("py",) if py_only else None,
        prebuilt={"c": str(c_bin)} if c_bin else {},
        reuse_logs={"c": str(c_log)} if c_log else {},
        timeout=timeout,
        keep_scratch=keep_scratch,
    )
    if in_container:
        from bundle.container.incontainer import capture_in_container

        progress = Progress(quiet=quiet or json_out)
        try:
            outcome = capture_in_container(spec, target, options, image=image, on_event=progress,
                                           py_dtype=py_dtype, py_device=py_device, c_threads=c_threads)
        finally:
            progress.close()
        _finish(outcome.result, json_out, quiet, timeout)
        return
    if dry_run:
        import tempfile

        scratch = Path(tempfile.gettempdir()) / "nb-evidence-<scratch>"
        for line in describe(plan_capture(loaded, profile, options, scratch)):
            typer.echo(line)
        return
    progress = Progress(quiet=quiet or json_out)
    try:
        result, path = run_capture(loaded, profile, options, on_event=progress)
    finally:
        progress.close()
    _finish(result_json(result, _shown(path)), json_out, quiet, timeout)


def _shown(path: Path) -> str:
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


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

