"""``explainvec study``: run a transfer study from its JSON config and print its table."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from pydantic import ValidationError

from explainvec.cli.app import app, console, handle_errors, progress_bar
from explainvec.models.records import one_error
from explainvec.study import Study, run_study, study_figures, study_table


@app.command("study")
@handle_errors
def study_command(
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="Study config (JSON)."),
    runs: Path = typer.Option(Path("runs/study"), help="Folder of the study's models and results."),
    only: list[str] = typer.Option(None, help="Rerun only these variants."),
    table: bool = typer.Option(False, help="Only print the table of the finished cells."),
) -> None:
    """Compare recipes of τ paired over bases and target seeds, beside λ = 0, rollout, the direct
    attribution, integrated gradients, Kernel SHAP-150 and the oracle; results in RUNS/<config name>.json,
    its figures (λ curves, transfer against fine-tuning distance) beside it."""
    try:
        study = Study.model_validate_json(config.read_text())
    except ValidationError as error:
        raise ValueError(f"{config}: {one_error(error)}") from error
    results_path = runs / f"{config.stem}.json"
    if table:
        if not results_path.is_file():
            raise FileNotFoundError(f"no results for {config} in {runs} (run the study first)")
        results = json.loads(results_path.read_text())
    else:
        with progress_bar() as progress:
            results = run_study(study, runs, name=config.stem, progress=progress, only=only or None)
        console.print(f"wrote {results_path}")
    for figure in study_figures(results, runs / config.stem):
        console.print(f"wrote {figure}")
    print(study_table(results))
