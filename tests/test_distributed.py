"""SA-MLP over several processes: node ownership, the sharding-independent table, the TorchRec model against
the single-process SAMLP (forward and gradients), and 1 against 2 torchrun processes.

The tests that start processes need TorchRec (the ``[distributed]`` extra, ``bash .ci/install-extras.sh
distributed``) and are skipped without it.
"""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from samlp_lite.train import distributed as D


def test_every_node_has_exactly_one_owning_process():
    for world in (1, 2, 3):
        parts = [D.owned_nodes(1001, rank, world, seed=5) for rank in range(world)]
        every = torch.cat(parts)
        assert torch.equal(torch.sort(every).values, torch.arange(1001))
        assert max(p.numel() for p in parts) - min(p.numel() for p in parts) <= 1
        assert all(torch.equal(p, torch.sort(p).values) for p in parts)


def test_the_initial_table_does_not_depend_on_the_sharding():
    rows, cols, seed = 70_000, 48, 3  # more than one block of rows, three of columns
    full = torch.empty(rows, cols)
    D.fill_table_block(full, [0, 0], rows, cols, seed)
    bound = rows ** -0.5
    assert float(full.abs().max()) <= bound and float(full.std()) > 0.5 * bound / math.sqrt(3)
    for world in (2, 3):  # column-wise: all rows, cols / world columns each
        width = cols // world
        for rank in range(world):
            piece = torch.empty(rows, width)
            D.fill_table_block(piece, [0, rank * width], rows, cols, seed)
            assert torch.equal(piece, full[:, rank * width:(rank + 1) * width])
    top = 35_001  # row-wise, with a boundary inside a block
    for offset, height in ((0, top), (top, rows - top)):
        piece = torch.empty(height, cols)
        D.fill_table_block(piece, [offset, 0], rows, cols, seed)
        assert torch.equal(piece, full[offset:offset + height])
    other = torch.empty(rows, cols)
    D.fill_table_block(other, [0, 0], rows, cols, seed + 1)
    assert not torch.equal(other, full)


def test_a_missing_torchrec_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchrec", None)  # import torchrec now raises ImportError
    with pytest.raises(ImportError, match=r"\[distributed\] extra.*install-extras.sh distributed"):
        D.import_torchrec()


def test_peak_rss_is_measured_per_stage():
    meter = D.StageMeter()
    import mmap

    with meter.stage("grow"):  # fresh anonymous pages: freed heap memory cannot be reused for them
        block = mmap.mmap(-1, 64 * 2 ** 20)
        for offset in range(0, len(block), 4096):
            block[offset] = 1
    block.close()
    with meter.stage("idle"):
        pass
    grow, idle = meter.stages
    assert grow["stage"] == "grow" and grow["wall_s"] >= 0 and grow["peak_rss_bytes"] > 0
    if D.reset_peak_rss():  # Linux: the peak is reset at each stage's start
        assert grow["peak_rss_bytes"] - idle["peak_rss_bytes"] > 32 * 2 ** 20


def test_scale_records_go_under_results_scale(monkeypatch):
    from samlp_lite.runs.scale import record_target

    monkeypatch.delenv("SAMLP_SMOKE", raising=False)
    assert record_target(None, "csbm-100k", "sa-mlp", 2) == Path("results/scale/csbm-100k-sa-mlp-2proc.json")
    assert record_target("none", "csbm-100k", "sa-mlp", 2) is None
    assert record_target("out/r.json", "csbm-100k", "sa-mlp", 1) == Path("out/r.json")
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    assert record_target(None, "my.pt", "sa-mlp", 1) == Path("results/smoke/scale/my-sa-mlp-1proc.json")


