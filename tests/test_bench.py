"""The serving benchmark computes the right thing and writes valid records (no timing assertions)."""
from __future__ import annotations

import json

import pytest
import torch
from matplotlib.figure import Figure

from samlp_lite.bench import (GATHERS, MODELS, BenchOptions, GraphStore, NeighborhoodGatherer, TimingPolicy,
                              bench_graph, build_servers, check_graph_names, csbm_size, gather_rows,
                              markdown_table, peak_memory_bytes, record_file, run_bench)
from samlp_lite.cli import main
from samlp_lite.data import make_csbm
from samlp_lite.plotting_bench import plot_latency_scaling, plot_latency_vs_batch, plot_speedup
from samlp_lite.sampling import sample_subgraph

ROW_KEYS = {"model", "gather", "batch_size", "median_ms", "p10_ms", "p90_ms", "peak_mem_bytes", "num_params"}
RECORD_KEYS = {"kind", "graph", "num_nodes", "num_edges", "device", "threads", "provenance", "rows"}
FAST = TimingPolicy(warmup=1, repeats=2, min_repeats=1, budget_s=0.2)


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


def test_record_has_required_keys_and_one_row_per_cell(graph, tmp_path):
    options = BenchOptions(batch_sizes=[1, 16, "all"], policy=FAST, profile_batch_size=16)
    [(path, record)] = run_bench([graph], options, json_path=tmp_path / "{graph}.json", progress=False)
    assert path == tmp_path / "csbm-600.json"
    assert json.loads(path.read_text()) == json.loads(json.dumps(record))
    assert RECORD_KEYS <= set(record) and record["kind"] == "latency"
    assert (record["num_nodes"], record["num_edges"]) == (600, graph.data.edge_index.size(1))
    assert record["threads"] == torch.get_num_threads() and record["device"] == "cpu"
    assert {"command", "commit", "date", "machine", "wall_s"} <= set(record["provenance"])
    cells = [(r["model"], r["gather"], r["batch_size"]) for r in record["rows"]]
    expected = [(m, g, b) for m in MODELS for g in GATHERS[m] for b in (1, 16, 600)
                if not (g == "sampled" and b == 600)]  # all-node inference uses every neighbour
    assert {(s["model"], s["gather"], s["batch_size"]) for s in record["skipped"]} == {
        (m, "sampled", "all") for m in ("sage", "gcn", "gat")}
    assert sorted(cells) == sorted(expected) and len(set(cells)) == len(cells)
    for row in record["rows"]:
        assert ROW_KEYS <= set(row)
        assert row["p10_ms"] <= row["median_ms"] <= row["p90_ms"] and row["median_ms"] > 0
        assert row["num_params"] > 0 and row["bytes_per_node"] > 0 and row["peak_mem_bytes"] > 0
        assert row["all_nodes"] == (row["batch_size"] == 600)
    ratios = {r["batch_size"]: r for r in record["summary"]}
    assert set(ratios) == {1, 16, 600} and "sa_mlp_over_mlp" in ratios[16] and "sage_full_over_sa_mlp" in ratios[16]
    assert set(record["profile"]) == {"mlp", "sa-mlp"} and record["profile"]["sa-mlp"]["ops"][0]["op"] == "total"
    assert "| sa-mlp | adjacency-rows |" in markdown_table(record)


def test_batch_sizes_not_below_the_graph_are_skipped_with_a_reason(graph):
    record = bench_graph(graph, BenchOptions(models=["mlp"], batch_sizes=[4, 4096, "all"], policy=FAST,
                                             profile_batch_size=None))
    assert sorted(r["batch_size"] for r in record["rows"]) == [4, 600]
    assert record["skipped"][0]["batch_size"] == 4096


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


def test_peak_memory_sees_torch_allocations():
    big = torch.ones(1000, 1000)
    peak = peak_memory_bytes(lambda: (big * 2).sum(), torch.device("cpu"))
    assert peak is None or peak >= 4_000_000


def test_graph_names_and_errors():
    assert csbm_size("csbm-10k") == 10_000 and csbm_size("csbm-2m") == 2_000_000 and csbm_size("csbm-1500") == 1500
    assert csbm_size("cora") is None
    with pytest.raises(ValueError, match="csbm-<size>"):
        check_graph_names(["coraa"])
    with pytest.raises(ValueError, match="one file but 2 graphs"):
        record_file("out.json", "cora", 2)


def test_cli_rejects_unknown_models_and_graphs(capsys):
    assert main(["bench", "--models", "sagee", "--quiet"]) == 2
    assert "unknown model 'sagee'" in capsys.readouterr().err
    assert main(["bench", "--graphs", "csbm-10x", "--quiet"]) == 2
    assert "unknown graph 'csbm-10x'" in capsys.readouterr().err
    assert main(["bench", "--batch-sizes", "0", "--quiet"]) == 2


def test_smoke_cli_writes_a_valid_record_under_results_smoke(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    monkeypatch.chdir(tmp_path)
    code = main(["bench", "--graphs", "csbm-2m", "--models", "sage,mlp,sa-mlp", "--quiet",
                 "--json", "results/latency/{graph}.json", "--plot", "results/latency/latency.png"])
    assert code == 0
    path = tmp_path / "results" / "smoke" / "latency" / "csbm-2k.json"
    record = json.loads(path.read_text())
    assert not (tmp_path / "results" / "latency").exists()
    assert RECORD_KEYS <= set(record) and record["provenance"]["smoke"] is True
    assert record["num_nodes"] == 2000 and record["timing"]["repeats"] == 2
    assert {(r["model"], r["gather"]) for r in record["rows"] if r["all_nodes"]} == {
        ("sage", "full"), ("mlp", "features"), ("sa-mlp", "adjacency-rows")}
    assert {(r["model"], r["gather"]) for r in record["rows"]} == {
        ("sage", "full"), ("sage", "sampled"), ("mlp", "features"), ("sa-mlp", "adjacency-rows")}
    assert all(ROW_KEYS <= set(r) and r["repeats"] <= 2 for r in record["rows"])
    assert (tmp_path / "results" / "smoke" / "latency" / "latency.png").stat().st_size > 0
    assert (tmp_path / "results" / "smoke" / "latency" / "latency-speedup.png").stat().st_size > 0


def _fake_record(name: str, nodes: int) -> dict:
    rows = []
    for model, gather, cost in [("sage", "full", 50.0), ("sage", "sampled", 20.0), ("mlp", "features", 0.1),
                                ("sa-mlp", "adjacency-rows", 0.2)]:
        for size in (1, 256, nodes):
            median = cost * (size ** 0.5) * (nodes / 1e4) ** 0.1
            rows.append({"model": model, "gather": gather, "batch_size": size, "all_nodes": size == nodes,
                         "median_ms": median, "p10_ms": 0.9 * median, "p90_ms": 1.1 * median,
                         "peak_mem_bytes": 1000, "num_params": 10})
    return {"kind": "latency", "graph": name, "num_nodes": nodes, "num_edges": 10 * nodes, "device": "cpu",
            "threads": 1, "synthetic": True, "rows": rows}


def test_plots_return_figures():
    records = [_fake_record("csbm-10k", 10_000), _fake_record("csbm-100k", 100_000)]
    for fig in (plot_latency_scaling(records), plot_latency_scaling(records, batch_size="all"),
                plot_speedup(records), plot_latency_vs_batch(records[0])):
        assert isinstance(fig, Figure) and fig.axes
    assert fig.axes[0].get_xscale() == "log"
    with pytest.raises(ValueError, match="latency records"):
        plot_speedup([{"kind": "accuracy"}])
