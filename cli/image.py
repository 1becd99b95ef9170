"""`nb-evidence image build`: the pinned CPU image, through the same container seam a capture
--in-container builds with (``make image`` runs this)."""

from __future__ import annotations

from typing import List, Optional

import typer

image_app = typer.Typer(help="The pinned image captures run in.", no_args_is_help=True)


@image_app.command("build")
def build(
    base_image: Optional[str] = typer.Option(None, "--base-image", envvar="NB_BASE_IMAGE", help="The Dockerfile's BASE_IMAGE (default: local/debian:bookworm when the engine has it, else the Dockerfile's)."),
    tag: List[str] = typer.Option(["nb-evidence:cpu"], "--tag", help="Tags besides the content tag."),
    network: Optional[str] = typer.Option(None, "--network", help="Network mode of the build containers (e.g. host)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary line."),
) -> None:
    """Build this checkout's Dockerfile under its content tag; print tag, id, size and time."""
    from bundle.container import docker_seam as container

    def show(event: container.ContainerEvent) -> None:
        typer.echo(event.message, err=True)

    engine = container.connect()
    built = container.build_image(engine, base_image=base_image or container.default_base(engine),
                                  extra_tags=tag, network=network,
                                  on_event=None if quiet else show)
    also = "".join(f" = {t}" for t in built.tags[1:])
    typer.echo(f"image: {built.tags[0]}{also}, id {built.info.id}, {built.size} bytes, "
               f"built in {built.seconds:.0f}s")
