"""The gate analysis that moved out of notebooks/07_interpretability.ipynb into samlp_lite.report.analysis."""
import math

import pytest
import torch

from samlp_lite.data import graph_statistics
from samlp_lite.models.students import SAMLPOutput
from samlp_lite.report.analysis import GateReading, gate_summary, gate_vs_local_homophily, read_gate

TINY = {"max_epochs": 3, "patience": 3, "hidden": 8}


def test_gate_vs_local_homophily_by_hand():
    alpha = torch.tensor([0.2, 0.4, 0.6, 0.8, 0.5])
    local = torch.tensor([0.0, 0.25, 0.5, 1.0, float("nan")])
    degree = torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0])
    out = gate_vs_local_homophily(alpha, local, degree)
    assert out["mean alpha"] == pytest.approx(0.5)
    assert out["std alpha"] == pytest.approx(float(alpha.double().std()))
    assert out["mean alpha, h_i < 0.5"] == pytest.approx(0.3)      # nodes 0 and 1
    assert out["mean alpha, h_i >= 0.5"] == pytest.approx(0.7)     # nodes 2 and 3; the isolated node is left out
    assert out["Spearman(alpha, h_i)"] == pytest.approx(1.0)
    assert out["Spearman(alpha, degree)"] == pytest.approx(-1.0)


def test_gate_vs_local_homophily_empty_group_and_bad_shapes():
    out = gate_vs_local_homophily(torch.tensor([0.1, 0.9]), torch.tensor([0.8, 1.0]), torch.tensor([1.0, 2.0]))
    assert math.isnan(out["mean alpha, h_i < 0.5"])
    with pytest.raises(ValueError, match="one value per node"):
        gate_vs_local_homophily(torch.zeros(3), torch.zeros(2), torch.zeros(3))


def _reading(graph, alpha, structure_class, feature_class, teacher_class, test_acc=0.5):
    n, c = graph.num_nodes, graph.num_classes
    one_hot = lambda cls: torch.nn.functional.one_hot(cls, c).float()  # noqa: E731
    parts = SAMLPOutput(logits=torch.zeros(n, c), alpha=alpha, z_structure=one_hot(structure_class),
                        z_features=one_hot(feature_class), h_structure=None, h_features=None)
    trained = type("Trained", (), {"test_acc": test_acc})()
    return GateReading(trained=trained, parts=parts, teacher_logits=one_hot(teacher_class))


def test_gate_summary_scores_each_head(small_csbm):
    graph = small_csbm
    y = graph.data.y
    wrong = (y + 1) % graph.num_classes
    alpha = torch.full((graph.num_nodes,), 0.75)
    # structure head = labels = teacher; feature head always wrong
    summary = gate_summary(graph, _reading(graph, alpha, y, wrong, y), split=0)
    assert summary["teacher test acc"] == 1.0 and summary["structure head test acc"] == 1.0
    assert summary["feature head test acc"] == 0.0
    assert summary["structure head = teacher"] == 1.0 and summary["feature head = teacher"] == 0.0
    assert summary["mean alpha"] == pytest.approx(0.75) and summary["std alpha"] == pytest.approx(0.0)
    assert summary["SA-MLP test acc"] == 0.5
    assert summary["edge_homophily"] == pytest.approx(graph_statistics(graph)["edge_homophily"])


def test_read_gate_trains_and_reads_every_node(small_csbm, tmp_cache):
    reading = read_gate(small_csbm, teacher="gcn", split=0, teacher_overrides=TINY, student_overrides=TINY)
    n = small_csbm.num_nodes
    parts = reading.parts
    assert parts.alpha.shape == (n,) and bool(((parts.alpha >= 0) & (parts.alpha <= 1)).all())
    assert reading.teacher_logits.shape == (n, small_csbm.num_classes)
    mixed = parts.alpha[:, None] * parts.z_structure + (1 - parts.alpha[:, None]) * parts.z_features
    assert torch.allclose(parts.logits, mixed, atol=1e-5)
    assert torch.allclose(parts.logits, reading.trained.logits, atol=1e-5)
    summary = gate_summary(small_csbm, reading)
    assert all(0.0 <= summary[k] <= 1.0 for k in summary if k != "std alpha")


def test_read_gate_needs_a_gate(small_csbm, tmp_cache):
    with pytest.raises(ValueError, match="gate"):
        read_gate(small_csbm, teacher="gcn", teacher_overrides=TINY, student_overrides=TINY, model="sa-mlp-sum")