# --------------------------------------------------------------------------- with processes (TorchRec)

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _compare_worker(rank: int, world: int, port: int, sharding: str, out: str) -> None:
    """One process of test_sharded_samlp_matches_samlp: forward and gradients against a dense SAMLP."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    import warnings

    warnings.filterwarnings("ignore")
    from samlp_lite.config import resolve_config
    from samlp_lite.data import make_csbm
    from samlp_lite.models.registry import build_adjacency, make_student
    from samlp_lite.runtime import seed_everything
    from samlp_lite.train.losses import (
        combined_loss,
        mixing_kd_loss,
        teacher_probabilities,
    )

    group = D.init_process_group("cpu")
    graph = make_csbm(num_nodes=300, num_classes=4, avg_degree=6, num_features=8, num_splits=1, seed=2)
    config = resolve_config("csbm", "sa-mlp", {"hidden": 8, "dropout": 0.0, "lam": 0.3, "beta": 1.0},
                            teacher="gcn")
    logits = torch.randn(300, 4, generator=torch.Generator().manual_seed(0))
    shards = [D.partition(graph, 0, logits, config, r, world) for r in range(world)]
    seed_everything(config.seed)
    model = D.ShardedSAMLP("sa-mlp", 300, 8, 4, config)
    sharded = D.shard_model(model, group, sharding)
    # the same model, unsharded: the dense parts as built, the table as the blocks define it
    reference = make_student("sa-mlp", 8, 4, 300, config)
    reference.load_state_dict({k: v for k, v in model.dense.state_dict().items()}, strict=False)
    with torch.no_grad():
        D.fill_table_block(reference.structure_encoder.weight, [0, 0], 300, 8, config.seed)
    adjacency = build_adjacency(graph.data.edge_index, 300, config)

    def batch(shard):
        local = torch.arange(40)
        ids, lengths, weights = shard.rows(local)
        perm = torch.randperm(40, generator=torch.Generator().manual_seed(11))
        mu = torch.rand(40, generator=torch.Generator().manual_seed(12))
        return local, (ids, lengths, weights, shard.x[local]), perm, mu

    sharded.train()
    reference.train()
    local, inputs, perm, mu = batch(shards[rank])
    mine = shards[rank]
    loss = sharded(*inputs, probs=mine.probs[local], y=mine.y[local], label_mask=mine.is_train[local],
                   perm=perm, mu=mu)
    loss.backward()
    with torch.no_grad():
        plain = sharded(*inputs)
    total = 0.0
    for shard in shards:  # DDP and TorchRec average the processes' gradients: mean of their losses
        local_r, _, perm_r, mu_r = batch(shard)
        nodes = shard.nodes[local_r]
        adj = adjacency.gather(nodes)
        s_pre = reference.structure_preactivation(adj)
        f_pre = reference.feature_preactivation(shard.x[local_r])
        probs = teacher_probabilities(logits[nodes], config.tau)
        part = combined_loss(reference.decode(s_pre, f_pre), probs, shard.y[local_r], lam=config.lam, tau=config.tau,
                             label_mask=shard.is_train[local_r])
        part = part + config.beta * mixing_kd_loss(reference, None, None, probs, config.tau, perm_r, mu_r,
                                                   structure_pre=s_pre, feature_pre=f_pre)
        total = total + part / world
        if shard is mine:
            expected_loss, expected_logits = float(part), reference(mine.x[local], adj).detach()
    total.backward()
    params = dict(sharded.named_parameters())
    table = next(p for n, p in params.items() if n.endswith("structure.weight"))
    (piece,) = D.local_table_shards(sharded)
    r0, c0 = piece["offsets"]
    rows, cols = piece["shape"]
    dense_grad_error = max(float((p.grad - dict(reference.named_parameters())[n.removeprefix("dense.")].grad)
                                 .abs().max()) for n, p in params.items() if n.startswith("dense."))
    result = {
        "shape": piece["shape"],
        "logits_error": float((plain - expected_logits).abs().max()),
        "loss_error": abs(float(loss) - expected_loss),
        "table_grad_error": float((table.grad - reference.structure_encoder.weight.grad[r0:r0 + rows, c0:c0 + cols])
                                  .abs().max()),
        "table_grad_norm": float(table.grad.norm()),
        "dense_grad_error": dense_grad_error,
    }
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("sharding", ["column_wise", "row_wise"])
def test_sharded_samlp_matches_samlp(tmp_path, sharding):
    """Two processes: W_A split in halves; logits, loss and every gradient equal the single-process SAMLP's."""
    pytest.importorskip("torchrec")
    import torch.multiprocessing as mp

    mp.spawn(_compare_worker, args=(2, _free_port(), sharding, str(tmp_path)), nprocs=2)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    halves = [[300, 4], [300, 4]] if sharding == "column_wise" else [[150, 8], [150, 8]]
    assert [r["shape"] for r in results] == halves
    for r in results:
        assert r["logits_error"] < 1e-5 and r["loss_error"] < 1e-5
        assert r["table_grad_norm"] > 0 and r["table_grad_error"] < 1e-6
        assert r["dense_grad_error"] < 1e-6


