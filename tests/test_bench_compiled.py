"""Compiled serving: padded adjacency rows keep the embedding-bag, and every mode gives eager's logits."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from samlp_lite.data import make_csbm
from samlp_lite.data.adjacency import AdjacencyBatch
from samlp_lite.serve.bench import BenchOptions, bench_graph
from samlp_lite.serve.compiled import CompiledServer, bucket_size, check_compile_modes, compile_check, pad_rows
from samlp_lite.serve.measure import TimingPolicy
from samlp_lite.serve.store import GraphStore
from samlp_lite.serve.students import build_servers


@pytest.fixture(scope="module")
def graph():
    return make_csbm(num_nodes=400, num_classes=3, avg_degree=5, num_features=10, num_splits=1, seed=4,
                     name="csbm-400")


def test_bucket_is_the_next_power_of_two():
    assert [bucket_size(n, 1) for n in (0, 1, 2, 3, 5, 1024, 1025)] == [1, 1, 2, 4, 8, 1024, 2048]
    assert bucket_size(3) == 256  # never below the minimum


@pytest.mark.parametrize("weighted", [False, True])
def test_padding_leaves_the_sum_embedding_bag_unchanged(weighted):
    table = torch.randn(50, 4)
    rows = AdjacencyBatch(torch.tensor([3, 7, 7, 49, 0, 12]), torch.tensor([0, 2, 2, 5]),
                          torch.rand(6) if weighted else None)
    padded = pad_rows(rows, minimum=16)
    assert padded.indices.numel() == 16 and padded.weights.numel() == 16
    expected = F.embedding_bag(rows.indices, table, rows.offsets, mode="sum", per_sample_weights=rows.weights)
    got = F.embedding_bag(padded.indices, table, padded.offsets, mode="sum", per_sample_weights=padded.weights)
    torch.testing.assert_close(got, expected)


def test_padded_server_gives_eager_logits(graph):
    store = GraphStore.from_graph(graph)
    [samlp] = build_servers("sa-mlp", store, graph.num_classes, overrides={"hidden": 8})
    targets = torch.tensor([0, 5, 77, 399, 200])
    padded = CompiledServer(samlp, "padded")
    assert padded.impl == "fused+padded" and padded.model_name == "sa-mlp"
    assert padded.gather(targets)[1].indices.numel() == 256
    torch.testing.assert_close(padded(targets), samlp(targets))


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown compile mode.*cudagraphs"):
        check_compile_modes(["eager", "cuda-graph"])


def test_compile_check_rows_compare_each_mode_with_eager(graph):
    store = GraphStore.from_graph(graph)
    rows = compile_check(store, graph.num_classes, [1, 32], ["eager", "padded"],
                         TimingPolicy(warmup=2, repeats=3, min_repeats=3, budget_s=5.0),
                         overrides_for=lambda name: {"hidden": 8})
    assert {(r["model"], r["mode"], r["batch_size"]) for r in rows} == {
        (m, mode, b) for m in ("mlp", "sa-mlp") for mode in ("eager", "padded") for b in (1, 32)}
    for row in rows:
        assert "error" not in row and row["median_ms"] > 0 and row["repeats"] == 3
        if row["mode"] == "padded":
            assert row["max_abs_diff_vs_eager"] < 1e-5


def test_bench_record_carries_the_compiled_rows(graph):
    options = BenchOptions(models=["mlp", "sa-mlp"], batch_sizes=[8], profile_batch_size=None,
                           policy=TimingPolicy(warmup=1, repeats=2, min_repeats=1, budget_s=0.1),
                           overrides={"hidden": 8}, compile_modes=["padded"])
    record = bench_graph(graph, options)
    assert [(r["model"], r["mode"], r["batch_size"]) for r in record["compiled"]] == [
        ("mlp", "padded", 8), ("sa-mlp", "padded", 8)]
    assert bench_graph(graph, BenchOptions(models=["mlp"], batch_sizes=[8], profile_batch_size=None,
                                           policy=options.policy, overrides={"hidden": 8}))["compiled"] == []
