"""The tuning protocol: equal budgets, seeded draws, validation-only selection, paired no-mix."""
import pandas as pd
import pytest

from samlp_lite.config import load_hyperparameters, resolve_config
from samlp_lite.data import make_csbm
from samlp_lite.runs.tuning import (
    BUDGET_TOLERANCE,
    budget_of,
    budget_table,
    candidates,
    grid,
    load_protocol,
    model_names_tuned,
    search_space,
    tune,
    tuned_values,
    write_tuned_section,
)

SMALL = """protocol:
  splits: "0-1"
  seed: 0
  budget: {teacher: 2, student: 2}
spaces:
  teacher: {hidden: [8, 16], lr: [0.01]}
  glnn: {hidden: [8, 16], tau: [1.0, 2.0]}
  sa-mlp: {hidden: [8, 16], beta: [1.0, 4.0]}
"""


def test_every_model_gets_the_same_budget_within_ten_percent():
    students = [m for m in model_names_tuned() if m not in ("gcn", "sage", "gat", "appnp")]
    teachers = ["gcn", "sage", "gat", "appnp"]
    for group in (students, teachers):
        budgets = [budget_of(m) for m in group]
        assert max(budgets) <= (1 + BUDGET_TOLERANCE) * min(budgets), dict(zip(group, budgets))
    assert {row["model"] for row in budget_table()} == set(model_names_tuned())


def test_draws_are_seeded_distinct_and_inside_the_space():
    for model in ("mlp", "glnn", "sa-mlp", "gat"):
        drawn = candidates(model)
        assert drawn == candidates(model) and len(drawn) == budget_of(model)
        assert len({tuple(sorted(c.items())) for c in drawn}) == len(drawn)
        assert all(c in grid(search_space(model)) for c in drawn)
    assert search_space("sa-mlp-nomix") == search_space("sa-mlp") and search_space("gat") == search_space("appnp")


def test_a_bad_protocol_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.replace("tau:", "tua:"))
    with pytest.raises(ValueError, match="spaces.glnn.tua is not a config key"):
        load_protocol(bad)


@pytest.fixture
def small_protocol(tmp_path):
    path = tmp_path / "tuning.yaml"
    path.write_text(SMALL)
    return path


@pytest.mark.parametrize("model", ["gcn", "glnn"])
def test_tune_keeps_the_best_validation_candidate(model, small_protocol, tmp_path, tmp_cache, monkeypatch):
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    graph = make_csbm(num_nodes=150, num_classes=3, avg_degree=6, num_features=8, homophily=0.9, num_splits=2)
    record = tune(graph, model, teacher="gcn", json_path=tmp_path / "t.json", progress=False,
                  protocol_path=small_protocol)
    assert len(record["candidates"]) == 2 == record["budget"] and record["selection"] == "val_acc"
    assert record["best"]["val_acc"] == max(c["val_acc"] for c in record["candidates"])
    assert all("test_acc" not in c for c in record["candidates"])  # selection never sees test metrics
    assert record["teacher"] == (None if model == "gcn" else "gcn")


def test_sa_mlp_and_its_no_mix_ablation_are_paired(small_protocol, tmp_path, tmp_cache, monkeypatch):
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    graph = make_csbm(num_nodes=150, num_classes=3, avg_degree=6, num_features=8, homophily=0.2, num_splits=2)
    record = tune(graph, "sa-mlp", teacher="gcn", json_path=tmp_path / "root" / "csbm" / "gcn" / "sa-mlp.json",
                  progress=False, protocol_path=small_protocol)
    paired = record["paired"]["sa-mlp-nomix"]["overrides"]
    assert paired == {**record["best"]["overrides"], "beta": 0.0}
    values = tuned_values(tmp_path / "root")
    assert values["csbm"]["sa-mlp"]["gcn"] == record["best"]["overrides"] and values["csbm"]["sa-mlp-nomix"]["gcn"] == paired
    with pytest.raises(ValueError, match="tuned with sa-mlp"):
        tune(graph, "sa-mlp-nomix", progress=False)


