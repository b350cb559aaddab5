"""Adjacency rows: CSR construction, normalisation, gathering, and new-node rows."""
import pytest
import torch
from dense_reference import dense_adjacency

from samlp_lite.data.adjacency import AdjacencyBatch, AdjacencyRows


def random_graph(num_nodes: int = 12, num_edges: int = 30, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    return torch.cat([edge_index, edge_index.flip(0)], dim=1)


@pytest.mark.parametrize("adj_norm", ["none", "row", "sym"])
@pytest.mark.parametrize("self_loop", [False, True])
def test_rows_match_dense_adjacency(adj_norm, self_loop):
    edge_index = random_graph()
    rows = AdjacencyRows.from_edge_index(edge_index, 12, adj_norm=adj_norm, self_loop=self_loop)
    expected = dense_adjacency(edge_index, 12, adj_norm, self_loop)
    torch.testing.assert_close(rows.all().to_dense(12), expected)
    nodes = torch.tensor([5, 0, 11, 5, 3])
    torch.testing.assert_close(rows.gather(nodes).to_dense(12), expected[nodes])


def test_duplicates_merged_and_direction():
    edge_index = torch.tensor([[0, 0, 1, 2], [1, 1, 2, 0]])
    rows = AdjacencyRows.from_edge_index(edge_index, 3)
    batch = rows.gather(torch.tensor([1, 2, 0]))
    assert batch.indices.tolist() == [0, 1, 2]
    assert batch.offsets.tolist() == [0, 1, 2]
    assert batch.weights.tolist() == [1.0, 1.0, 1.0]


def test_gather_handles_empty_rows_and_batch():
    edge_index = torch.tensor([[0, 1], [1, 0]])
    rows = AdjacencyRows.from_edge_index(edge_index, 4)
    batch = rows.gather(torch.tensor([2, 0, 3]))
    assert batch.offsets.tolist() == [0, 0, 1]
    assert batch.indices.tolist() == [1]
    assert batch.row_lengths().tolist() == [0, 1, 0]
    empty = rows.gather(torch.tensor([], dtype=torch.long))
    assert empty.batch_size == 0 and empty.nnz == 0


def test_all_matches_gather_of_every_node():
    rows = AdjacencyRows.from_edge_index(random_graph(), 12, adj_norm="sym", self_loop=True)
    full, gathered = rows.all(), rows.gather(torch.arange(12))
    for field in ("indices", "offsets", "weights"):
        assert torch.equal(getattr(full, field), getattr(gathered, field))


def test_sparse_csr_matches_dense():
    rows = AdjacencyRows.from_edge_index(random_graph(), 12, adj_norm="row")
    batch = rows.gather(torch.tensor([4, 1, 1]))
    torch.testing.assert_close(batch.to_sparse_csr(12).to_dense(), batch.to_dense(12))


@pytest.mark.parametrize("adj_norm", ["none", "row", "sym"])
@pytest.mark.parametrize("self_loop", [False, True])
def test_new_node_row_follows_convention(adj_norm, self_loop):
    edge_index = random_graph()
    rows = AdjacencyRows.from_edge_index(edge_index, 12, adj_norm=adj_norm, self_loop=self_loop)
    neighbors = torch.tensor([7, 2, 7, 9])
    batch = rows.row_for_new_node(neighbors)
    assert batch.indices.tolist() == [2, 7, 9]
    deg_new = 3.0 + float(self_loop)
    deg = dense_adjacency(edge_index, 12, "none", self_loop).sum(1)
    expected = {
        "none": torch.ones(3),
        "row": torch.full((3,), 1.0 / deg_new),
        "sym": (deg_new * deg[torch.tensor([2, 7, 9])]).rsqrt(),
    }[adj_norm]
    torch.testing.assert_close(batch.weights, expected)


def test_rows_for_new_nodes_batches_rows():
    rows = AdjacencyRows.from_edge_index(random_graph(), 12)
    batch = rows.rows_for_new_nodes(torch.tensor([2, 0, 2]), torch.tensor([5, 1, 3]), 3)
    assert batch.offsets.tolist() == [0, 1, 1]
    assert batch.indices.tolist() == [1, 3, 5]


def test_invalid_inputs_raise():
    edge_index = random_graph()
    with pytest.raises(ValueError, match="none.*row.*sym"):
        AdjacencyRows.from_edge_index(edge_index, 12, adj_norm="rw")
    with pytest.raises(ValueError, match="num_nodes"):
        AdjacencyRows.from_edge_index(edge_index, 5)
    rows = AdjacencyRows.from_edge_index(edge_index, 12)
    with pytest.raises(ValueError):
        rows.gather(torch.tensor([12]))
    with pytest.raises(ValueError):
        rows.gather(torch.tensor([0.0]))


def test_to_device_roundtrip():
    rows = AdjacencyRows.from_edge_index(random_graph(), 12).to("cpu")
    batch = rows.gather(torch.tensor([1])).to("cpu")
    assert isinstance(batch, AdjacencyBatch)
    assert rows.num_nodes == 12