def _torchrun(processes: int, graph: Path, record: Path, env: dict) -> dict:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               "-m", "samlp_lite.runs.scale", "--graph", str(graph), "--record", str(record), "--quiet"]
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "test accuracy" in done.stdout
    return json.loads(record.read_text())


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path, monkeypatch):
    """torchrun with 1 and 2 gloo processes on a CSBM that is not trivially separable: the same accuracy
    within noise (and as the single-process trainer), with each process holding half of W_A."""
    pytest.importorskip("torchrec")
    from samlp_lite.config import resolve_config
    from samlp_lite.data import load_dataset, make_csbm
    from samlp_lite.train.distill import train_student
    from samlp_lite.train.soft_labels import get_teacher_outputs

    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SAMLP_SMOKE", raising=False)  # full-length training: the accuracies are the point
    made = make_csbm(num_nodes=3000, num_classes=4, avg_degree=6, num_features=16, homophily=0.6,
                     feature_signal=0.8, num_splits=1, seed=3)
    train, val, test = made.split(0).masks(made.num_nodes)
    path = tmp_path / "csbm-hard.pt"
    torch.save({"x": made.data.x, "y": made.data.y, "edge_index": made.data.edge_index, "train_mask": train,
                "val_mask": val, "test_mask": test}, path)
    graph = load_dataset(path)
    torch.set_num_threads(1)
    teacher = get_teacher_outputs(graph, "gcn", 0, resolve_config(graph.name, "gcn"), progress=False)  # cached
    env = {**os.environ, "SAMLP_THREADS": "1", "OMP_NUM_THREADS": "1"}
    one = _torchrun(1, path, tmp_path / "1proc.json", env)
    two = _torchrun(2, path, tmp_path / "2proc.json", env)
    for record, processes in ((one, 1), (two, 2)):
        assert record["kind"] == "scale" and record["processes"] == processes and record["graph"] == "csbm-hard"
        assert record["num_nodes"] == 3000 and record["teacher_from_cache"]
        assert [s["stage"] for s in record["stages"]] == ["load", "teacher", "partition", "shard", "train",
                                                          "evaluate"]
        assert all(len(s["per_process"]) == processes and s["peak_rss_bytes"] > 0 for s in record["stages"])
        assert record["provenance"]["command"].startswith(f"torchrun --nproc_per_node {processes}")
    assert [s["shape"] for s in one["table"]["shards"]] == [[3000, 64]]
    assert [s["shape"] for s in two["table"]["shards"]] == [[3000, 32], [3000, 32]]
    assert all(s["fraction"] <= 0.5 for s in two["table"]["shards"]) and two["table"]["sharding"] == "column_wise"
    from samlp_lite.runs.scale import load_scale_records, markdown_table

    rows = markdown_table(load_scale_records(tmp_path)).splitlines()
    assert len(rows) == 4 and "| csbm-hard | sa-mlp | 2 | cpu | column_wise |" in rows[3]

    config = resolve_config(graph.name, "sa-mlp", teacher="gcn")
    s = graph.split(0)
    single = train_student("sa-mlp", graph.data, s.train, s.val, s.test, graph.num_classes, config,
                           teacher.logits, progress=False).test_acc
    accuracies = {"single-process trainer": single, "1 process": one["accuracy"]["sa-mlp"],
                  "2 processes": two["accuracy"]["sa-mlp"]}
    noise = 2 * math.sqrt(single * (1 - single) / s.test.numel())  # two binomial standard errors (~3.8 points)
    print(accuracies, f"noise {noise:.4f}")
    assert max(accuracies.values()) - min(accuracies.values()) <= noise, accuracies
    assert min(accuracies.values()) > teacher.metrics["test_acc"] - noise  # it learned: about the teacher's level
