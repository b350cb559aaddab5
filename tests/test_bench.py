"""The serving benchmark measures every cell and writes valid records (no timing assertions)."""
from __future__ import annotations

import json
import math

import pytest
import torch
from matplotlib.figure import Figure

from samlp_lite.cli import main
from samlp_lite.data import make_csbm
from samlp_lite.records import latency_records
from samlp_lite.report.plotting.latency import (
    plot_gather_bytes,
    plot_latency_scaling,
    plot_latency_vs_batch,
    plot_speedup,
)
from samlp_lite.report.tables import latency_pivot, latency_ratios, latency_table
from samlp_lite.serve.bench import (
    BenchOptions,
    bench_graph,
    check_graph_names,
    csbm_size,
    markdown_table,
    record_file,
    run_bench,
)
from samlp_lite.serve.measure import TimingPolicy, peak_memory_bytes
from samlp_lite.serve.students import GATHERS, MODELS

ROW_KEYS = {"model", "gather", "batch_size", "median_ms", "p10_ms", "p90_ms", "peak_mem_bytes", "num_params"}
RECORD_KEYS = {"kind", "graph", "num_nodes", "num_edges", "device", "threads", "provenance", "rows"}
FAST = TimingPolicy(warmup=1, repeats=2, min_repeats=1, budget_s=0.2)


@pytest.fixture(scope="module")
def graph():
    return make_csbm(num_nodes=600, num_classes=4, avg_degree=6, num_features=12, num_splits=1, seed=3,
                     name="csbm-600")


@pytest.mark.slow
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
    # Read back through the one reader of latency records, as tables and ratios.
    [loaded] = latency_records(tmp_path)
    assert loaded["graph"] == "csbm-600" and loaded["_path"] == str(path)
    table = latency_table([loaded])
    assert len(table) == len(record["rows"]) and set(table["num_nodes"]) == {600}
    assert set(table.loc[table["all_nodes"], "batch"]) == {"all"}
    wide = latency_pivot([loaded])
    assert list(wide.columns) == ["1", "16", "all"] and len(wide) == len({(m, g) for m, g, _ in cells})
    assert wide.index[0] == ("csbm-600", "sage", "full")
    assert math.isnan(wide.loc[("csbm-600", "sage", "sampled"), "all"])  # no sampled all-node row
    ratios = latency_ratios([loaded]).set_index("batch")
    assert list(ratios.index) == ["1", "16", "all"] and ratios.loc["all", "batch_size"] == 600
    assert ratios.loc["16", "sa_mlp_over_mlp"] == {r["batch_size"]: r for r in record["summary"]}[16]["sa_mlp_over_mlp"]


def test_batch_sizes_not_below_the_graph_are_skipped_with_a_reason(graph):
    record = bench_graph(graph, BenchOptions(models=["mlp"], batch_sizes=[4, 4096, "all"], policy=FAST,
                                             profile_batch_size=None))
    assert sorted(r["batch_size"] for r in record["rows"]) == [4, 600]
    assert record["skipped"][0]["batch_size"] == 4096


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
                         "peak_mem_bytes": 1000, "num_params": 10, "bytes_per_node": 100 * cost})
    return {"kind": "latency", "graph": name, "num_nodes": nodes, "num_edges": 10 * nodes, "device": "cpu",
            "threads": 1, "synthetic": True, "rows": rows}


def test_plots_return_figures():
    records = [_fake_record("csbm-10k", 10_000), _fake_record("csbm-100k", 100_000)]
    for fig in (plot_latency_scaling(records), plot_latency_scaling(records, batch_size="all"),
                plot_speedup(records), plot_gather_bytes(records), plot_latency_vs_batch(records[0])):
        assert isinstance(fig, Figure) and fig.axes
    assert fig.axes[0].get_xscale() == "log"
    with pytest.raises(ValueError, match="latency records"):
        plot_speedup([{"kind": "accuracy"}])
    with pytest.raises(ValueError, match="bytes_per_node"):
        plot_gather_bytes(records, batch_size=3)
