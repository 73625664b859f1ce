"""The study runner: two bases × two target seeds, every row paired on the same images and models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from explainvec.cli.main import app
from explainvec.study import Study, cluster_interval, run_study, study_table
from explainvec.study.table import row_interval

CONFIGS = sorted((Path(__file__).parents[1] / "experiments").glob("*/*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=[f"{p.parent.name}/{p.name}" for p in CONFIGS])
def test_every_study_config_in_the_repository_validates(path):
    study = Study.model_validate_json(path.read_text())
    assert study.variants and len({v.name for v in study.variants}) == len(study.variants)


TINY = {
    "grid": "4x4",
    "pretrain_epochs": 1,
    "pretrain_size": 200,
    "bases": [0, 1],
    "target_seeds": [0, 1],
    "predict_epochs": 1,
    "train_size": 100,
    "eval_size": 40,
    "fidelity_images": 4,
    "lambda_images": 8,
    "reference_budget": 64,
    "exact_reference": False,
    "baselines": ["rollout"],
    "oracle_recipe": "default",
    "variants": [
        {"name": "default", "epochs": 1, "coalitions": 4},
        {
            "name": "contributions",
            "recipe": "shared",
            "adapter": "contributions",
            "backbone": False,
            "with_base": True,
            "epochs": 1,
            "coalitions": 4,
        },
    ],
    "distances": [{"lr": 1e-3, "epochs": 1}],
}


def test_cluster_interval_resamples_bases_then_images():
    tight = [np.full(50, 1.0), np.full(50, 1.0), np.full(50, 1.0)]
    assert cluster_interval(tight).low == cluster_interval(tight).high == 1.0
    spread = [np.full(50, 0.0), np.full(50, 1.0), np.full(50, 2.0)]  # bases disagree, images do not
    interval = cluster_interval(spread)
    assert (
        interval.mean == pytest.approx(1.0) and interval.low <= 1 / 3 + 1e-9 and interval.high >= 5 / 3 - 1e-9
    )
    single = cluster_interval([np.arange(100.0)])
    assert 40 < single.low < single.mean < single.high < 60


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPLAINVEC_CACHE", str(runs / "cache"))
        yield run_study(Study.model_validate(TINY), runs, name="tiny"), runs


def test_every_cell_holds_every_row_on_the_same_images(results):
    results, runs = results
    assert sorted(results["cells"]) == ["b0-s0", "b0-s1", "b1-s0", "b1-s1"]
    for name, cell in results["cells"].items():
        expected = {"lambda0", "rollout", "default", "contributions"} | (
            {"oracle"} if name.endswith("s0") else set()
        )
        assert set(cell) == expected
        for row in cell.values():
            assert len(row["per_image"]["pearson"]) == TINY["fidelity_images"]
            assert 0 <= row["accuracy"] <= 1
        # λ = 0 and rollout explain the same target: same accuracy, different maps
        assert cell["lambda0"]["accuracy"] == cell["rollout"]["accuracy"]
        assert cell["lambda0"]["per_image"]["pearson"] != cell["rollout"]["per_image"]["pearson"]
        assert cell["default"]["lambda"] in [point["lam"] for point in cell["default"]["curve"]]
    # the two bases and the two target seeds are different models
    b0, b1 = results["cells"]["b0-s0"]["lambda0"], results["cells"]["b1-s0"]["lambda0"]
    s1 = results["cells"]["b0-s1"]["lambda0"]
    assert b0["per_image"]["pearson"] != b1["per_image"]["pearson"] != s1["per_image"]["pearson"]
    assert json.loads((runs / "tiny.json").read_text())["cells"] == results["cells"]


def test_paired_difference_is_the_mean_of_per_image_differences(results):
    results, _ = results
    diff = row_interval(results, "default", "insertion_minus_deletion", against="lambda0")
    by_hand = np.mean(
        [
            np.subtract(
                c["default"]["per_image"]["insertion_minus_deletion"],
                c["lambda0"]["per_image"]["insertion_minus_deletion"],
            )
            for c in results["cells"].values()
        ]
    )
    assert diff.mean == pytest.approx(by_hand)
    assert diff.low <= diff.mean <= diff.high
    table = study_table(results)
    assert table.count("\n") == 1 + 5 and "| default |" in table and "Δ ins − del vs rollout" in table


def test_a_rerun_trains_nothing_and_keeps_the_results(results, monkeypatch):
    results, runs = results
    monkeypatch.setenv("EXPLAINVEC_CACHE", str(runs / "cache"))
    import explainvec.study.run as run

    def refuse(*args, **kwargs):
        raise AssertionError("a finished study retrained a model")

    monkeypatch.setattr(run, "finetune", refuse)
    monkeypatch.setattr(run, "train_explainer", refuse)
    again = run_study(Study.model_validate(TINY), runs, name="tiny")
    assert again["cells"] == results["cells"]


def test_a_shared_oracle_is_its_recipe_trained_on_the_target_model_alone(results, monkeypatch):
    """Naming a shared recipe as the oracle measures the oracle again: τ trained on the target model's own
    game, added at λ = 1, so its predictions are the target's; the rows already there are kept."""
    results, runs = results
    monkeypatch.setenv("EXPLAINVEC_CACHE", str(runs / "cache"))
    before = results["cells"]["b0-s0"]
    one_cell = {"bases": [0], "target_seeds": [0]}
    study = Study.model_validate({**TINY, "oracle_recipe": "contributions", **one_cell})
    cell = run_study(study, runs, name="tiny-oracle")["cells"]["b0-s0"]
    oracle = cell["oracle"]
    assert oracle["recipe"] == "contributions" and before["oracle"]["recipe"] == "default"
    assert oracle["agreement"] == 1.0 and oracle["accuracy"] == cell["lambda0"]["accuracy"]
    assert oracle["per_image"] != cell["contributions"]["per_image"]  # not the transferred τ
    assert cell["contributions"]["per_image"] == before["contributions"]["per_image"]


