"""SA-MLP's latency floor (its parts timed alone) and the average-degree sweep (no timing assertions)."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from samlp_lite.data import make_csbm
from samlp_lite.report.plotting.latency import plot_degree_sweep
from samlp_lite.serve.bench import (
    BenchOptions,
    bench_graph,
    csbm_degree,
    csbm_name,
    csbm_size,
    load_bench_graph,
    read_sweep,
    run_degree_sweep,
    summarize,
    sweep_table,
)
from samlp_lite.serve.measure import TimingPolicy
from samlp_lite.serve.store import GraphStore
from samlp_lite.serve.students import GATHERS, MODELS, build_servers

FAST = TimingPolicy(warmup=1, repeats=3, min_repeats=1, budget_s=0.1)
FLOOR_MODELS = ["mlp", "sa-mlp", "structure-lookup"]


@pytest.fixture(scope="module")
def graph():
    return make_csbm(num_nodes=500, num_classes=3, avg_degree=6, num_features=12, num_splits=1, seed=2,
                     name="csbm-500")


def test_structure_lookup_is_samlp_structure_encoder_alone(graph):
    store = GraphStore.from_graph(graph)
    assert "structure-lookup" in MODELS and GATHERS["structure-lookup"] == ("adjacency-rows",)
    [lookup] = build_servers("structure-lookup", store, graph.num_classes, overrides={"hidden": 16})
    [samlp] = build_servers("sa-mlp", store, graph.num_classes, overrides={"hidden": 16}, fused=False)
    samlp.model.structure_encoder.weight.data.copy_(lookup.table)
    targets = torch.tensor([0, 9, 41, 499])
    expected = samlp.model.structure_preactivation(store.adjacency.gather(targets)) - samlp.model.structure_bias
    torch.testing.assert_close(lookup(targets), expected.detach())
    assert lookup.num_params == graph.num_nodes * 16  # the table only: no features, no heads
    assert lookup.input_bytes(targets) < samlp.input_bytes(targets)  # no feature rows
    rows = store.adjacency.all()
    torch.testing.assert_close(lookup(None), F.embedding_bag(rows.indices, lookup.table, rows.offsets, mode="sum"))


def test_record_reports_samlp_over_its_floor(graph):
    options = BenchOptions(models=FLOOR_MODELS, batch_sizes=[1, 16], policy=FAST, profile_batch_size=None)
    record = bench_graph(graph, options)
    cells = {(r["model"], r["batch_size"]) for r in record["rows"]}
    assert cells == {(m, b) for m in FLOOR_MODELS for b in (1, 16)}
    for entry in record["summary"]:
        by_model = {r["model"]: r["median_ms"] for r in record["rows"] if r["batch_size"] == entry["batch_size"]}
        floor = by_model["mlp"] + by_model["structure-lookup"]
        assert entry["floor_ms"] == pytest.approx(floor, abs=1e-3)
        assert entry["sa_mlp_over_floor"] == pytest.approx(by_model["sa-mlp"] / floor, rel=1e-2)
    assert [e["batch_size"] for e in record["floor"]] == [1, 16]  # the interleaved check
    for entry in record["floor"]:
        assert entry["floor_ms"] == pytest.approx(entry["mlp_ms"] + entry["structure_lookup_ms"], abs=1e-3)
        assert entry["sa_mlp_over_floor"] > 0 and entry["repeats"] >= 1
    assert record["avg_degree"] == pytest.approx(graph.data.edge_index.size(1) / graph.num_nodes, abs=1e-3)
    assert record["models"]["structure-lookup"]["hidden"] == record["models"]["sa-mlp"]["hidden"]


def test_summary_without_the_floor_parts_has_no_floor():
    rows = [{"model": "sa-mlp", "gather": "adjacency-rows", "batch_size": 8, "median_ms": 2.0},
            {"model": "mlp", "gather": "features", "batch_size": 8, "median_ms": 1.0}]
    [entry] = summarize(rows)
    assert entry["sa_mlp_over_mlp"] == 2.0 and "floor_ms" not in entry
    rows.append({"model": "structure-lookup", "gather": "adjacency-rows", "batch_size": 8, "median_ms": 0.5})
    [entry] = summarize(rows)
    assert (entry["floor_ms"], entry["sa_mlp_over_floor"], entry["sa_mlp_overhead_ms"]) == (1.5, 1.333, 0.5)


def test_degree_names_parse_and_build_graphs_of_that_degree():
    assert csbm_size("csbm-2m-deg5") == 2_000_000 and csbm_degree("csbm-2m-deg5") == 5.0
    assert csbm_degree("csbm-2m") == 20.0 and csbm_degree("cora") is None and csbm_size("csbm-2m-degx") is None
    assert csbm_name(2_000_000, 50) == "csbm-2m-deg50" and csbm_name("csbm-2m-deg5") == "csbm-2m"
    low, high = load_bench_graph("csbm-400-deg3"), load_bench_graph("csbm-400-deg12")
    assert low.data.edge_index.size(1) / 400 == pytest.approx(3, rel=0.15)
    assert high.data.edge_index.size(1) / 400 == pytest.approx(12, rel=0.15)


def test_degree_sweep_writes_one_record_resumes_and_plots(tmp_path, monkeypatch):
    monkeypatch.delenv("SAMLP_SMOKE", raising=False)
    options = BenchOptions(models=["sage", *FLOOR_MODELS], batch_sizes=[16], policy=FAST, profile_batch_size=None)
    path, sweep = run_degree_sweep("csbm-300", [2, 8], options, json_path=tmp_path, progress=False)
    assert path == tmp_path / "csbm-300-degree.json"
    saved = read_sweep(path)
    assert saved["kind"] == "latency-sweep" and saved["values"] == [2.0, 8.0]
    assert [r["graph"] for r in saved["records"]] == ["csbm-300-deg2", "csbm-300-deg8"]
    assert all(r["kind"] == "latency" and "provenance" in r for r in saved["records"])
    table = sweep_table(saved, 16)
    assert [row["avg_degree"] for row in table] == [2.0, 8.0]
    assert all(row["sa_mlp_over_mlp"] > 0 and row["sage_full_over_sa_mlp"] > 0 for row in table)
    dates = [r["provenance"]["date"] for r in saved["records"]]
    _, again = run_degree_sweep("csbm-300", [2, 8, 4], options, json_path=tmp_path, progress=False)
    assert [r["requested_degree"] for r in again["records"]] == [2.0, 4.0, 8.0]
    assert [r["provenance"]["date"] for r in again["records"] if r["requested_degree"] != 4.0] == dates  # reused
    assert isinstance(plot_degree_sweep(again, batch_size=16), Figure)
    from samlp_lite.records import latency_records

    assert latency_records(tmp_path) == []  # nested records stay out of the graph-size ladder
    json.dumps(again)


def test_cli_degree_sweep(tmp_path, monkeypatch, capsys):
    from samlp_lite.cli import main

    monkeypatch.delenv("SAMLP_SMOKE", raising=False)
    out = tmp_path / "sweep.json"
    assert main(["bench", "--graphs", "csbm-300", "--degrees", "2,6", "--models", "mlp,sa-mlp,structure-lookup",
                 "--batch-sizes", "16", "--repeats", "2", "--budget", "0.05", "--json", str(out),
                 "--plot", str(tmp_path / "sweep.png")]) == 0
    assert read_sweep(out)["values"] == [2.0, 6.0] and (tmp_path / "sweep.png").is_file()
    assert "SA-MLP/floor" in capsys.readouterr().out
