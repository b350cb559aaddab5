"""The fused GAT layer: same outputs and gradients as PyG's GATConv, and the teacher takes it."""
import pytest
import torch
from autograd_graph import autograd_node_names
from torch_geometric.nn import GATConv
from torch_geometric.nn.models import GAT

from samlp_lite.config import resolve_config
from samlp_lite.data import make_csbm
from samlp_lite.models.attention import AttentionGraph, FusedGAT, FusedGATConv, attention_sum
from samlp_lite.models.sparse_ops import reference_products
from samlp_lite.models.teachers import build_teacher


def _graph(n: int = 30, edges: int = 120, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n - 2, (2, edges), generator=generator)  # the last two nodes are isolated
    return torch.cat([edge_index, torch.tensor([[3, 5], [3, 5]])], dim=1)  # and two self-loops given


def _ran_fused(out: torch.Tensor) -> bool:
    return "_AttentionSumBackward" in autograd_node_names(out)


@pytest.mark.parametrize("concat, channels", [(True, 4), (False, 4), (True, 9)])  # 4: padded to 8 in backward
def test_fused_conv_matches_gatconv_values_and_gradients(concat, channels):
    n, edge_index = 30, _graph()
    torch.manual_seed(0)
    reference = GATConv(7, channels, heads=3, concat=concat)
    fused = FusedGATConv(7, channels, heads=3, concat=concat)
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(n, 7, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    graph = AttentionGraph.from_edge_index(edge_index, n)
    ours, theirs = fused(x, graph), reference(x_ref, edge_index)
    assert _ran_fused(ours) and not _ran_fused(theirs)
    weights = torch.randn_like(ours)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-5)
    for (name, mine), other in zip(fused.named_parameters(), reference.parameters()):
        assert torch.allclose(mine.grad, other.grad, atol=1e-5), name


def test_attention_sum_is_the_weighted_sum_over_in_edges():
    n, edge_index = 30, _graph(seed=3)
    graph = AttentionGraph.from_edge_index(edge_index, n)
    alpha, x = torch.rand(graph.num_edges, 2), torch.randn(n, 2, 5)
    src, dst = graph.edge_index
    expected = torch.zeros(n, 2, 5).index_add_(0, dst, alpha.unsqueeze(-1) * x[src])
    assert torch.allclose(attention_sum(alpha, x, graph), expected, atol=1e-6)
    loops = int((edge_index[0] == edge_index[1]).sum())
    assert graph.num_edges == edge_index.size(1) - loops + n  # given self-loops replaced, one per node
    with pytest.raises(ValueError, match="alpha has shape"):
        attention_sum(alpha[:-1], x, graph)


def test_attention_graph_checks_its_input_and_moves():
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        AttentionGraph.from_edge_index(torch.zeros(3, 4, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="refers to node 9"):
        AttentionGraph.from_edge_index(torch.tensor([[0, 9], [1, 2]]), 5)
    graph = AttentionGraph.from_edge_index(_graph(), 30).to("cpu")
    src, dst = graph.edge_index
    assert torch.equal(graph.ptr[1:] - graph.ptr[:-1], torch.bincount(dst, minlength=30))
    assert bool((src[graph.transpose][1:] >= src[graph.transpose][:-1]).all())


def test_fused_gat_keeps_pygs_state_dict_and_other_inputs():
    torch.manual_seed(1)
    ours, theirs = FusedGAT(6, 8, 2, out_channels=3, heads=4), GAT(6, 8, 2, out_channels=3, heads=4)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    theirs.load_state_dict(ours.state_dict())
    ours.eval(), theirs.eval()
    x, edge_index = torch.randn(30, 6), _graph()
    expected = theirs(x, edge_index)
    assert torch.allclose(ours(x, edge_index), expected, atol=1e-6)  # an edge_index: PyG's path
    assert torch.allclose(ours(x, AttentionGraph.from_edge_index(edge_index, 30)), expected, atol=1e-5)
    with reference_products():
        assert torch.allclose(ours(x, AttentionGraph.from_edge_index(edge_index, 30)), expected, atol=1e-6)


def test_gat_teacher_trains_full_batch_on_the_fused_path():
    graph = make_csbm(num_nodes=80, num_classes=3, num_features=8, seed=2)
    config = resolve_config(graph.name, "gat", {"hidden": 16, "heads": 4})
    teacher = build_teacher("gat", graph.num_features, graph.num_classes, config)
    prepared = teacher.prepare_graph(graph.data.edge_index, graph.num_nodes)
    assert isinstance(prepared, AttentionGraph)
    teacher.train()
    torch.manual_seed(0)
    out = teacher(graph.data.x, prepared)
    assert _ran_fused(out)
    teacher.eval()
    with torch.no_grad():
        fast = teacher.predict_all(graph.data)
        with reference_products():
            slow = teacher.predict_all(graph.data)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_attention_dropout_draws_the_same_mask_as_gatconv():
    n, edge_index = 30, _graph(seed=5)
    torch.manual_seed(0)
    reference = GATConv(7, 4, heads=3, dropout=0.5)
    fused = FusedGATConv(7, 4, heads=3, dropout=0.5)
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(n, 7)
    torch.manual_seed(11)
    ours = fused(x, AttentionGraph.from_edge_index(edge_index, n))
    torch.manual_seed(11)
    theirs = reference(x, edge_index)
    assert torch.allclose(ours, theirs, atol=1e-5)
