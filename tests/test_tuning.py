import pytest

from samlp_lite.data import make_csbm
from samlp_lite.tuning import grid, search_space, tune


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
                  json_path=tmp_path / "results" / "tune.json", progress=False)
    assert len(record["candidates"]) == 2
    assert record["best"]["val_acc"] == max(c["val_acc"] for c in record["candidates"])
    assert record["teacher"] == (None if model == "gcn" else "gcn")
