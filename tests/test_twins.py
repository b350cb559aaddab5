"""Row twins, ROC AUC and the leak-free graphs."""
import pytest
import torch

from samlp_lite.data import make_graph, random_splits
from samlp_lite.data.twins import feature_hashes, find_twins, row_hashes, twin_lookup_accuracy, twin_metrics
from samlp_lite.train.metrics import evaluate, roc_auc


def _twin_graph():
    """Nodes 0 and 1 share the neighbour set {4, 5}; node 2's set {4} is a strict subset; node 3 is isolated."""
    edge_index = torch.tensor([[0, 0, 1, 1, 2], [4, 5, 4, 5, 4]])
    y = torch.tensor([1, 1, 0, 0, 0, 1])
    return edge_index, y


def test_twins_are_equal_non_empty_rows_only():
    edge_index, y = _twin_graph()
    hashes = row_hashes(edge_index, 6)
    twins = find_twins(hashes, y, train=torch.tensor([0, 3]), nodes=torch.tensor([1, 2, 3]))
    assert twins.is_twin.tolist() == [True, False, False]
    assert twins.lookup.tolist() == [1, -1, -1] and twins.share == pytest.approx(1 / 3)
    assert twin_lookup_accuracy(twins, y) == 1.0
    empty = find_twins(hashes, y, train=torch.tensor([3]), nodes=torch.tensor([3]))
    assert not bool(empty.is_twin.any())  # two empty rows are not twins


def test_twin_metrics_split_the_accuracy():
    edge_index, y = _twin_graph()
    twins = find_twins(row_hashes(edge_index, 6), y, train=torch.tensor([0]), nodes=torch.tensor([1, 2, 3]))
    metrics = twin_metrics(torch.tensor([True, False, True]), twins, "test")
    assert metrics == {"twin_share": pytest.approx(1 / 3), "test_acc_twin": 1.0, "test_acc_no_twin": 0.5}
    held_out = twin_metrics(torch.tensor([False, True, True]), twins, "ind")
    assert set(held_out) == {"ind_twin_share", "ind_acc_twin", "ind_acc_no_twin"} and held_out["ind_acc_twin"] == 0.0


def test_feature_twins_match_identical_rows():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    hashes = feature_hashes(x)
    assert torch.equal(hashes[0], hashes[1]) and not torch.equal(hashes[0], hashes[2])
    assert hashes[3].tolist() == [0, 0]


def test_roc_auc_counts_ties_as_half_and_needs_both_classes():
    y = torch.tensor([0, 0, 1, 1])
    assert roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), y) == pytest.approx(0.75)
    assert roc_auc(torch.tensor([0.5, 0.5, 0.5, 0.5]), y) == pytest.approx(0.5)
    logits = torch.tensor([[0.0, -1.0], [0.0, 1.0], [0.0, 2.0], [0.0, -2.0]])
    assert roc_auc(logits, y) == pytest.approx(0.5)
    assert roc_auc(torch.tensor([0.2, 0.3]), torch.tensor([1, 1])) != roc_auc(torch.tensor([0.2, 0.3]),
                                                                               torch.tensor([1, 1]))  # NaN
    assert set(evaluate(logits, y, "test", "roc_auc")) == {"test_acc", "test_roc_auc"}


def test_a_roc_auc_graph_must_be_binary():
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match="ROC AUC needs binary labels"):
        make_graph("three", torch.ones(6, 2), y, torch.tensor([[0], [1]]), random_splits(y, 1), source="t",
                   metric="roc_auc")


@pytest.mark.parametrize("setting", ["transductive", "inductive"])
def test_every_record_carries_the_twin_split(setting, tmp_cache):
    from samlp_lite.data import make_csbm
    from samlp_lite.runs.experiment import run_student, run_teacher

    graph = make_csbm(num_nodes=150, num_classes=3, num_features=8, seed=6, num_splits=2)
    fast = {"max_epochs": 10, "hidden": 16}
    student = run_student(graph, "glnn", "sage", splits="0-1", setting=setting, overrides=fast, teacher_overrides=fast,
                          progress=False, echo=lambda s: None)
    teacher = run_teacher(graph, "sage", splits="0-1", setting=setting, overrides=fast, progress=False,
                          echo=lambda s: None)
    keys = ("twin_share", "test_acc_twin", "test_acc_no_twin") if setting == "transductive" else (
        "ind_twin_share", "ind_acc_twin", "ind_acc_no_twin")
    for record in (student, teacher):
        assert all(len(record[k]) == 2 for k in keys), sorted(record)