def test_the_cli_prints_the_table_and_refuses_a_bad_config(results, tmp_path):
    _, runs = results
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    shown = CliRunner().invoke(app, ["study", str(config), "--runs", str(runs), "--table"])
    assert shown.exit_code == 0 and "| oracle |" in shown.output
    before = (runs / "tiny.json").read_bytes()
    typo = CliRunner().invoke(app, ["study", str(config), "--runs", str(runs), "--only", "defualt"])
    assert typo.exit_code == 2 and "'defualt'" in typo.output
    assert (runs / "tiny.json").read_bytes() == before  # nothing rerun, nothing written
    config.write_text(json.dumps({**TINY, "bases": []}))
    refused = CliRunner().invoke(app, ["study", str(config), "--runs", str(runs)])
    assert refused.exit_code == 2 and "bases" in refused.output


def test_adapter_rows_keep_every_prediction(results):
    results, _ = results
    for cell in results["cells"].values():
        assert cell["contributions"]["agreement"] == 1.0
        assert cell["contributions"]["accuracy"] == cell["lambda0"]["accuracy"]


def test_distance_curve_measures_every_row_on_each_base_and_draws_the_figures(results):
    from explainvec.study import study_figures

    results, runs = results
    by_base = results["distances"]["lr0.001-e1"]
    assert sorted(by_base) == ["b0", "b1"]
    for rows in by_base.values():
        assert set(rows) == {"lambda0", "rollout", "direct_attribution", "default", "contributions"}
        for row in rows.values():
            assert len(row["insertion_minus_deletion"]) == TINY["fidelity_images"]
            np.testing.assert_allclose(
                row["insertion_minus_deletion"], np.subtract(row["insertion_auc"], row["deletion_auc"])
            )
    # the distance target is another model than the study's target: λ = 0 scores differ
    cell = results["cells"]["b0-s0"]["lambda0"]["per_image"]["insertion_minus_deletion"]
    assert by_base["b0"]["lambda0"]["insertion_minus_deletion"] != cell
    figures = study_figures(results, runs / "tiny")
    assert [f.name for f in figures] == ["tiny-lambda.png", "tiny-distance.png"]
    assert all(f.stat().st_size > 1000 for f in figures)


def test_a_cell_shares_a_reference_only_between_models_with_the_same_game(monkeypatch):
    from types import SimpleNamespace

    import torch

    from explainvec.models.adapter import add_adapter
    from explainvec.models.self_explaining import SelfExplainingViT
    from explainvec.study.run import Cell
    from tiny import make_checkpoint

    calls = []

    def reference_values(model, batch, suite):
        calls.append(model)
        return SimpleNamespace(values=torch.full((1,), float(len(calls))))

    monkeypatch.setattr("explainvec.study.run.reference_values", reference_values)
    cell = Cell.__new__(Cell)
    cell._references, cell.batch, cell.suite = {}, None, None
    vit = make_checkpoint().model
    model = SelfExplainingViT(vit, ["a", "b", "c"], "logit")
    first = cell.reference(model)
    add_adapter(vit, "stream")
    with torch.no_grad():
        vit.explain_adapter.terms.weight.add_(1.0)
    assert cell.reference(model) is first  # the adapter never reaches the class token: same game
    assert cell.reference(SelfExplainingViT(vit, ["a", "b", "c"], "probability")) is not first
    with torch.no_grad():
        vit.blocks[0].mlp.fc1.bias.add_(1.0)
    assert cell.reference(model) is not first and len(calls) == 3