def test_tuned_values_are_per_teacher_in_the_yaml(tmp_path):
    yaml_file = tmp_path / "hp.yaml"
    yaml_file.write_text("# top comment\ndefaults:\n  hidden: 64\n\n# Values chosen by hand\ntuned: {}\n")
    values = {"cora": {"mlp": {"hidden": 256}, "glnn": {"sage": {"tau": 4.0}, "gcn": {"tau": 2.0}}}}
    write_tuned_section(values, yaml_file)
    text = yaml_file.read_text()
    assert text.startswith("# top comment\ndefaults:") and "by hand" not in text
    hp = load_hyperparameters(yaml_file)
    assert resolve_config("cora", "mlp", hyperparameters=hp).hidden == 256
    assert resolve_config("cora", "glnn", teacher="gcn", hyperparameters=hp).tau == 2.0
    assert resolve_config("cora", "glnn", teacher="sage", hyperparameters=hp).tau == 4.0
    write_tuned_section(values, yaml_file)
    assert yaml_file.read_text() == text


def test_an_interrupted_search_resumes_from_its_checkpoint(small_protocol, tmp_path, tmp_cache, monkeypatch):
    import samlp_lite.runs.tuning as tuning
    from samlp_lite.records import read_json

    monkeypatch.setenv("SAMLP_SMOKE", "1")
    graph = make_csbm(num_nodes=150, num_classes=3, avg_degree=6, num_features=8, homophily=0.9, num_splits=2)
    target = tmp_path / "t.json"
    whole = tune(graph, "glnn", teacher="gcn", json_path=tmp_path / "whole.json", progress=False,
                 protocol_path=small_protocol)
    real, calls = tuning._mean_scores, []

    def interrupted(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(tuning, "_mean_scores", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tune(graph, "glnn", teacher="gcn", json_path=target, progress=False, protocol_path=small_protocol)
    partial = target.with_name("t.json.partial.json")
    assert not target.exists() and len(read_json(partial)["rows"]) == 1
    monkeypatch.setattr(tuning, "_mean_scores", real)
    messages = []
    record = tune(graph, "glnn", teacher="gcn", json_path=target, progress=False, protocol_path=small_protocol,
                  echo=messages.append)
    assert any("1 of 2 configurations done" in m for m in messages) and record["provenance"]["resumed_configs"] == 1
    assert record["candidates"] == whole["candidates"] and not partial.exists()

    # A checkpoint of another search (other splits) is set aside, not mixed in.
    tuning.TuningCheckpoint(target, {"other": "search"}).save([{"overrides": {}, "val_acc": 1.0}])
    messages.clear()
    again = tune(graph, "glnn", teacher="gcn", json_path=target, progress=False, protocol_path=small_protocol,
                 echo=messages.append)
    assert any("another search" in m for m in messages) and again["provenance"]["resumed_configs"] == 0


def test_tune_all_tunes_what_the_paper_grid_runs():
    from samlp_lite.runs.tuning import runs_in_paper_grid

    assert not runs_in_paper_grid("tolokers", "gat")  # the grid keeps GAT off Tolokers (CPU cost)
    assert runs_in_paper_grid("tolokers", "appnp") and runs_in_paper_grid("squirrel", "gat")
    assert runs_in_paper_grid("my-own-graph", "gat")  # graphs outside the grid: every model


def test_tuning_coverage_counts_the_configurations_each_search_tried():
    from samlp_lite.report.tables import tuning_coverage

    protocol = {"splits": "0-1", "seed": 0, "budget": {"teacher": 8, "student": 12}}
    paired = [{"overrides": {"beta": 1.0}, "val_acc": 0.5, "nomix": {"val_acc": 0.4}}] * 3
    records = [
        {"kind": "tuning", "dataset": "cora", "model": "gcn", "teacher": None, "protocol": protocol,
         "candidates": [{"overrides": {}, "val_acc": 0.8}] * 8},
        {"kind": "tuning", "dataset": "squirrel", "model": "sa-mlp", "teacher": "sage", "protocol": protocol,
         "candidates": paired + [{"overrides": {"beta": 2.0}, "val_acc": 0.6}]},
        {"kind": "tuning", "dataset": "cora", "model": "glnn", "teacher": "sage",  # an earlier search: ignored
         "candidates": [{"overrides": {}, "val_acc": 0.8}] * 30},
    ]
    table = tuning_coverage(records)
    assert table.loc[("gcn", "-"), "cora"] == 8 and pd.isna(table.loc[("gcn", "-"), "squirrel"])
    assert table.loc[("sa-mlp", "sage"), "squirrel"] == 4 and table.loc[("sa-mlp-nomix", "sage"), "squirrel"] == 3
    assert ("glnn", "sage") not in table.index
    assert list(table.columns) == ["cora", "squirrel"]  # the registry's order
    assert tuning_coverage([]).empty
