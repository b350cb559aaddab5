"""The symmetric sparse product: same values and gradients as PyG's spmm, and only where it is valid."""
import pytest
import torch
from autograd_graph import autograd_node_names
from torch_geometric.utils import spmm as pyg_spmm
from torch_geometric.utils import to_torch_csr_tensor, to_undirected

from samlp_lite.models import sparse_ops
from samlp_lite.models.sparse_ops import is_symmetric, spmm
from samlp_lite.models.teachers import _gcn_normalized


def _adjacency(undirected: bool, weighted: bool, n: int = 40):
    torch.manual_seed(0)
    edge_index = torch.randint(0, n, (2, 150))
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    if undirected:
        edge_index = to_undirected(edge_index, num_nodes=n)
    else:
        edge_index = torch.unique(edge_index, dim=1)
    if weighted:
        edge_index, weight = _gcn_normalized(edge_index, None, n)
    else:
        weight = torch.ones(edge_index.shape[1])
    order = torch.argsort(edge_index[1] * n + edge_index[0])  # rows of the transposed CSR, columns sorted
    edge_index, weight = edge_index[:, order], weight[order]
    return to_torch_csr_tensor(edge_index.flip(0), weight, size=(n, n))


def _ran_fast(out: torch.Tensor) -> bool:
    """Whether the autograd graph of ``out`` holds the symmetric product's node."""
    return "_SymmetricSpMMBackward" in autograd_node_names(out)


@pytest.mark.parametrize("weighted, reduce", [(True, "sum"), (False, "mean"), (False, "sum")])
def test_matches_pyg_values_and_gradients_on_undirected_graphs(weighted, reduce):
    adj = _adjacency(undirected=True, weighted=weighted)
    assert is_symmetric(adj)
    x = torch.randn(40, 5, requires_grad=True)
    y = x.detach().clone().requires_grad_()
    ours, reference = spmm(adj, x, reduce), pyg_spmm(adj, y, reduce)
    weights = torch.randn(40, 5)
    (ours * weights).sum().backward()
    (reference * weights).sum().backward()
    assert torch.allclose(ours, reference, atol=1e-6) and torch.allclose(x.grad, y.grad, atol=1e-6)
    assert _ran_fast(ours) and not _ran_fast(reference)


def test_directed_graphs_take_pyg_path():
    adj = _adjacency(undirected=False, weighted=False)
    assert not is_symmetric(adj)
    x = torch.randn(40, 3, requires_grad=True)
    out = spmm(adj, x)
    out.sum().backward()
    dense = adj.to_dense()
    assert torch.allclose(out, dense @ x.detach(), atol=1e-6)
    assert torch.allclose(x.grad, dense.t() @ torch.ones(40, 3), atol=1e-6)  # the true transpose


def test_teachers_train_to_the_same_gradients_with_the_fast_product():
    from samlp_lite.config import resolve_config
    from samlp_lite.data import make_csbm
    from samlp_lite.models.teachers import build_teacher

    graph = make_csbm(num_nodes=80, num_classes=3, avg_degree=5, num_features=6, homophily=0.5, num_splits=1)
    data = graph.data
    for name in ("gcn", "appnp", "sage"):
        config = resolve_config("csbm", name, {"dropout": 0.0})
        torch.manual_seed(0)
        model = build_teacher(name, data.num_features, 3, config)
        adj = model.prepare_graph(data.edge_index, graph.num_nodes)
        assert is_symmetric(adj), name
        model(data.x, adj).square().sum().backward()
        fast = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        copy = adj.to_dense().to_sparse_csr()  # the same matrix as a new tensor, marked not symmetric:
        sparse_ops._SYMMETRIC[copy] = False  # PyG's own backward
        model(data.x, copy).square().sum().backward()
        slow = [p.grad for p in model.parameters()]
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(fast, slow)), name


def _weighted_rows(n: int = 30, empty_row: int = 7):
    from samlp_lite.data.adjacency import AdjacencyRows

    torch.manual_seed(1)
    edge_index = to_undirected(torch.randint(0, n, (2, 90)), num_nodes=n)
    edge_index = edge_index[:, (edge_index[0] != empty_row) & (edge_index[1] != empty_row)]
    return AdjacencyRows.from_edge_index(edge_index, n, adj_norm="row")


def test_rows_times_matches_embedding_bag_values_and_gradients():
    from samlp_lite.models.sparse_ops import rows_times

    rows = _weighted_rows()
    batch = rows.gather(torch.tensor([3, 7, 0, 3, 29]))  # a repeated row and an empty one
    weight = torch.randn(30, 4, requires_grad=True)
    reference_weight = weight.detach().clone().requires_grad_()
    ours = rows_times(batch, weight)
    reference = torch.nn.functional.embedding_bag(batch.indices, reference_weight, batch.offsets, mode="sum",
                                                  per_sample_weights=batch.weights)
    upstream = torch.randn(5, 4)
    (ours * upstream).sum().backward()
    (reference * upstream).sum().backward()
    assert torch.allclose(ours, reference, atol=1e-6)
    assert torch.allclose(weight.grad, reference_weight.grad, atol=1e-6)
    assert torch.equal(ours[1], torch.zeros(4))


def test_rows_times_builds_the_transpose_once_per_batch():
    from samlp_lite.models.sparse_ops import rows_times

    batch = _weighted_rows().gather(torch.arange(30))
    weight = torch.randn(30, 4, requires_grad=True)
    rows_times(batch, weight).sum().backward()
    first = batch.transposed_csr(30)
    rows_times(batch, weight).sum().backward()
    assert batch.transposed_csr(30) is first
    assert torch.allclose(first.to_dense(), batch.to_dense(30).t())
    with pytest.raises(ValueError, match="weights is None"):
        rows_times(type(batch)(batch.indices, batch.offsets, None), weight)


def test_sa_mlp_trains_through_rows_times_and_keeps_embedding_bag_for_inference_and_sparse_gradients():
    from samlp_lite.models.students import SAMLP

    rows = _weighted_rows()
    batch = rows.gather(torch.arange(30))
    model = SAMLP(num_nodes=30, num_features=3, num_classes=2, hidden=4)
    x = torch.randn(30, 3)
    assert "_RowsTimesBackward" in autograd_node_names(model(x, batch))
    model.use_sparse_gradients(True)
    assert "_RowsTimesBackward" not in autograd_node_names(model(x, batch))
    model.use_sparse_gradients(False)
    with torch.no_grad():
        fast_free = model(x, batch)
    assert torch.allclose(fast_free, model(x, batch), atol=1e-6)

