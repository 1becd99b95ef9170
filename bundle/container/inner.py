"""The in-container capture's (and replay's) command line and mounts, built from the request alone (pure: no
engine, no Docker import), so every option the host was given reaches the capture inside."""

from __future__ import annotations

from pathlib import Path

from bundle.capture.request import ENGINE_FLAGS, CaptureRequest
from bundle.container.seam import Mount

REPO, BUNDLES, EXTRA, SOURCE = "/repo", "/bundles", "/nb-inputs", "/source"


class _Places:
    """Host paths as the container sees them: under /repo when inside the repo, else each one's
    directory mounted read-only under /nb-inputs/<name>."""

    def __init__(self, repo: Path, bundles: Path):
        self.repo = repo
        self.mounts = [Mount(repo, REPO), Mount(bundles, BUNDLES, read_only=False)]

    def inside(self, path: Path, name: str) -> str:
        path = path.resolve()
        try:
            return f"{REPO}/{path.relative_to(self.repo).as_posix()}"
        except ValueError:
            target = f"{EXTRA}/{name}"
            self.mounts.append(Mount(path.parent, target))
            return f"{target}/{path.name}"


def inner_capture(request: CaptureRequest) -> tuple[list[str], list[Mount]]:
    """``nb-evidence`` arguments for the native capture inside the image, and its mounts."""
    options = request.options
    places = _Places(options.repo.resolve(), options.bundles.resolve())
    argv = ["capture", places.inside(request.spec_path, "spec"), "--native", "--repo", REPO,
            "--bundles", BUNDLES, "--json", "--quiet"]
    if request.target:
        target = Path(request.target)
        argv += ["--target", places.inside(target, "target") if target.is_file() else request.target]
    for engine, binary in options.prebuilt.items():
        argv += ["--c-bin", places.inside(Path(binary), f"bin-{engine}")]
    for engine, log in options.reuse_logs.items():
        argv += ["--c-log", places.inside(Path(log), f"log-{engine}")]
    if options.engines == ("c",):
        argv.append("--c-only")
    elif options.engines == ("py",):
        argv.append("--py-only")
    for engine, option, value in request.engine_options:
        argv += [ENGINE_FLAGS[(engine, option)], str(value)]
    if options.timeout is not None:
        argv += ["--timeout", str(options.timeout)]
    if options.keep_scratch:
        argv.append("--keep-scratch")
    return argv, places.mounts


def inner_replay(source: Path, repo: Path, bundles: Path, *, trust: bool = False,
                 timeout: float | None = None) -> tuple[list[str], list[Mount]]:
    """``nb-evidence`` arguments for the native replay inside the image of a bundle directory or
    manifest at ``source``, and its mounts (``source``'s directory read-only at /source)."""
    source = source.resolve()
    src_dir = source if source.is_dir() else source.parent
    inner_source = SOURCE if source.is_dir() else f"{SOURCE}/{source.name}"
    mounts = [Mount(repo, REPO), Mount(src_dir, SOURCE), Mount(bundles, BUNDLES, read_only=False)]
    argv = ["replay", inner_source, "--native", "--repo", REPO, "--bundles", BUNDLES, "--json",
            "--quiet"]
    if trust:
        argv.append("--trust")
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    return argv, mounts
