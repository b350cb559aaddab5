"""Servers gather and compute what the package's own code does: stores, gatherers, fused paths, teachers."""
from __future__ import annotations

import pytest
import torch

from samlp_lite.data import make_csbm
from samlp_lite.data.sampling import sample_subgraph
from samlp_lite.serve.store import GraphStore, NeighborhoodGatherer, gather_rows
from samlp_lite.serve.students import build_servers


@pytest.fixture(scope="module")
def graph():
    return make_csbm(num_nodes=600, num_classes=4, avg_degree=6, num_features=12, num_splits=1, seed=3,
                     name="csbm-600")


@pytest.fixture(scope="module")
def store(graph):
    return GraphStore.from_graph(graph)


def _targets(n: int, count: int, seed: int = 0) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:count]


def _in_neighbours(edge_index: torch.Tensor, nodes: set[int]) -> set[int]:
    return {int(s) for s, t in edge_index.t().tolist() if t in nodes}


def test_sa_mlp_gathers_exactly_the_adjacency_rows_of_the_targets(graph, store):
    targets = _targets(600, 40)
    fused, module = build_servers("sa-mlp", store, 4)[0], build_servers("sa-mlp", store, 4, fused=False)[0]
    expected = store.adjacency.gather(targets)
    for server in (fused, module):
        x, rows = server.gather(targets)
        assert torch.equal(x, graph.data.x[targets])
        assert torch.equal(rows.indices, expected.indices) and torch.equal(rows.offsets, expected.offsets)
    for node, start, end in zip(targets.tolist(), expected.offsets.tolist(),
                                expected.offsets.tolist()[1:] + [expected.nnz]):
        assert sorted(expected.indices[start:end].tolist()) == sorted(_in_neighbours(graph.data.edge_index, {node}))
    assert fused.gather(targets)[1].weights is None  # 0/1 rows: embedding_bag skips the multiply
    normalised = GraphStore.from_graph(graph, adj_norm="row", self_loop=True)
    rows = gather_rows(normalised.adjacency, targets)
    reference = normalised.adjacency.gather(targets)
    assert torch.equal(rows.indices, reference.indices) and torch.equal(rows.weights, reference.weights)


@pytest.mark.parametrize("name", ["mlp", "linkx", "sa-mlp"])
def test_fused_student_servers_equal_the_package_modules(store, name):
    fused, module = build_servers(name, store, 4)[0], build_servers(name, store, 4, fused=False)[0]
    assert fused.impl == "fused" and module.impl == "module"
    targets = _targets(600, 50, seed=1)
    with torch.inference_mode():
        x = store.features[targets]
        reference = module.model(x, store.adjacency.gather(targets)) if name != "mlp" else module.model(x)
    torch.testing.assert_close(fused(targets), reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused(None), module(None), rtol=1e-5, atol=1e-6)


def test_full_gather_of_a_two_layer_teacher_is_the_two_hop_in_neighbourhood(graph, store):
    edge_index = graph.data.edge_index
    targets = _targets(600, 7, seed=2)
    server = build_servers("sage", store, 4)[0]
    assert server.gather_name == "full" and server.num_layers == 2
    x, sub_edges, _, nodes_per_hop, edges_per_hop = server.gather(targets)
    sub = server.gatherer(targets, [-1, -1])
    hop0 = set(targets.tolist())
    hop1 = hop0 | _in_neighbours(edge_index, hop0)
    hop2 = hop1 | _in_neighbours(edge_index, hop1)
    assert set(sub.n_id.tolist()) == hop2 and sub.n_id.unique().numel() == sub.n_id.numel()
    assert torch.equal(sub.n_id[:7], targets) and torch.equal(x, graph.data.x[sub.n_id])
    edges = {(int(sub.n_id[s]), int(sub.n_id[t])) for s, t in sub_edges.t().tolist()}
    assert edges == {(s, t) for s, t in edge_index.t().tolist() if t in hop1}
    assert nodes_per_hop == [7, len(hop1) - 7, len(hop2) - len(hop1)] and sum(edges_per_hop) == len(edges)
    n_id, package_edges, _ = sample_subgraph(store.in_neighbors, targets, [-1, -1])
    assert torch.equal(n_id, sub.n_id) and torch.equal(package_edges, sub_edges)


def test_gatherer_matches_the_package_sampler_draw_for_draw(store):
    gatherer = NeighborhoodGatherer(store.in_neighbors)
    targets = _targets(600, 30, seed=4)
    for fanouts in ([3, 2], [-1], [5, -1, 2]):
        ours = gatherer(targets, fanouts, torch.Generator().manual_seed(9))
        n_id, edges, entry = sample_subgraph(store.in_neighbors, targets, fanouts, torch.Generator().manual_seed(9))
        assert torch.equal(ours.n_id, n_id) and torch.equal(ours.edge_index, edges) and torch.equal(ours.entry, entry)
    assert bool((gatherer._local == -1).all())  # the relabel table is left clean


@pytest.fixture(scope="module")
def wide_graph():
    """More features than hidden units, so SAGE layers project before averaging."""
    return make_csbm(num_nodes=300, num_classes=3, avg_degree=6, num_features=80, num_splits=1, seed=5,
                     name="csbm-300")


@pytest.mark.parametrize("name", ["sage", "gcn", "gat", "sage-wide"])
def test_teacher_served_from_its_subgraph_predicts_what_the_full_graph_does(graph, store, wide_graph, name):
    if name == "sage-wide":
        name, graph = "sage", wide_graph
        store = GraphStore.from_graph(graph)
    num_nodes = graph.num_nodes
    full_server, sampled_server = build_servers(name, store, graph.num_classes)
    teacher = full_server.model
    edge_index = graph.data.edge_index
    with torch.inference_mode():
        if name == "gcn":
            full = teacher(graph.data.x, *teacher.minibatch_graph(edge_index, num_nodes))
        else:
            full = teacher(graph.data.x, edge_index)
    targets = _targets(num_nodes, 25, seed=5)
    torch.testing.assert_close(full_server(targets), full[targets], rtol=1e-4, atol=1e-5)
    full_server.chunk_size = 128  # GAT's all-node inference over several chunks
    torch.testing.assert_close(full_server(None), full, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="every neighbour"):
        sampled_server(None)
    # Sampled: the trimmed forward on the sampled subgraph equals the untrimmed training-style one.
    x, sub_edges, weight, nodes_per_hop, edges_per_hop = sampled_server.gather(targets)
    with torch.inference_mode():
        served = sampled_server.forward(x, sub_edges, weight, nodes_per_hop, edges_per_hop)
        graph_args = teacher.minibatch_graph(sub_edges, x.size(0)) if name == "gcn" else (sub_edges,)
        reference = teacher(x, *graph_args)[:25]
    torch.testing.assert_close(served, reference, rtol=1e-4, atol=1e-5)
