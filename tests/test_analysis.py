"""Analysis helpers: local homophily, binned means, duplicate leakage, receptive fields, gate parts."""
import math

import numpy as np
import pytest
import torch

from samlp_lite.data import Split, graph_statistics, make_graph
from samlp_lite.data.adjacency import AdjacencyRows
from samlp_lite.models.students import SAMLP
from samlp_lite.report.analysis import (
    binned_means,
    duplicate_feature_leakage,
    homophily_sweep,
    local_homophily,
    receptive_field_sizes,
    samlp_multiply_adds,
    student_parts,
)


def test_local_homophily_by_hand(tiny_graph):
    # path 0-1-2-3 with labels 0,0,1,1; node 4 isolated
    local = local_homophily(tiny_graph.data.edge_index, tiny_graph.data.y)
    assert local[:4].tolist() == [1.0, 0.5, 0.5, 1.0]
    assert math.isnan(local[4])


def test_local_homophily_mean_is_node_homophily(small_csbm):
    local = local_homophily(small_csbm.data.edge_index, small_csbm.data.y)
    assert float(torch.nanmean(local)) == pytest.approx(graph_statistics(small_csbm)["node_homophily"], abs=1e-6)


def test_binned_means_drops_nan_and_leaves_empty_bins_nan():
    centres, means, counts = binned_means([0.1, 0.15, 0.9, float("nan")], [1.0, 3.0, 5.0, 7.0], bins=4)
    assert centres.tolist() == pytest.approx([0.125, 0.375, 0.625, 0.875])
    assert counts.tolist() == [2, 0, 0, 1]
    assert means[0] == 2.0 and means[3] == 5.0 and np.isnan(means[1])
    _, means, counts = binned_means([1.0], [4.0], bins=2)  # the right edge belongs to the last bin
    assert counts.tolist() == [0, 1] and means[1] == 4.0


def test_duplicate_feature_leakage(tiny_graph):
    # rows 0, 1 and 3 are equal; labels 0, 0, 1
    graph = make_graph("t", tiny_graph.data.x, tiny_graph.data.y, tiny_graph.data.edge_index,
                       [Split(train=torch.tensor([0]), val=torch.tensor([2]), test=torch.tensor([1, 3, 4]))],
                       source="test")
    out = duplicate_feature_leakage(graph, 0)
    assert out["duplicate_feature_rows"] == graph_statistics(graph)["duplicate_feature_rows"] == 2
    assert out["nodes_with_copy"] == 3
    assert out["test_with_train_copy"] == 2
    assert out["copy_label_agreement"] == 0.5


def test_receptive_field_sizes_on_a_path(tiny_graph):
    sizes = receptive_field_sizes(tiny_graph.data.edge_index, tiny_graph.num_nodes, hops=2)
    assert sizes.tolist() == [2, 3, 3, 2, 0]
    assert receptive_field_sizes(tiny_graph.data.edge_index, 5, hops=1).tolist() == [1, 2, 2, 1, 0]


def test_samlp_multiply_adds():
    assert samlp_multiply_adds(torch.tensor([0, 3]), 10, 4, 2).tolist() == [40 + 16 + 8, 12 + 40 + 16 + 8]
    sparse = samlp_multiply_adds(torch.tensor([0, 3]), 10, 4, 2, feature_nnz=torch.tensor([1, 2]))
    assert sparse.tolist() == [4 + 16 + 8, 12 + 8 + 16 + 8]


def test_student_parts_matches_one_forward_pass(small_csbm):
    torch.manual_seed(0)
    model = SAMLP(small_csbm.num_nodes, small_csbm.num_features, small_csbm.num_classes, hidden=8, dropout=0.5)
    rows = AdjacencyRows.from_edge_index(small_csbm.data.edge_index, small_csbm.num_nodes)
    parts = student_parts(model, small_csbm.data.x, rows, chunk_size=70)
    model.eval()
    whole = model(small_csbm.data.x, rows.all(), return_parts=True)
    assert parts.alpha.shape == (small_csbm.num_nodes,)
    assert torch.allclose(parts.logits, whole.logits, atol=1e-6)
    assert torch.allclose(parts.alpha, whole.alpha, atol=1e-6)
    some = student_parts(model, small_csbm.data.x, rows, nodes=torch.tensor([5, 2]))
    assert torch.allclose(some.logits, whole.logits[[5, 2]], atol=1e-6)


def test_homophily_sweep_rows_and_mlp_ignores_structure():
    frame = homophily_sweep([0.1, 0.9], ("mlp", "sage"), num_nodes=120, num_classes=3, num_features=8,
                            overrides={"max_epochs": 3, "patience": 3, "hidden": 8})
    assert len(frame) == 4
    assert set(frame.columns) >= {"homophily", "edge_homophily", "model", "test_acc"}
    mlp = frame[frame.model == "mlp"].test_acc.tolist()
    assert mlp[0] == mlp[1]  # same features and labels at every homophily level
    with pytest.raises(ValueError, match="mlp"):
        homophily_sweep([0.5], ("glnn",), num_nodes=60)
