import pytest

from samlp_lite.data import make_csbm
from samlp_lite.runs.tuning import grid, search_space, tune


def test_grid_is_the_cartesian_product(tmp_path):
    (tmp_path / "empty.yaml").write_text("teacher: {hidden: [1]}\n")
    assert grid({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert set(search_space("teacher")) and set(search_space("student"))
    assert search_space("gat") == search_space("teacher") and search_space("glnn") == search_space("student")
    assert "adj_norm" in search_space("sa-mlp-nomix")
    with pytest.raises(ValueError, match="no search space"):
        search_space("critic", path=tmp_path / "empty.yaml")


@pytest.mark.parametrize("model", ["gcn", "glnn"])
def test_tune_picks_the_best_validation_candidate(model, tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    graph = make_csbm(num_nodes=150, num_classes=3, avg_degree=6, num_features=8, homophily=0.9, num_splits=2)
    record = tune(graph, model, teacher="gcn", splits="0-1", space={"hidden": [8, 16], "lr": [0.01]},
                  json_path=tmp_path / "results" / "tune.json", min_gain=0.0, progress=False)
    assert len(record["candidates"]) == 3  # the two of the space plus the configured hidden=64
    assert record["best"]["val_acc"] == max(c["val_acc"] for c in record["candidates"])
    assert record["teacher"] == (None if model == "gcn" else "gcn")


def test_write_tuned_section_keeps_the_rest_of_the_file(tmp_path):
    from samlp_lite.config import load_hyperparameters, resolve_config
    from samlp_lite.records import write_json_atomic
    from samlp_lite.runs.tuning import tuned_values, write_tuned_section

    yaml_file = tmp_path / "hp.yaml"
    yaml_file.write_text("# top comment\ndefaults:\n  hidden: 64\n\n# Values chosen by hand\ntuned: {}\n")
    write_json_atomic(tmp_path / "tuning" / "sage" / "cora" / "glnn.json",
                      {"kind": "tuning", "dataset": "cora", "model": "glnn", "best": {"overrides": {"hidden": 256}}})
    values = tuned_values(tmp_path / "tuning", "sage")
    assert values == {"cora": {"glnn": {"hidden": 256}}}
    write_tuned_section(values, yaml_file)
    text = yaml_file.read_text()
    assert text.startswith("# top comment\ndefaults:") and "by hand" not in text
    hp = load_hyperparameters(yaml_file)
    assert resolve_config("cora", "glnn", hyperparameters=hp).hidden == 256
    write_tuned_section(values, yaml_file)
    assert yaml_file.read_text() == text


def test_the_configured_values_stay_unless_beaten_by_min_gain(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    graph = make_csbm(num_nodes=150, num_classes=3, avg_degree=6, num_features=8, homophily=0.9, num_splits=2)
    space = {"hidden": [8, 16]}
    strict = tune(graph, "gcn", splits="0-1", space=space, min_gain=1.0, progress=False)
    assert strict["candidates"][0]["overrides"] == {"hidden": 64}  # the configured value joins the grid
    assert strict["best"] == strict["baseline"] and len(strict["candidates"]) == 3
    loose = tune(graph, "gcn", splits="0-1", space=space, min_gain=-1.0, progress=False)
    assert loose["best"] == loose["top"] and loose["top"]["val_acc"] == max(c["val_acc"] for c in loose["candidates"])


def test_tuned_values_merge_students_and_teachers(tmp_path):
    from samlp_lite.records import write_json_atomic
    from samlp_lite.runs.tuning import tuned_values

    for folder, model, value in [("sage", "glnn", 256), ("teachers", "gcn", 128)]:
        write_json_atomic(tmp_path / folder / "cora" / f"{model}.json",
                          {"kind": "tuning", "dataset": "cora", "model": model, "best": {"overrides": {"hidden": value}}})
    assert tuned_values(tmp_path, "sage") == {"cora": {"glnn": {"hidden": 256}, "gcn": {"hidden": 128}}}
    assert tuned_values(tmp_path, "sage", with_teachers=False) == {"cora": {"glnn": {"hidden": 256}}}


def test_sa_mlp_mixing_is_tuned_on_top_of_the_no_mix_winner(tmp_path, monkeypatch):
    from samlp_lite.records import write_json_atomic
    from samlp_lite.runs.tuning import tune_student

    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    graph = make_csbm(num_nodes=150, num_classes=3, avg_degree=6, num_features=8, homophily=0.3, num_splits=1)
    with pytest.raises(FileNotFoundError, match="sa-mlp-nomix"):
        tune_student(graph, "sa-mlp", "gcn", splits="0", root=tmp_path, progress=False)
    write_json_atomic(tmp_path / "gcn" / graph.name / "sa-mlp-nomix.json",
                      {"kind": "tuning", "best": {"overrides": {"hidden": 16}}})
    record = tune_student(graph, "sa-mlp", "gcn", splits="0", root=tmp_path, progress=False)
    assert all(c["overrides"]["hidden"] == 16 for c in record["candidates"][1:])
    assert (tmp_path / "gcn" / graph.name / "sa-mlp.json").is_file() and "beta" in record["best"]["overrides"]


def test_distillation_stage_builds_on_the_model_stage_and_apply_merges_it(tmp_path, monkeypatch):
    from samlp_lite.records import write_json_atomic
    from samlp_lite.runs.tuning import search_space, tune_student, tuned_values

    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    graph = make_csbm(num_nodes=150, num_classes=3, avg_degree=6, num_features=8, homophily=0.3, num_splits=1)
    with pytest.raises(FileNotFoundError, match="glnn.json"):
        tune_student(graph, "glnn", "gcn", splits="0", root=tmp_path, stage="distillation", progress=False)
    with pytest.raises(ValueError, match="not distilled"):
        tune_student(graph, "linkx", "gcn", splits="0", root=tmp_path, stage="distillation", progress=False)
    write_json_atomic(tmp_path / "gcn" / graph.name / "glnn.json",
                      {"kind": "tuning", "dataset": graph.name, "model": "glnn",
                       "best": {"overrides": {"hidden": 16, "tau": 9.0}}})
    record = tune_student(graph, "glnn", "gcn", splits="0", root=tmp_path, stage="distillation", progress=False)
    space = search_space("distillation")
    tried = [c["overrides"] for c in record["candidates"]]
    assert {(o["tau"], o["lam"]) for o in tried} >= {(t, l) for t in space["tau"] for l in space["lam"]}
    assert all(o["hidden"] == 16 for o in tried[-len(space["tau"]) * len(space["lam"]):])
    assert record["stage"] == "distillation"
    assert (tmp_path / "gcn" / graph.name / "glnn.distillation.json").is_file()
    merged = tuned_values(tmp_path, "gcn", with_teachers=False)[graph.name]["glnn"]
    assert merged["tau"] in space["tau"] and merged["lam"] in space["lam"]
    assert merged == {**{"hidden": 16, "tau": 9.0}, **record["best"]["overrides"]}
