"""``explainvec demo``: the README's main job."""

from __future__ import annotations

from pathlib import Path

import typer

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.demo import DEMO_PRESETS, run_demo
from explainvec.models.device import resolve_device


@app.command("demo")
@handle_errors
def demo_command(
    out: Path = typer.Option(Path("demo-out"), help="Folder for report.md, report.json, models and figures."),
    preset: str = typer.Option("quick", help=f"One of: {', '.join(DEMO_PRESETS)}."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto"),
) -> None:
    """Run the whole pipeline on the embedded synthetic domains and write a report."""
    torch_device = resolve_device(device)
    with progress_bar() as progress:
        report = run_demo(preset, out, device=str(torch_device), progress=progress)
    console.print(report.to_markdown(), highlight=False, markup=False)
    console.print(f"report: {out / 'report.md'}")
