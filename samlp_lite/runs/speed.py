"""Training speed: seconds per epoch with the package's fast sparse products and without them.

Two products dominate full-batch training on a dense graph: a GNN layer's ``A @ X`` and the
structure encoder's ``rows @ W_A``. :mod:`samlp_lite.models.sparse_ops` gives both a cheaper
backward pass, and :mod:`samlp_lite.models.attention` computes a GAT layer's attention sum
as a sparse product; this benchmark trains each model for a fixed number of epochs with those
products and again inside :func:`~samlp_lite.models.sparse_ops.reference_products` (PyG's
``spmm``, ``GATConv`` and ``embedding_bag``), and prints the ratio. Each epoch includes its validation
pass, as in real training. Distilled students learn from seeded random logits of the
teacher's shape: what they contain does not change the cost of an epoch.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from samlp_lite.config import resolve_config
from samlp_lite.data import load_dataset
from samlp_lite.data.graph import GraphData
from samlp_lite.models.registry import is_teacher, uses_teacher
from samlp_lite.models.sparse_ops import reference_products
from samlp_lite.records import check_output_path, provenance, write_json_atomic
from samlp_lite.runtime import pick_device

SPEED_FIELDS = ("model", "epochs", "fast_s_per_epoch", "reference_s_per_epoch", "speedup", "max_abs_diff")
"""Keys of one row of a speed record (``speedup`` = reference / fast)."""


def _train(graph: GraphData, model: str, teacher: str, epochs: int, split: int, device: torch.device):
    from samlp_lite.train.distill import train_student
    from samlp_lite.train.teacher import train_teacher

    config = resolve_config(graph.name, model, None, teacher=None if is_teacher(model) else teacher)
    config = config.replace(max_epochs=epochs, patience=epochs + 1, eval_every=1)
    ids = graph.split(split)
    args = (graph.data, ids.train, ids.val, ids.test, graph.num_classes, config)
    if is_teacher(model):
        trained = train_teacher(model, *args, device=device, progress=False, metric=graph.metric)
    else:
        logits = None
        if uses_teacher(model):
            logits = torch.randn(graph.num_nodes, graph.num_classes, generator=torch.Generator().manual_seed(0))
        trained = train_student(model, *args, teacher_logits=logits, device=device, progress=False,
                                metric=graph.metric)
    return trained.fit.wall_s / max(trained.fit.epochs_run, 1), trained.logits


def time_model(graph: GraphData, model: str, *, teacher: str = "sage", epochs: int = 20, split: int = 0,
               device: torch.device | str | None = None) -> dict[str, Any]:
    """One row: seconds per epoch of ``model`` on ``graph`` with the fast products and without.

    Both runs start from the same seed, so their logits agree up to rounding;
    ``max_abs_diff`` reports how far apart they end.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    device = pick_device(device)
    fast_s, fast_logits = _train(graph, model, teacher, epochs, split, device)
    with reference_products():
        reference_s, reference_logits = _train(graph, model, teacher, epochs, split, device)
    return {"model": model, "epochs": epochs, "fast_s_per_epoch": fast_s, "reference_s_per_epoch": reference_s,
            "speedup": reference_s / fast_s if fast_s > 0 else float("nan"),
            "max_abs_diff": float((fast_logits - reference_logits).abs().max())}


def training_speed(dataset: str | GraphData, models: Iterable[str], *, teacher: str = "sage", epochs: int = 20,
                   split: int = 0, device: str | None = None, json_path: str | Path | None = None,
                   echo: Callable[[str], None] = print, command: str | None = None) -> dict[str, Any]:
    """Time every model (see :func:`time_model`), print a table and write a speed record."""
    path = check_output_path(json_path)
    start = time.perf_counter()
    graph = dataset if isinstance(dataset, GraphData) else load_dataset(dataset, progress=False)
    resolved = pick_device(device)
    echo(f"training speed on {graph.name} (split {split}, {epochs} epochs per run, device {resolved}, "
         f"{torch.get_num_threads()} thread(s))")
    echo(f"{'model':<14}{'fast s/epoch':>14}{'reference s/epoch':>19}{'speed-up':>10}{'max |diff|':>12}")
    rows = []
    for model in models:
        row = time_model(graph, model, teacher=teacher, epochs=epochs, split=split, device=resolved)
        rows.append(row)
        echo(f"{model:<14}{row['fast_s_per_epoch']:>14.4f}{row['reference_s_per_epoch']:>19.4f}"
             f"{row['speedup']:>9.2f}x{row['max_abs_diff']:>12.2e}")
    record = {"kind": "training_speed", "dataset": graph.name, "graph_fingerprint": graph.fingerprint,
              "split": split, "teacher_logits": "seeded random", "threads": torch.get_num_threads(), "rows": rows,
              "provenance": provenance(wall_s=time.perf_counter() - start, device=str(resolved), command=command)}
    if path is not None:
        write_json_atomic(path, record)
        echo(f"record written to {path}")
    return record
