"""Graph containers, normalisation, random splits, CSBM, statistics and the inductive split."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.utils import is_undirected, remove_self_loops, to_undirected

from samlp_lite.data import (
    STATISTICS_KEYS,
    GraphData,
    Split,
    graph_statistics,
    inductive_split,
    make_csbm,
    normalize_graph,
    random_splits,
)
from samlp_lite.data.stats import duplicate_rows


def edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in edge_index.t()}


# --- Split and GraphData ---------------------------------------------------------------

def test_split_sorts_ids_and_rejects_overlap():
    split = Split(torch.tensor([5, 1, 3]), torch.tensor([0]), torch.tensor([4, 2]))
    assert split.train.tolist() == [1, 3, 5] and split.test.tolist() == [2, 4]
    assert split.train.dtype == torch.long
    with pytest.raises(ValueError, match="overlap"):
        Split(torch.tensor([0, 1]), torch.tensor([1]), torch.tensor([2]))
    with pytest.raises(ValueError, match="more than once"):
        Split(torch.tensor([2, 1, 2]), torch.tensor([0]), torch.tensor([3]))


def test_split_from_masks_round_trip():
    split = Split.from_masks(torch.tensor([1, 0, 0, 1], dtype=torch.uint8),
                             torch.tensor([0, 1, 0, 0], dtype=torch.uint8),
                             torch.tensor([0, 0, 1, 0], dtype=torch.uint8))
    assert split.train.tolist() == [0, 3] and split.val.tolist() == [1] and split.test.tolist() == [2]
    train, val, test = split.masks(4)
    assert train.tolist() == [True, False, False, True] and test.dtype == torch.bool


def test_graph_data_properties_and_split_index_error(tiny_graph):
    assert (tiny_graph.num_nodes, tiny_graph.num_features, tiny_graph.num_splits) == (5, 2, 2)
    assert tiny_graph.split(1) is tiny_graph.splits[1]
    with pytest.raises(IndexError, match=r"split 2 does not exist.*'tiny' has 2 split\(s\), indices 0..1"):
        tiny_graph.split(2)
    with pytest.raises(IndexError):
        tiny_graph.split(-1)


# --- normalisation -----------------------------------------------------------------------

def test_normalize_graph_symmetrises_removes_loops_and_duplicates():
    edge_index = torch.tensor([[0, 1, 2, 0, 3, 1, 2],
                               [1, 2, 2, 1, 0, 0, 3]])
    x = torch.arange(8).view(4, 2)
    data, note = normalize_graph(x, torch.tensor([[0], [1], [0], [1]]), edge_index)
    expected = [[0, 0, 1, 1, 2, 2, 3, 3],
                [1, 3, 0, 2, 1, 3, 0, 2]]
    assert data.edge_index.tolist() == expected
    assert data.edge_index.dtype == torch.long
    assert is_undirected(data.edge_index)
    assert not bool((data.edge_index[0] == data.edge_index[1]).any())
    assert data.x.dtype == torch.float32 and data.y.tolist() == [0, 1, 0, 1]
    assert "directed edges symmetrised (7 -> 8 edge entries)" in note
    assert "1 self-loop removed" in note and "1 duplicate edge merged" in note


def test_normalize_graph_reports_clean_input():
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    data, note = normalize_graph(torch.zeros(3, 1), torch.zeros(3), edge_index)
    assert torch.equal(data.edge_index, edge_index)
    assert note == "already undirected, no self-loops or duplicates"


def test_normalize_graph_matches_pyg_on_random_graph():
    generator = torch.Generator().manual_seed(3)
    edge_index = torch.randint(0, 50, (2, 400), generator=generator)
    data, _ = normalize_graph(torch.randn(50, 3), torch.zeros(50), edge_index)
    reference = to_undirected(remove_self_loops(edge_index)[0], num_nodes=50)
    assert torch.equal(data.edge_index, reference)


def test_normalize_graph_rejects_out_of_range_ids():
    with pytest.raises(ValueError, match="outside 0..2"):
        normalize_graph(torch.zeros(3, 1), torch.zeros(3), torch.tensor([[0], [3]]))


# --- random splits -----------------------------------------------------------------------

def test_random_splits_stratified_disjoint_and_complete():
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)[torch.randperm(100, generator=torch.Generator().manual_seed(0))]
    splits = random_splits(y, num_splits=4, seed=1)
    assert len(splits) == 4
    for split in splits:
        for part, fraction in ((split.train, 0.48), (split.val, 0.32)):
            counts = torch.bincount(y[part], minlength=3)
            assert counts.tolist() == [round(fraction * n) for n in (50, 30, 20)]
        every = torch.cat([split.train, split.val, split.test])
        assert torch.equal(torch.sort(every).values, torch.arange(100))
        for part in (split.train, split.val, split.test):
            assert torch.equal(part, torch.sort(part).values)
    assert not torch.equal(splits[0].train, splits[1].train)


def test_random_splits_seeded():
    y = torch.arange(60) % 3
    first, again, other = random_splits(y, 2, seed=5), random_splits(y, 2, seed=5), random_splits(y, 2, seed=6)
    assert all(torch.equal(a.train, b.train) and torch.equal(a.test, b.test) for a, b in zip(first, again))
    assert not torch.equal(first[0].train, other[0].train)


def test_random_splits_skip_unlabelled_and_reject_bad_fractions():
    y = torch.tensor([0, 0, 1, 1, -1, 0, 1, -1])
    split = random_splits(y, 1, train=0.5, val=0.25)[0]
    every = torch.cat([split.train, split.val, split.test])
    assert 4 not in every.tolist() and 7 not in every.tolist() and every.numel() == 6
    with pytest.raises(ValueError, match="train \\+ val <= 1"):
        random_splits(y, 1, train=0.8, val=0.4)


# --- CSBM ----------------------------------------------------------------------------------

def test_csbm_shapes_and_dtypes():
    graph = make_csbm(num_nodes=500, num_classes=4, avg_degree=8, num_features=12, num_splits=3, seed=2)
    data = graph.data
    assert isinstance(graph, GraphData) and graph.name == "csbm"
    assert data.x.shape == (500, 12) and data.x.dtype == torch.float32
    assert data.y.shape == (500,) and data.y.dtype == torch.long and set(data.y.tolist()) == {0, 1, 2, 3}
    assert data.edge_index.dtype == torch.long and is_undirected(data.edge_index)
    assert graph.num_classes == 4 and graph.num_splits == 3
    assert abs(data.edge_index.size(1) / 500 - 8) < 0.5
    assert "synthetic CSBM" in graph.description


@pytest.mark.parametrize("target", [0.1, 0.5, 0.9])
def test_csbm_edge_homophily_close_to_target(target):
    graph = make_csbm(num_nodes=2000, homophily=target, seed=4)
    assert abs(graph_statistics(graph)["edge_homophily"] - target) < 0.05


def test_csbm_deterministic_for_a_seed():
    a, b, c = make_csbm(300, seed=9), make_csbm(300, seed=9), make_csbm(300, seed=10)
    assert torch.equal(a.data.x, b.data.x) and torch.equal(a.data.edge_index, b.data.edge_index)
    assert torch.equal(a.splits[0].train, b.splits[0].train)
    assert not torch.equal(a.data.edge_index, c.data.edge_index)


def test_csbm_feature_signal_scales_class_means():
    graph = make_csbm(num_nodes=3000, num_classes=3, num_features=32, feature_signal=3.0, seed=0)
    means = torch.stack([graph.data.x[graph.data.y == c].mean(0) for c in range(3)])
    assert torch.allclose(means.norm(dim=1), torch.full((3,), 3.0), atol=0.35)
    noiseless = make_csbm(num_nodes=300, num_classes=3, feature_signal=0.0, seed=0)
    assert abs(float(noiseless.data.x.mean())) < 0.05


# --- statistics ----------------------------------------------------------------------------

def test_statistics_match_hand_computed_values(tiny_graph):
    stats = graph_statistics(tiny_graph)
    assert tuple(stats) == STATISTICS_KEYS
    assert stats["name"] == "tiny"
    assert (stats["num_nodes"], stats["num_edges"], stats["num_features"]) == (5, 6, 2)
    assert (stats["num_classes"], stats["num_splits"]) == (2, 2)
    assert stats["edge_homophily"] == pytest.approx(4 / 6)
    assert stats["node_homophily"] == pytest.approx((1 + 0.5 + 0.5 + 1) / 4)
    assert stats["class_homophily"] == pytest.approx((2 / 3 - 3 / 5) + (2 / 3 - 2 / 5))
    assert stats["isolated_nodes"] == 1
    assert stats["duplicate_feature_rows"] == 2
    assert stats["avg_degree"] == pytest.approx(6 / 5)


def test_duplicate_rows_exact():
    x = torch.randn(1000, 16, generator=torch.Generator().manual_seed(0))
    assert duplicate_rows(x) == 0
    x[10], x[500], x[999] = x[3], x[3], x[7]
    assert duplicate_rows(x) == 3
    assert duplicate_rows(torch.tensor([[0.0, 1.0], [-0.0, 1.0], [0.0, 1.5]])) == 1


# --- inductive split -------------------------------------------------------------------------

def test_inductive_split_hides_held_out_nodes(small_csbm):
    graph, split = small_csbm, small_csbm.split(1)
    ind = inductive_split(graph, split_index=1, rate=0.2, seed=3)
    n, held = graph.num_nodes, ind.held_out_nodes
    assert held.numel() == round(0.2 * split.test.numel())
    assert bool(torch.isin(held, split.test).all())
    assert torch.equal(held, torch.sort(held).values)
    assert ind.observed_nodes.numel() + held.numel() == n
    assert not bool(torch.isin(ind.observed_nodes, held).any())

    observed = ind.observed_data
    assert set(observed.keys()) == {"x", "y", "edge_index", "num_nodes"}
    assert observed.num_nodes == n - held.numel()
    assert torch.equal(observed.x, graph.data.x[ind.observed_nodes])
    assert torch.equal(observed.y, graph.data.y[ind.observed_nodes])
    assert int(observed.edge_index.max()) < observed.num_nodes

    original = edge_set(graph.data.edge_index)
    held_set = set(held.tolist())
    back = edge_set(ind.observed_nodes[observed.edge_index])
    assert back == {(a, b) for a, b in original if a not in held_set and b not in held_set}

    assert torch.equal(ind.old_to_new[held], torch.full((held.numel(),), -1))
    assert torch.equal(ind.old_to_new[ind.observed_nodes], torch.arange(observed.num_nodes))

    row, col = ind.held_out_edge_index
    assert int(row.min()) >= 0 and int(row.max()) < held.numel()
    assert int(col.min()) >= 0 and int(col.max()) < observed.num_nodes
    crossing = edge_set(torch.stack([held[row], ind.observed_nodes[col]]))
    assert crossing == {(a, b) for a, b in original if a in held_set and b not in held_set}

    assert torch.equal(ind.observed_nodes[ind.split.train], split.train)
    assert torch.equal(ind.observed_nodes[ind.split.val], split.val)
    kept_test = split.test[~torch.isin(split.test, held)]
    assert torch.equal(ind.observed_nodes[ind.split.test], kept_test)


def test_inductive_split_seeded_per_split_and_rate_zero(small_csbm):
    a = inductive_split(small_csbm, 0, seed=1)
    b = inductive_split(small_csbm, 0, seed=1)
    c = inductive_split(small_csbm, 0, seed=2)
    assert torch.equal(a.held_out_nodes, b.held_out_nodes)
    assert not torch.equal(a.held_out_nodes, c.held_out_nodes)
    none = inductive_split(small_csbm, 0, rate=0.0)
    assert none.held_out_nodes.numel() == 0 and none.held_out_edge_index.shape == (2, 0)
    assert torch.equal(none.observed_data.edge_index, small_csbm.data.edge_index)
    with pytest.raises(IndexError):
        inductive_split(small_csbm, 3)
    with pytest.raises(ValueError, match="rate"):
        inductive_split(small_csbm, 0, rate=1.5)
