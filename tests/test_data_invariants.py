"""Invariants of the four offline benchmarks as load_dataset returns them.

These used to be asserts in notebooks/01_data.ipynb. They read the real datasets from the
data root (``SAMLP_DATA``; with ``SAMLP_OFFLINE=1`` nothing is downloaded) and are skipped
for a dataset whose raw files are not there.
"""
from __future__ import annotations

import math

import pytest
import torch

from samlp_lite.data import dataset_available, graph_statistics, load_dataset
from samlp_lite.report.analysis import duplicate_feature_leakage, local_homophily

OFFLINE_DATASETS = ["cora", "citeseer", "chameleon", "squirrel"]


@pytest.fixture(scope="module", params=OFFLINE_DATASETS)
def graph(request):
    name = request.param
    if not dataset_available(name):
        pytest.skip(f"{name}: raw files not in the data root (set SAMLP_DATA)")
    return load_dataset(name, progress=False)


@pytest.fixture(scope="module")
def statistics(graph):
    return graph_statistics(graph)


def test_features_and_labels_have_one_row_per_node(graph):
    x, y = graph.data.x, graph.data.y
    assert x.shape == (graph.num_nodes, graph.num_features)
    assert y.shape == (graph.num_nodes,)
    assert x.dtype == torch.float32 and y.dtype == torch.long
    assert int(y.min()) >= 0 and int(y.max()) < graph.num_classes
    assert torch.isfinite(x).all()


def test_graph_is_undirected_without_self_loops_or_repeated_edges(graph):
    edge_index, n = graph.data.edge_index, graph.num_nodes
    assert edge_index.dtype == torch.long and edge_index.shape[0] == 2
    assert int(edge_index.min()) >= 0 and int(edge_index.max()) < n
    assert not bool((edge_index[0] == edge_index[1]).any()), "self-loops are removed"
    forward = edge_index[0] * n + edge_index[1]
    assert forward.unique().numel() == forward.numel(), "edges are coalesced"
    reverse = torch.sort(edge_index[1] * n + edge_index[0]).values
    assert torch.equal(reverse, torch.sort(forward).values), "every edge has its reverse"


def test_splits_are_disjoint_non_empty_and_inside_the_graph(graph):
    assert graph.num_splits >= 1
    for s in graph.splits:
        parts = (s.train, s.val, s.test)
        assert min(s.sizes()) > 0 and sum(s.sizes()) <= graph.num_nodes
        joined = torch.cat(parts)
        assert joined.unique().numel() == joined.numel(), "train, val and test are disjoint"
        assert int(joined.min()) >= 0 and int(joined.max()) < graph.num_nodes


def test_homophily_measures_are_fractions(statistics):
    for key in ("edge_homophily", "node_homophily"):
        assert 0.0 <= statistics[key] <= 1.0, key
    assert statistics["avg_degree"] == pytest.approx(statistics["num_edges"] / statistics["num_nodes"])


def test_mean_local_homophily_is_the_node_homophily(graph, statistics):
    local = local_homophily(graph.data.edge_index, graph.data.y)
    assert local.shape == (graph.num_nodes,)
    finite = local[~local.isnan()]
    assert bool(((finite >= 0) & (finite <= 1)).all())
    assert float(finite.mean()) == pytest.approx(statistics["node_homophily"], abs=1e-5)


def test_leakage_counts_agree_with_the_statistics(graph, statistics):
    leakage = duplicate_feature_leakage(graph, 0)
    assert leakage["duplicate_feature_rows"] == statistics["duplicate_feature_rows"]
    assert 0 <= leakage["test_with_train_copy"] <= leakage["test_nodes"] == graph.split(0).test.numel()
    agreement = leakage["copy_label_agreement"]
    assert (leakage["test_with_train_copy"] == 0 and math.isnan(agreement)) or 0.0 <= agreement <= 1.0
