"""``explainvec domains``: what the embedded synthetic domains hold, and exporting one as an image folder."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.data.domains import DOMAINS
from explainvec.data.export import export_domain
from explainvec.io import output_folder


@app.command("domains")
@handle_errors
def domains_command(
    export: str | None = typer.Option(None, help="Write this domain out as an image folder (see --to)."),
    to: Path | None = typer.Option(None, help="With --export: the folder root/<split>/<class>/*.png."),
    size: int = typer.Option(200, help="With --export: images per split."),
    img_size: int = typer.Option(32, help="With --export: image side in pixels."),
    patch_size: int = typer.Option(8, help="With --export: patch side the objects are aligned to."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="With --export: write into a TO that holds files."
    ),
) -> None:
    """List the embedded synthetic domains (use them as --data synthetic:<name>), or export one."""
    if export is not None:
        if to is None:
            raise ValueError("--export needs --to FOLDER")
        sizes = dict.fromkeys(("train", "val", "test"), size)
        with output_folder(to, overwrite=overwrite, option="--to"), progress_bar() as progress:
            export_domain(
                export, to, sizes=sizes, image_size=img_size, patch_size=patch_size, progress=progress
            )
        console.print(f"wrote {to} (masks in {to / 'masks'})")
        return
    table = Table("name", "classes", "styles", "description")
    for d in DOMAINS.values():
        table.add_row(d.name, ", ".join(d.classes), ", ".join(d.styles), d.description)
    console.print(table)
