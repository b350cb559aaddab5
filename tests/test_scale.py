"""The scale path on a tiny graph: the stored graph, the exact layer-wise inference, sparse training, resuming."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from samlp_lite.data import make_csbm
from samlp_lite.data.adjacency import AdjacencyRows
from samlp_lite.data.products import DiskGraph, make_products_like, scaled_shape, write_graph
from samlp_lite.models.students import SAMLP
from samlp_lite.models.teachers import build_teacher
from samlp_lite.runs.scale_local import (
    STAGES,
    ScaleOptions,
    ScalePaths,
    lean_source,
    run_scale,
    sage_forward_trimmed,
    sage_layerwise,
    store_from_disk,
    synthetic_size,
    stages_to_redo,
    teacher_config,
)
from samlp_lite.serve.store import GraphStore, NeighborhoodGatherer
from samlp_lite.train.distill import CombinedOptimizer, RowSparseAdam, lean_epoch, make_optimizer

TINY = dict(teacher_epochs=2, student_epochs=2, teacher_batch_size=128, student_batch_size=256, teacher_hidden=16,
            student_hidden=16, serve_batch_sizes=(1, 16), serve_repeats=2, serve_budget_s=0.05, inference_chunk=300)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    return make_products_like(tmp_path_factory.mktemp("graph") / "g", name="products-synthetic-1500",
                              num_nodes=1500, num_edges=7500, progress=False)  # average degree 10


def _edges(graph: DiskGraph) -> np.ndarray:
    rowptr, col = np.asarray(graph.rowptr), np.asarray(graph.col).astype(np.int64)
    rows = np.repeat(np.arange(graph.num_nodes), np.diff(rowptr))
    return rows * graph.num_nodes + col


def test_synthetic_graph_has_the_asked_shape_and_a_valid_csr(stored):
    shape = scaled_shape(1500)
    assert (stored.num_nodes, stored.num_edges, stored.num_features, stored.num_classes) == (1500, 7500, 100, 47)
    assert stored.x.dtype == np.float16 and stored.col.dtype == np.int32 and stored.y.dtype == np.int16
    keys = _edges(stored)
    assert (np.diff(keys) > 0).all()  # rows sorted, no duplicate
    rows, cols = keys // 1500, keys % 1500
    assert not (rows == cols).any()  # no self-loop
    assert np.array_equal(np.sort(cols * 1500 + rows), keys)  # both directions
    sizes = [stored.train.size, stored.val.size, stored.test.size]
    assert sizes[:2] == [shape["num_train"], shape["num_val"]] and sum(sizes) == 1500
    assert len(np.intersect1d(stored.train, stored.test)) == 0
    degree = np.diff(np.asarray(stored.rowptr))
    assert degree.max() > 4 * degree.mean()  # a heavy tail
    assert stored.meta["edge_homophily"] < 0.4  # heterophilous


def test_products_size_names():
    assert synthetic_size("products-synthetic") == 2_449_029
    assert synthetic_size("products-synthetic-100k") == 100_000
    assert scaled_shape(2_449_029)["num_edges"] == 61_859_140
    with pytest.raises(ValueError):
        synthetic_size("products-synthetic-abc")


def test_write_graph_stores_a_registry_graph_as_its_adjacency_rows(tmp_path):
    graph = make_csbm(num_nodes=300, num_classes=3, avg_degree=5, num_features=8, num_splits=1, seed=1)
    disk = write_graph(tmp_path / "csbm", graph, progress=False)
    rows = AdjacencyRows.from_edge_index(graph.data.edge_index, graph.num_nodes)
    assert torch.equal(disk.rowptr_tensor(), rows.rowptr) and torch.equal(disk.col_tensor(torch.int64), rows.col)
    assert disk.num_edges == graph.data.edge_index.size(1) // 2
    assert torch.equal(disk.split("train"), graph.split(0).train) and torch.equal(disk.labels(), graph.data.y)
    torch.testing.assert_close(disk.features(torch.arange(5)), graph.data.x[:5].half().float())
    store, reference = store_from_disk(disk), GraphStore.from_graph(graph)
    assert torch.equal(store.in_neighbors.col, reference.in_neighbors.col) and store.num_edges == reference.num_edges


def _teacher(stored):
    torch.manual_seed(0)
    options = ScaleOptions(graph="products-synthetic-1500", teacher_hidden=24)
    return build_teacher("sage", stored.num_features, stored.num_classes, teacher_config(options)).eval()


def test_layerwise_inference_equals_the_full_graph_forward(stored):
    teacher = _teacher(stored)
    keys = _edges(stored)
    edge_index = torch.from_numpy(np.stack([keys % stored.num_nodes, keys // stored.num_nodes]))  # source, target
    x = stored.dense_features()
    with torch.no_grad():
        expected = teacher.gnn(x, edge_index)
    torch.testing.assert_close(sage_layerwise(teacher, stored, chunk_size=256), expected, rtol=1e-4, atol=1e-5)


def test_trimmed_minibatch_forward_equals_the_module_on_the_subgraph(stored):
    teacher = _teacher(stored)
    gatherer = NeighborhoodGatherer(store_from_disk(stored).in_neighbors)
    targets = torch.tensor([0, 5, 17, 200])
    sub = gatherer(targets, [10, 5], torch.Generator().manual_seed(0))
    x = stored.features(sub.n_id)
    with torch.no_grad():
        expected = teacher(x, sub.edge_index)[:4]
        torch.testing.assert_close(sage_forward_trimmed(teacher, x, sub, training=False), expected,
                                   rtol=1e-4, atol=1e-5)


def test_sparse_structure_gradients_touch_only_the_rows_read(stored):
    torch.manual_seed(0)
    model = SAMLP(stored.num_nodes, stored.num_features, stored.num_classes, hidden=8, sparse_gradients=True)
    assert model.sparse_gradients
    optimizer = make_optimizer(model, lr=0.01, weight_decay=5e-4)
    assert isinstance(optimizer, CombinedOptimizer)
    assert [type(o).__name__ for o in optimizer.optimizers] == ["RowSparseAdam", "Adam"]
    soft = np.random.default_rng(0).standard_normal((stored.num_nodes, stored.num_classes)).astype(np.float16)
    source = lean_source(stored, soft, structure=True)
    nodes = torch.tensor([3, 7, 11])
    read = torch.unique(source.adjacency(nodes).indices.long())
    before = model.structure_encoder.weight.detach().clone()
    from samlp_lite.config import resolve_config

    config = resolve_config("products-synthetic-1500", "sa-mlp", {"dropout": 0.0})
    lean_epoch("sa-mlp", model, optimizer, source, nodes, config, epoch=1, batch_size=3)
    changed = (model.structure_encoder.weight.detach() != before).any(dim=1).nonzero().view(-1)
    assert torch.equal(changed, read)
    optimizer.load_state_dict(optimizer.state_dict())  # checkpoints round-trip
    plain = SAMLP(10, 4, 3, hidden=4)
    assert isinstance(make_optimizer(plain, lr=0.01), torch.optim.Adam)  # unchanged without sparse tables


def test_tiny_scale_run_writes_a_record_and_resumes(tmp_path, monkeypatch):
    monkeypatch.delenv("SAMLP_SMOKE", raising=False)
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
    options = ScaleOptions(graph="products-synthetic-1500", **TINY)
    workdir, record_path = tmp_path / "work", tmp_path / "scale.json"
    assert run_scale(options, workdir=workdir, record=record_path, stages=["graph", "teacher"], in_process=True,
                     progress=False) is None and not record_path.exists()
    record = run_scale(options, workdir=workdir, record=record_path, in_process=True, progress=False,
                       command="test")
    saved = json.loads(record_path.read_text())
    assert saved == json.loads(json.dumps(record))
    assert saved["kind"] == "scale" and saved["processes"] == 1 and saved["graph"] == "products-synthetic-1500"
    assert saved["num_nodes"] == 1500 and saved["num_edges"] == scaled_shape(1500)["num_edges"]
    assert [s["stage"] for s in saved["stages"]] == list(STAGES)
    assert all(s["wall_s"] >= 0 and s["peak_rss_bytes"] > 0 for s in saved["stages"])
    assert set(saved["accuracy"]) == {"sage", "glnn", "sa-mlp"} and all(0 <= v <= 1 for v in saved["accuracy"].values())
    assert {"command", "commit", "machine", "date"} <= set(saved["provenance"])
    models = {row["model"] for row in saved["serving"]["rows"]}
    assert models == {"sage", "mlp", "sa-mlp", "structure-lookup"}
    assert saved["details"]["sa-mlp"]["optimizer"] == "CombinedOptimizer(RowSparseAdam, Adam)"
    paths = ScalePaths(workdir)
    assert (paths.stage_dir("sa-mlp") / "checkpoint.pt").is_file() and paths.soft_labels.is_file()
    # Everything done: a re-run rebuilds the record from the saved stages without training.
    again = run_scale(options, workdir=workdir, record=record_path, in_process=True, progress=False, command="test")
    assert [s["wall_s"] for s in again["stages"]] == [s["wall_s"] for s in saved["stages"]]
    assert all(s["code"] and "commit" in s["code"][0] for s in saved["stages"])
    # Changed SA-MLP options re-run SA-MLP and serving only; the teacher, soft labels and GLNN are kept.
    messages = []
    changed = run_scale(ScaleOptions(graph="products-synthetic-1500", **{**TINY, "adj_norm": "row"}),
                        workdir=workdir, record=record_path, in_process=True, progress=False, echo=messages.append)
    assert "scale: options changed (adj_norm): re-running sa-mlp, serve" in messages
    walls = {s["stage"]: s["wall_s"] for s in changed["stages"]}
    assert all(walls[k] == s["wall_s"] for s in saved["stages"] for k in [s["stage"]]
               if k in ("graph", "teacher", "soft-labels", "glnn"))
    assert changed["options"]["adj_norm"] == "row" and saved["options"]["adj_norm"] == "none"


def test_changed_options_invalidate_their_stages_and_the_stages_reading_them():
    base = ScaleOptions(graph="products-synthetic-1500", **TINY)
    old = base.to_dict()
    redo = lambda **changes: stages_to_redo(old, ScaleOptions(**{**old, **changes}))[0]  # noqa: E731
    assert redo() == [] and redo(device="cuda") == []
    assert redo(teacher_lr=0.1) == ["teacher", "soft-labels", "glnn", "sa-mlp"]
    assert redo(student_dropout=0.3) == ["glnn", "sa-mlp"]  # serving times shapes, not trained weights
    assert redo(sparse_lr=0.1) == ["sa-mlp"]
    assert redo(serve_repeats=3) == ["serve"]
    assert redo(homophily=0.3) == list(STAGES)
    assert stages_to_redo({k: v for k, v in old.items() if k != "adj_norm"}, base) == (["sa-mlp", "serve"], ["adj_norm"])


def test_a_student_resumes_from_its_last_epoch(tmp_path, monkeypatch):
    monkeypatch.delenv("SAMLP_SMOKE", raising=False)
    options = ScaleOptions(graph="products-synthetic-1500", **{**TINY, "student_epochs": 1})
    workdir = tmp_path / "work"
    run_scale(options, workdir=workdir, record=tmp_path / "r.json", stages=list(STAGES[:4]), in_process=True,
              progress=False)
    # Pretend the run had asked for three GLNN epochs and stopped after the first: the stage resumes at epoch 2.
    paths = ScalePaths(workdir)
    state = json.loads(paths.stage_file("glnn").read_text())
    state["done"] = False
    paths.stage_file("glnn").write_text(json.dumps(state))
    longer = ScaleOptions(graph="products-synthetic-1500", **{**TINY, "student_epochs": 3})
    saved = json.loads((paths.run / "options.json").read_text())
    (paths.run / "options.json").write_text(json.dumps({**saved, "student_epochs": 3}))
    run_scale(longer, workdir=workdir, record=tmp_path / "r.json", stages=["glnn"], in_process=True, progress=False)
    done = json.loads(paths.stage_file("glnn").read_text())
    assert [h["epoch"] for h in done["metrics"]["history"]] == [1, 2, 3] and len(done["sittings"]) == 2


def test_cli_scale_in_smoke_mode(tmp_path, monkeypatch, capsys):
    from samlp_lite.cli import main

    monkeypatch.setenv("SAMLP_SMOKE", "1")
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert main(["scale", "--in-process", "--quiet", "--serve-batch-sizes", "1"]) == 0
    record = json.loads((tmp_path / "results" / "smoke" / "scale" / "products-synthetic-2k.json").read_text())
    assert record["kind"] == "scale" and record["num_nodes"] == 2000 and record["provenance"]["smoke"]
    assert "| sa-mlp |" in capsys.readouterr().out


def test_cli_help_names_the_stages_and_the_defaults_of_scale_options():
    from samlp_lite.cli.scale import STAGE_NAMES

    assert STAGE_NAMES.split(",") == list(STAGES)
    defaults = ScaleOptions()
    assert (defaults.teacher_epochs, defaults.teacher_batch_size, defaults.teacher_hidden, defaults.teacher_lr,
            defaults.student_epochs, defaults.student_batch_size, defaults.student_hidden, defaults.student_lr,
            defaults.sparse_lr, defaults.fanouts, defaults.serve_batch_sizes) == (
        3, 1024, 256, 0.005, 4, 4096, 128, 0.01, 0.01, (10, 5), (1, 256))  # as the CLI's help says


def test_row_sparse_adam_is_sparse_adam():
    tables = []
    for optimizer in (torch.optim.SparseAdam, RowSparseAdam):
        torch.manual_seed(0)
        table = torch.nn.EmbeddingBag(50, 6, mode="sum", sparse=True)
        opt = optimizer([table.weight], lr=0.05)
        generator = torch.Generator().manual_seed(1)
        for _ in range(6):  # repeated ids in a step, and rows absent from some steps
            ids = torch.randint(0, 20, (30,), generator=generator)
            opt.zero_grad()
            table(ids, torch.arange(0, 30, 3)).sin().sum().backward()
            opt.step()
        tables.append((table.weight.detach().clone(), opt.state_dict()))
    torch.testing.assert_close(tables[0][0], tables[1][0])
    assert (tables[1][0][20:] == tables[0][0][20:]).all()  # untouched rows never move
    reloaded = RowSparseAdam([torch.nn.Parameter(torch.zeros(50, 6))], lr=0.05)
    reloaded.load_state_dict(tables[0][1])  # a SparseAdam checkpoint loads into RowSparseAdam
    assert make_optimizer(SAMLP(10, 4, 3, hidden=4, sparse_gradients=True), lr=0.01,
                          sparse_optimizer="torch").optimizers[0].__class__ is torch.optim.SparseAdam
