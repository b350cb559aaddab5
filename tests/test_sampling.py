import torch

from samlp_lite.data.sampling import InNeighbors, sample_in_edges, sample_subgraph

EDGES = torch.tensor([[1, 2, 3, 4, 0, 0, 2], [0, 0, 0, 0, 1, 2, 1]])


def test_in_neighbors_csr():
    graph = InNeighbors.from_edge_index(EDGES, 5)
    assert graph.rowptr.tolist() == [0, 4, 6, 7, 7, 7]
    assert graph.col[:4].tolist() == [1, 2, 3, 4] and sorted(graph.col[4:6].tolist()) == [0, 2]


def test_fanout_caps_sampled_neighbors_without_replacement():
    graph = InNeighbors.from_edge_index(EDGES, 5)
    for seed in range(20):
        src, pos, entry = sample_in_edges(graph, torch.tensor([0, 1, 3]), 2, torch.Generator().manual_seed(seed))
        assert (pos == 0).sum() == 2 and (pos == 1).sum() == 2 and (pos == 2).sum() == 0
        assert len(set(src[pos == 0].tolist())) == 2 and set(src[pos == 0].tolist()) <= {1, 2, 3, 4}
        assert torch.equal(graph.col[entry], src)
    seen = {tuple(sorted(sample_in_edges(graph, torch.tensor([0]), 2, torch.Generator().manual_seed(s))[0].tolist()))
            for s in range(50)}
    assert len(seen) > 3


def test_subgraph_edges_are_real_edges_and_seeds_come_first():
    torch.manual_seed(0)
    edge_index = torch.randint(0, 60, (2, 400))
    graph = InNeighbors.from_edge_index(edge_index, 60)
    seeds = torch.tensor([5, 9, 11])
    n_id, local, _ = sample_subgraph(graph, seeds, [3, 2], torch.Generator().manual_seed(1))
    assert torch.equal(n_id[:3], seeds) and n_id.unique().numel() == n_id.numel()
    real = set(map(tuple, edge_index.t().tolist()))
    assert all((int(n_id[s]), int(n_id[t])) in real for s, t in local.t().tolist())
    full, _, _ = sample_subgraph(graph, seeds, [-1])
    expected = set(edge_index[0, torch.isin(edge_index[1], seeds)].tolist()) | set(seeds.tolist())
    assert set(full.tolist()) == expected