def test_census_and_twin_table_from_records():
    from samlp_lite.report.leakage import census_summary, twin_census, twin_table

    edge_index, y = _twin_graph()
    x = torch.eye(6)
    splits = [type(random_splits(y, 1)[0])(torch.tensor([0, 3]), torch.tensor([5]), torch.tensor([1, 2, 4]))]
    graph = make_graph("toy", x, y, edge_index, splits, source="t")
    census = twin_census(graph)
    assert census.loc[0, "twin_share"] == pytest.approx(1 / 3) and census.loc[0, "lookup_acc"] == 1.0
    assert census.loc[0, "feature_twin_share"] == 0.0 and list(census_summary([graph]).index) == ["toy"]
    record = {"kind": "accuracy", "dataset": "toy", "model": "sa-mlp", "teacher": "sage", "setting": "transductive",
              "splits": [0, 1], "test_acc": [0.5, 0.7], "test_acc_twin": [1.0, 0.9], "test_acc_no_twin": [0.4, None],
              "provenance": {"date": "x"}}
    table = twin_table([record], ["toy"], models=("sa-mlp",))
    row = table.loc[("toy", "SA-MLP")]
    assert row["twin"] == pytest.approx(95.0) and row["no twin"] == pytest.approx(40.0) and row["all"] == pytest.approx(60.0)
    with_lookup = twin_table([record], ["toy", "other"], models=("sa-mlp",), lookup={"toy": 99.0, "other": 98.0})
    assert with_lookup.loc[("toy", "twin lookup"), "twin"] == 99.0 and len(with_lookup) == 2  # no rows for "other"


def test_the_gain_verdict_follows_the_paired_tests():
    from samlp_lite.report.leakage import (LEAK_FREE, gain_summary, gain_verdict, heterophily_gain, unmeasured_graphs,
                                           verdict_coverage, verdicts_by_teacher)

    def rec(model, dataset, **metrics):
        return {"kind": "accuracy", "dataset": dataset, "model": model, "teacher": "sage",
                "setting": "transductive", "splits": [0, 1, 2, 3], "provenance": {"date": "x"}, **metrics}

    up, flat = [0.70, 0.72, 0.71, 0.73], [0.60, 0.61, 0.59, 0.60]
    leaky = [rec("sa-mlp", "chameleon", test_acc=up, test_acc_no_twin=up),
             rec("glnn", "chameleon", test_acc=flat, test_acc_no_twin=flat)]
    free = [rec("sa-mlp", "chameleon-filtered", test_acc=up), rec("glnn", "chameleon-filtered", test_acc=flat)]
    assert gain_verdict(heterophily_gain(leaky)) == "not measured yet"
    assert gain_verdict(heterophily_gain(leaky + free)) == "real"
    assert unmeasured_graphs(heterophily_gain(leaky + free)) == [
        "squirrel", "squirrel-filtered", "minesweeper", "tolokers"]
    assert verdict_coverage(heterophily_gain(leaky + free)).startswith("measured on 2 of 6 graphs so far")
    assert verdict_coverage(heterophily_gain([])).endswith(", ".join(["chameleon", "squirrel", *LEAK_FREE]))
    copied = [rec("sa-mlp", "chameleon", test_acc=up, test_acc_no_twin=flat),
              rec("glnn", "chameleon", test_acc=flat, test_acc_no_twin=up),
              rec("sa-mlp", "chameleon-filtered", test_acc=flat), rec("glnn", "chameleon-filtered", test_acc=up)]
    gain = heterophily_gain(copied)
    assert gain.loc[("chameleon", "all test nodes"), "verdict"] == "better"
    assert gain_verdict(gain) == "an artefact of the leak"
    assert gain_summary(gain).startswith("chameleon, all test nodes: +11.50 points (better, p = 0.000); chameleon, non-twin")
    assert gain_summary(heterophily_gain([])) == "nothing measured yet"
    real = heterophily_gain(leaky + free)
    assert verdicts_by_teacher({"sage": real, "gcn": real}) == "real"
    assert verdicts_by_teacher({"sage": real, "gcn": gain}) == (
        "real with the SAGE teacher and an artefact of the leak with the GCN teacher")
