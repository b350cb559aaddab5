"""The scale path on one machine: a products-sized graph end to end, in resumable stages, one process per stage.

(:mod:`samlp_lite.runs.scale` is the multi-process path, ``torchrun`` with ``W_A`` sharded; this
module runs every stage, teacher and serving included, on one machine, one stage at a time, and
writes the same kind of ``scale`` record with ``processes: 1``.)

Stages (:data:`STAGES`), each in its own Python process so that its peak RSS is its own:

``graph``
    Store the graph on disk (:mod:`samlp_lite.data.products`): the synthetic ogbn-products
    twin (``products-synthetic``, or ``products-synthetic-100k`` and other sizes), or a registry
    dataset such as ``ogbn-products`` or ``ogbn-arxiv`` converted once. Every later stage maps it.
``teacher``
    GraphSAGE (two layers) on sampled mini-batches of the training nodes (``fanouts`` per hop,
    :class:`~samlp_lite.serve.store.NeighborhoodGatherer`, the package sampler's semantics),
    each layer computing only the nodes the next needs. Validation on sampled neighbourhoods
    of the validation nodes picks the epoch.
``soft-labels``
    Layer-wise full-neighbour inference of the best teacher for every node
    (:func:`sage_layerwise`): one layer at a time over chunks of target rows, the mean over
    every in-neighbour as an ``embedding_bag`` of the CSR row. The logits go to disk as float16;
    their test accuracy is the teacher's.
``glnn``, ``sa-mlp``
    Students on mini-batches over every node (KD on the soft labels, labels of training nodes
    with ``lam``), reading feature rows, adjacency rows and soft labels per batch from the maps
    (:func:`samlp_lite.train.distill.lean_epoch`). SA-MLP's ``W_A`` gets sparse gradients and
    a sparse Adam (:class:`~samlp_lite.train.distill.RowSparseAdam`, SparseAdam's update touching only
    the batch's rows); everything else Adam.
``serve``
    Serving latency of SAGE (full and sampled), MLP, SA-MLP and the structure lookup on the same
    graph (:func:`samlp_lite.serve.bench.bench_store`, random weights of the trained shapes).

Resuming: each stage writes ``<workdir>/run/stages/<stage>.json`` when done, and checkpoints
every epoch (model, optimiser, best epoch) under ``<workdir>/run/<stage>/``; re-running the same
command skips finished stages and resumes a stage from its last finished epoch. A stage's wall
time and peak RSS sum (and max) over the sittings it took.

The record (:func:`build_record`) is ``{"kind": "scale", "graph", "num_nodes", "num_edges",
"processes": 1, "provenance", "stages": [{"stage", "wall_s", "peak_rss_bytes", ...}], "accuracy":
{"sage", "glnn", "sa-mlp"}, ...}``; ``num_edges`` counts undirected edges (OGB's count,
``num_edge_entries`` both directions). ``results/scale/<graph>.json`` by default (smoke runs
under ``results/smoke/``).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from samlp_lite.records import code_version, provenance, read_json, record_path, write_json_atomic

STAGES = ("graph", "teacher", "soft-labels", "glnn", "sa-mlp", "serve")
STAGE_INPUTS = {"teacher": ("graph",), "soft-labels": ("teacher",), "glnn": ("soft-labels",),
                "sa-mlp": ("soft-labels",), "serve": ("graph",)}
"""The stages whose outputs each stage reads: re-running one re-runs everything that reads it."""
STAGE_OPTIONS = {
    "teacher": ("teacher_hidden", "fanouts", "teacher_epochs", "teacher_batch_size", "teacher_lr"),
    "soft-labels": ("inference_chunk",),
    "glnn": ("student_hidden", "student_epochs", "student_batch_size", "student_lr", "student_dropout"),
    "sa-mlp": ("student_hidden", "student_epochs", "student_batch_size", "student_lr", "student_dropout",
               "sparse_lr", "adj_norm"),
    "serve": ("student_hidden", "adj_norm", "serve_batch_sizes", "serve_repeats", "serve_budget_s"),
}
"""The options each stage depends on besides the graph's (which every stage depends on)."""
"""The stages in order."""
STUDENTS = ("glnn", "sa-mlp")
RSS_LIMIT_BYTES = 12 * 2**30
"""The memory budget every stage must stay under (a free Colab runtime has about 12 GB of RAM)."""
SYNTHETIC_PREFIX = "products-synthetic"
RESULTS_DIR = Path("results") / "scale"


# --------------------------------------------------------------------------- options

@dataclass
class ScaleOptions:
    """What one scale run does (stored as ``options.json`` in its work folder).

    Attributes:
        graph: ``products-synthetic`` (ogbn-products' size), ``products-synthetic-<size>``
            (e.g. ``-100k``, ``-2k``: the same shape, fewer nodes) or a registry dataset
            (``ogbn-products``, ``ogbn-arxiv``, ``cora``...).
        num_nodes: nodes of a synthetic graph (default from the name).
        homophily, partner, degree_exponent, feature_signal: the synthetic graph's options
            (:func:`samlp_lite.data.products.make_products_like`).
        teacher_hidden, fanouts, teacher_epochs, teacher_batch_size, teacher_lr: the GraphSAGE
            teacher (two layers, one fanout per layer).
        student_hidden, student_epochs, student_batch_size, student_lr, sparse_lr, student_dropout:
            the students (``sparse_lr``: the sparse Adam's learning rate for SA-MLP's ``W_A``).
        adj_norm: SA-MLP's adjacency rows, ``none`` (default: the sum of the neighbours' rows of
            ``W_A``, the paper's input), ``row`` (their mean) or ``sym``. On a 100,000-node twin
            (4 student epochs) the sum reached 27.5% test accuracy and the mean 15.4%.
        inference_chunk: target rows per chunk of the layer-wise inference and of predictions.
        serve_batch_sizes, serve_repeats, serve_budget_s: the serving benchmark.
        seed: seeds the graph, the sampling and the weights.
        device: ``cpu`` (default, what the committed record measures), ``cuda`` or ``auto``;
            models and their batches go there, sampling and the stored graph stay on the host.
            Changing it re-runs no stage: a run may resume on another device.
    """

    graph: str = SYNTHETIC_PREFIX
    num_nodes: int | None = None
    homophily: float = 0.2
    partner: float = 0.5
    degree_exponent: float = 2.8
    feature_signal: float = 1.5
    teacher_hidden: int = 256
    fanouts: tuple[int, ...] = (10, 5)
    teacher_epochs: int = 3
    teacher_batch_size: int = 1024
    teacher_lr: float = 0.005
    student_hidden: int = 128
    student_epochs: int = 4
    student_batch_size: int = 4096
    student_lr: float = 0.01
    sparse_lr: float = 0.01
    adj_norm: str = "none"
    student_dropout: float = 0.2
    inference_chunk: int = 65536
    serve_batch_sizes: tuple[int, ...] = (1, 256)
    serve_repeats: int = 10
    serve_budget_s: float = 2.0
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.fanouts = tuple(int(f) for f in self.fanouts)
        self.serve_batch_sizes = tuple(int(b) for b in self.serve_batch_sizes)
        if self.num_nodes is None and self.synthetic:
            self.num_nodes = synthetic_size(self.graph)
        for key in ("teacher_epochs", "student_epochs", "teacher_batch_size", "student_batch_size",
                    "teacher_hidden", "student_hidden", "inference_chunk"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.adj_norm not in ("none", "row", "sym"):
            raise ValueError(f"adj_norm must be none, row or sym, got {self.adj_norm!r}")
        if len(self.fanouts) != 2 or any(f < 1 for f in self.fanouts):
            raise ValueError(f"the teacher has two layers: give two positive fanouts, got {list(self.fanouts)}")

    @property
    def synthetic(self) -> bool:
        """Whether the graph is the synthetic products twin (else a registry dataset)."""
        return self.graph == SYNTHETIC_PREFIX or self.graph.startswith(SYNTHETIC_PREFIX + "-")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready options."""
        out = dataclasses.asdict(self)
        out["fanouts"], out["serve_batch_sizes"] = list(self.fanouts), list(self.serve_batch_sizes)
        return out

    def graph_options(self) -> dict[str, Any]:
        """The options that decide the stored graph."""
        keys = ("graph", "num_nodes", "homophily", "partner", "degree_exponent", "feature_signal", "seed")
        return {k: self.to_dict()[k] for k in keys} if self.synthetic else {"graph": self.graph}



def synthetic_size(name: str) -> int:
    """Nodes of ``products-synthetic`` (ogbn-products': 2,449,029) or ``products-synthetic-100k`` style names."""
    from samlp_lite.data.products import PRODUCTS

    if name == SYNTHETIC_PREFIX:
        return PRODUCTS["num_nodes"]
    text = name[len(SYNTHETIC_PREFIX) + 1:].lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    try:
        value = int(round(float(text.rstrip("km")) * scale))
    except ValueError:
        raise ValueError(f"cannot read a size from {name!r}; use e.g. products-synthetic-100k") from None
    if value < 200:
        raise ValueError(f"{name}: a synthetic products graph needs at least 200 nodes")
    return value


@dataclass
class ScalePaths:
    """Where a run keeps its files: ``<workdir>/graph`` (the stored graph) and ``<workdir>/run``."""

    workdir: Path

    @property
    def graph(self) -> Path:  # noqa: D102
        return self.workdir / "graph"

    @property
    def run(self) -> Path:  # noqa: D102
        return self.workdir / "run"

    def stage_file(self, stage: str) -> Path:
        """The stage's result file (written when it finishes; sittings while it runs)."""
        return self.run / "stages" / f"{stage}.json"

    def stage_dir(self, stage: str) -> Path:
        """The stage's checkpoints and outputs."""
        return self.run / stage

    @property
    def soft_labels(self) -> Path:  # noqa: D102
        return self.run / "soft-labels" / "logits.npy"


def default_workdir(graph: str) -> Path:
    """``$SAMLP_CACHE/scale/<graph>`` (smoke runs: ``.../scale/smoke/<graph>``)."""
    from samlp_lite.runtime import cache_dir, smoke_mode

    return cache_dir() / "scale" / ("smoke" if smoke_mode() else "") / graph


def default_record(graph: str) -> Path:
    """``results/scale/<graph>.json``, under ``results/smoke/`` in smoke mode."""
    return record_path(RESULTS_DIR / f"{graph}.json")


# --------------------------------------------------------------------------- stage bookkeeping

def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (``getrusage``; Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class StageLog:
    """The sittings of one stage: wall time and peak RSS of each, saved at every checkpoint."""

    def __init__(self, paths: ScalePaths, stage: str, *, in_process: bool = False) -> None:
        self.path = paths.stage_file(stage)
        self.stage = stage
        saved = read_json(self.path) if self.path.is_file() else {}
        self.sittings: list[dict] = list(saved.get("sittings", []))
        self.metrics: dict = dict(saved.get("metrics", {}))
        self.done = bool(saved.get("done"))
        self.started = time.perf_counter()
        self.sittings.append({"wall_s": 0.0, "peak_rss_bytes": 0, "pid": os.getpid(), "code": code_version(),
                              "measured": "in the caller's process (its peak so far)" if in_process
                              else "own process: getrusage(RUSAGE_SELF).ru_maxrss"})

    def update(self, **metrics: Any) -> None:
        """Save the current sitting's wall time, CPU time and peak RSS (and any metrics) atomically.

        The CPU time (user plus system, this process) tells how much of the wall time the stage
        actually ran when other work shares the cores; the 1-minute load average is sampled at
        each update.
        """
        usage = resource.getrusage(resource.RUSAGE_SELF)
        sitting = self.sittings[-1]
        sitting["wall_s"] = round(time.perf_counter() - self.started, 2)
        sitting["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
        sitting["peak_rss_bytes"] = peak_rss_bytes()
        if hasattr(os, "getloadavg"):
            sitting.setdefault("load_average", []).append(round(os.getloadavg()[0], 2))
        self.metrics.update(metrics)
        self._write()

    def finish(self, **metrics: Any) -> None:
        """Mark the stage done."""
        self.done = True
        self.update(**metrics)

    def _write(self) -> None:
        write_json_atomic(self.path, {"stage": self.stage, "done": self.done, "wall_s": self.wall_s,
                                      "cpu_s": self.cpu_s, "peak_rss_bytes": self.peak_rss_bytes,
                                      "sittings": self.sittings, "metrics": self.metrics})

    @property
    def wall_s(self) -> float:
        """Seconds over every sitting (work lost after a sitting's last checkpoint is not counted)."""
        return round(sum(s["wall_s"] for s in self.sittings), 2)

    @property
    def cpu_s(self) -> float | None:
        """CPU seconds over the sittings (None if a sitting predates CPU timing)."""
        if any("cpu_s" not in s for s in self.sittings):
            return None
        return round(sum(s["cpu_s"] for s in self.sittings), 2)

    @property
    def peak_rss_bytes(self) -> int:
        """Largest peak RSS of any sitting."""
        return max((int(s["peak_rss_bytes"]) for s in self.sittings), default=0)


def read_stage(paths: ScalePaths, stage: str) -> dict | None:
    """The saved state of a stage, or None."""
    path = paths.stage_file(stage)
    return read_json(path) if path.is_file() else None


class Timers:
    """Seconds spent per named part of a stage (what bounds it)."""

    def __init__(self, saved: dict | None = None) -> None:
        self.seconds: dict[str, float] = dict(saved or {})

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def wrap(self, name: str, fn: Callable) -> Callable:
        """``fn`` timed under ``name``."""
        def timed(*args, **kwargs):
            with self(name):
                return fn(*args, **kwargs)
        return timed

    def as_dict(self) -> dict[str, float]:
        """Rounded seconds."""
        return {k: round(v, 2) for k, v in self.seconds.items()}


def _bar(total: int, desc: str, initial: int = 0, unit: str = "it", progress: bool = True) -> tqdm:
    """A progress bar with an ETA; refreshes rarely when stderr is a log file."""
    interval = 0.5 if sys.stderr.isatty() else 20.0
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not progress, mininterval=interval,
                dynamic_ncols=True, smoothing=0.05)


def _save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load(path: Path) -> Any:
    return torch.load(path, map_location="cpu", mmap=True, weights_only=True)


# --------------------------------------------------------------------------- configs

def _device(options: ScaleOptions) -> torch.device:
    from samlp_lite.runtime import pick_device

    return pick_device(options.device)


def _resolve(options: ScaleOptions, model: str, **overrides: Any):
    from samlp_lite.config import resolve_config

    return resolve_config(options.graph, model, {"seed": options.seed, "device": "cpu", **overrides})


def teacher_config(options: ScaleOptions):
    """The resolved config of the GraphSAGE teacher (two layers, mini-batches)."""
    return _resolve(options, "sage", hidden=options.teacher_hidden, num_layers=2, fanouts=list(options.fanouts),
                    batch_size=options.teacher_batch_size, lr=options.teacher_lr, max_epochs=options.teacher_epochs,
                    sparse_features="false")


def student_config(options: ScaleOptions, student: str):
    """The resolved config of a student (``glnn`` or ``sa-mlp``)."""
    return _resolve(options, student, hidden=options.student_hidden, batch_size=options.student_batch_size,
                    lr=options.student_lr, max_epochs=options.student_epochs, sparse_features="false",
                    dropout=options.student_dropout, adj_norm=options.adj_norm, self_loop=False)


# --------------------------------------------------------------------------- the stored graph

def open_graph(paths: ScalePaths):
    """The stored graph of a run."""
    from samlp_lite.data.products import DiskGraph

    return DiskGraph.open(paths.graph)


def store_from_disk(graph, *, adj_norm: str = "none", device: str | torch.device = "cpu"):
    """The serving :class:`~samlp_lite.serve.store.GraphStore` of a stored graph (float32 features, int64 CSR)."""
    from samlp_lite.serve.store import GraphStore

    return GraphStore.from_csr(graph.name, graph.rowptr_tensor(), graph.col_tensor(torch.int64),
                               graph.dense_features(), adj_norm=adj_norm, device=device)


def stage_graph(options: ScaleOptions, paths: ScalePaths, log: StageLog, progress: bool) -> dict:
    """Store the graph (synthetic twin or registry dataset); metrics describe it."""
    from samlp_lite.data.products import DiskGraph, make_products_like, stored_bytes, write_graph

    wanted = options.graph_options()
    existing = None
    if (paths.graph / "meta.json").is_file():
        existing = DiskGraph.open(paths.graph)
        if existing.meta.get("scale_options") != wanted:
            existing = None
    if existing is None:
        if options.synthetic:
            graph = make_products_like(paths.graph, name=options.graph, num_nodes=options.num_nodes,
                                       homophily=options.homophily, partner=options.partner,
                                       degree_exponent=options.degree_exponent,
                                       feature_signal=options.feature_signal, seed=options.seed, progress=progress)
        else:
            from samlp_lite.data import load_dataset

            data = load_dataset(options.graph, progress=progress)
            graph = write_graph(paths.graph, data, progress=progress)
            del data
        meta = dict(graph.meta, scale_options=wanted)
        write_json_atomic(paths.graph / "meta.json", meta)
        existing = DiskGraph.open(paths.graph)
    meta = existing.meta
    return {"num_nodes": existing.num_nodes, "num_edges": existing.num_edges,
            "num_edge_entries": existing.num_entries, "num_features": existing.num_features,
            "num_classes": existing.num_classes, "degree": meta.get("degree"),
            "edge_homophily": meta.get("edge_homophily"), "description": meta.get("description"),
            "stored_bytes": stored_bytes(existing), "split": {p: int(getattr(existing, p).shape[0])
                                                              for p in ("train", "val", "test")}}


# --------------------------------------------------------------------------- the teacher

def sage_forward_trimmed(teacher, x: Tensor, sub, training: bool) -> Tensor:
    """A GraphSAGE teacher on a gathered neighbourhood, each layer only for the nodes the next needs.

    ``sub`` is a :class:`~samlp_lite.serve.store.Subgraph` (nodes and edges grouped by hop); the
    result is ``[B, C]`` for its targets. Equal to ``teacher(x, sub.edge_index)[:B]`` (PyG's
    ``BasicGNN`` forward, dropout included) but without computing hidden rows nobody reads.
    """
    from samlp_lite.data.features import feature_dropout
    from samlp_lite.data.sampling import between_layers

    gnn = teacher.gnn
    x = feature_dropout(x, teacher.input_dropout, training)
    edge_index = sub.edge_index
    for layer in range(gnn.num_layers):
        hops = gnn.num_layers - layer
        num_dst, num_edges = sum(sub.nodes_per_hop[:hops]), sum(sub.edges_per_hop[:hops])
        out = gnn.convs[layer]((x, x[:num_dst]), edge_index[:, :num_edges], size=(x.size(0), num_dst))
        x = between_layers(gnn, layer, out)
        if layer < gnn.num_layers - 1:
            x = gnn.dropout(x) if isinstance(gnn.dropout, torch.nn.Module) else F.dropout(x, gnn.dropout, training)
    return x


def _sampled_accuracy(teacher, graph, gatherer, nodes: Tensor, fanouts: list[int], batch_size: int,
                      seed: int, device: torch.device = torch.device("cpu")) -> float:
    teacher.eval()
    generator = torch.Generator().manual_seed(seed)
    correct = 0
    with torch.no_grad():
        for start in range(0, nodes.numel(), batch_size):
            seeds = nodes[start:start + batch_size]
            sub = _to_device(gatherer(seeds, fanouts, generator), device)
            out = sage_forward_trimmed(teacher, graph.features(sub.n_id).to(device), sub, training=False)
            correct += int((out.argmax(-1).cpu() == graph.labels(seeds)).sum())
    return correct / max(nodes.numel(), 1)


def _to_device(sub, device: torch.device):
    if device.type == "cpu":
        return sub
    return dataclasses.replace(sub, edge_index=sub.edge_index.to(device))


def stage_teacher(options: ScaleOptions, paths: ScalePaths, log: StageLog, progress: bool) -> dict:
    """GraphSAGE on sampled mini-batches of the training nodes; per-epoch checkpoints; best epoch on validation."""
    from samlp_lite.data.sampling import InNeighbors
    from samlp_lite.models.teachers import build_teacher
    from samlp_lite.runtime import seed_everything
    from samlp_lite.serve.store import NeighborhoodGatherer

    graph = open_graph(paths)
    config = teacher_config(options)
    seed_everything(options.seed)
    device = _device(options)
    teacher = build_teacher("sage", graph.num_features, graph.num_classes, config).to(device)
    optimizer = torch.optim.Adam(teacher.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    folder = paths.stage_dir("teacher")
    state = {"epoch": 0, "best_val": -1.0, "best_epoch": 0, "history": [], "timers": {}}
    if (folder / "checkpoint.pt").is_file():
        saved = _load(folder / "checkpoint.pt")
        teacher.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = json.loads((folder / "checkpoint.json").read_text())
    timers = Timers(state["timers"])
    with timers("load graph"):
        gatherer = NeighborhoodGatherer(InNeighbors(graph.rowptr_tensor(), graph.col_tensor(torch.int64),
                                                    graph.num_nodes))
    train, val = graph.split("train"), graph.split("val")
    fanouts, batch_size = list(options.fanouts), options.teacher_batch_size
    per_epoch = math.ceil(train.numel() / batch_size)
    bar = _bar(options.teacher_epochs * per_epoch, "teacher (sage): batches", state["epoch"] * per_epoch,
               progress=progress)
    for epoch in range(state["epoch"] + 1, options.teacher_epochs + 1):
        teacher.train()
        generator = torch.Generator().manual_seed(options.seed * 100003 + epoch)
        order = train[torch.randperm(train.numel(), generator=generator)]
        total, seen = 0.0, 0
        for start in range(0, order.numel(), batch_size):
            seeds = order[start:start + batch_size]
            with timers("sample"):
                sub = _to_device(gatherer(seeds, fanouts, generator), device)
            with timers("gather features"):
                x = graph.features(sub.n_id).to(device)
                y = graph.labels(seeds).to(device)
            with timers("forward+backward+step"):
                optimizer.zero_grad()
                loss = F.cross_entropy(sage_forward_trimmed(teacher, x, sub, training=True), y)
                loss.backward()
                optimizer.step()
            total, seen = total + loss.item() * seeds.numel(), seen + seeds.numel()
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{total / seen:.3f}", refresh=False)
        with timers("validate (sampled)"):
            val_acc = _sampled_accuracy(teacher, graph, gatherer, val, fanouts, 4 * batch_size, options.seed, device)
        state["history"].append({"epoch": epoch, "loss": round(total / max(seen, 1), 5), "val_acc_sampled": val_acc})
        if val_acc > state["best_val"]:
            state["best_val"], state["best_epoch"] = val_acc, epoch
            _save_atomic(teacher.state_dict(), folder / "best.pt")
        state["epoch"], state["timers"] = epoch, timers.as_dict()
        _save_atomic({"model": teacher.state_dict(), "optimizer": optimizer.state_dict()}, folder / "checkpoint.pt")
        write_json_atomic(folder / "checkpoint.json", state)
        log.update(epochs_done=epoch)
        tqdm.write(f"teacher epoch {epoch}: loss {total / max(seen, 1):.4f}, validation accuracy "
                   f"(sampled {fanouts}) {val_acc:.4f}", file=sys.stderr)
    bar.close()
    return {"epochs": options.teacher_epochs, "best_epoch": state["best_epoch"],
            "val_acc_sampled": state["best_val"], "history": state["history"], "fanouts": fanouts,
            "batch_size": batch_size, "batches_per_epoch": per_epoch, "hidden": config.hidden,
            "num_params": sum(p.numel() for p in teacher.parameters()), "timers": timers.as_dict(),
            "config": {k: getattr(config, k) for k in ("hidden", "num_layers", "dropout", "lr", "weight_decay")}}


# --------------------------------------------------------------------------- soft labels

@torch.no_grad()
def sage_layerwise(teacher, graph, chunk_size: int = 65536, *, bar: tqdm | None = None,
                   timers: Timers | None = None, device: torch.device | str = "cpu") -> Tensor:
    """Full-neighbour logits ``[N, C]`` of a GraphSAGE teacher for every node, one layer at a time.

    Each layer runs over chunks of target rows: ``lin_l(mean_j h_j) + lin_r(h_i)`` with the mean
    over every in-neighbour of the CSR row, computed as ``embedding_bag(mode="mean")`` (no
    edge list is materialised, no N x N matrix). A layer that narrows (``in > out``) projects
    first, so the mean moves ``out`` instead of ``in`` columns. Memory: the current layer's
    input and output, ``N x max(width)`` floats each, plus the CSR (on ``device``; the result
    is returned on the CPU).

    Equal to the teacher's full-graph forward in eval mode (a test asserts it on a small graph).
    """
    from samlp_lite.data.sampling import between_layers

    timers = timers or Timers()
    device = torch.device(device)
    teacher.eval()
    gnn = teacher.gnn
    rowptr, col = graph.rowptr_tensor(), graph.col_tensor(torch.int32)
    num_nodes = graph.num_nodes
    with timers("load features"):
        h = graph.dense_features().to(device)
    for layer in range(gnn.num_layers):
        conv = gnn.convs[layer]
        if str(conv.aggr) != "mean" or not conv.root_weight or conv.project:
            raise NotImplementedError("sage_layerwise supports PyG's default SAGEConv (mean, root weight)")
        project_first = conv.in_channels > conv.out_channels
        with timers("dense matmul"):
            source = _chunked_linear(h, conv.lin_l.weight, chunk_size) if project_first else h
        out = torch.empty(num_nodes, conv.out_channels, device=device)
        for start in range(0, num_nodes, chunk_size):
            stop = min(start + chunk_size, num_nodes)
            lo, hi = int(rowptr[start]), int(rowptr[stop])
            with timers("neighbour mean (embedding_bag)"):
                mean = F.embedding_bag(col[lo:hi].to(device, torch.int64), source,
                                       (rowptr[start:stop] - lo).to(device), mode="mean")
            with timers("dense matmul"):
                if not project_first:
                    mean = F.linear(mean, conv.lin_l.weight)
                value = mean + conv.lin_r(h[start:stop])
                if conv.lin_l.bias is not None:
                    value = value + conv.lin_l.bias
                if conv.normalize:
                    value = F.normalize(value, p=2.0, dim=-1)
                out[start:stop] = between_layers(gnn, layer, value)
            if bar is not None:
                bar.update(1)
        del source
        h = out
    return h.cpu()


def _chunked_linear(x: Tensor, weight: Tensor, chunk: int) -> Tensor:
    out = torch.empty(x.size(0), weight.size(0), device=x.device)
    for start in range(0, x.size(0), chunk):
        out[start:start + chunk] = F.linear(x[start:start + chunk], weight)
    return out


def _accuracies(logits: Tensor, graph) -> dict[str, float]:
    out = {}
    for part in ("train", "val", "test"):
        nodes = graph.split(part)
        out[f"{part}_acc"] = float((logits[nodes].argmax(-1) == graph.labels(nodes)).float().mean())
    return out


def stage_soft_labels(options: ScaleOptions, paths: ScalePaths, log: StageLog, progress: bool) -> dict:
    """Layer-wise full-neighbour inference of the best teacher; float16 logits for every node on disk."""
    from samlp_lite.models.teachers import build_teacher

    graph = open_graph(paths)
    device = _device(options)
    teacher = build_teacher("sage", graph.num_features, graph.num_classes, teacher_config(options))
    teacher.load_state_dict(_load(paths.stage_dir("teacher") / "best.pt"))
    teacher = teacher.to(device)
    timers = Timers()
    chunks = math.ceil(graph.num_nodes / options.inference_chunk)
    bar = _bar(teacher.gnn.num_layers * chunks, "soft labels: layer-wise chunks", progress=progress)
    logits = sage_layerwise(teacher, graph, options.inference_chunk, bar=bar, timers=timers, device=device)
    bar.close()
    metrics = _accuracies(logits, graph)
    with timers("write float16"):
        path = paths.soft_labels
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name("logits.tmp.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=tuple(logits.shape))
        for start in range(0, logits.size(0), 1 << 20):
            out[start:start + (1 << 20)] = logits[start:start + (1 << 20)].numpy().astype(np.float16)
        out.flush()
        del out
        os.replace(tmp, path)
    half = torch.from_numpy(np.load(path, mmap_mode="r")[: min(200_000, graph.num_nodes)].astype(np.float32))
    agree = float((half.argmax(-1) == logits[: half.size(0)].argmax(-1)).float().mean())
    rowptr = graph.rowptr_tensor()
    return {**metrics, "timers": timers.as_dict(), "float16_argmax_agreement": agree,
            "logits_bytes": int(graph.num_nodes * graph.num_classes * 2),
            "edge_entries_read_per_layer": int(rowptr[-1]),
            "widths": [[c.in_channels, c.out_channels] for c in teacher.gnn.convs]}


# --------------------------------------------------------------------------- students

def lean_source(graph, soft_labels: np.ndarray | None, structure: bool, timers: Timers | None = None,
                adj_norm: str = "none"):
    """:class:`~samlp_lite.train.distill.LeanBatches` reading the stored graph and soft labels per batch.

    ``adj_norm`` weights the adjacency rows as :class:`~samlp_lite.data.adjacency.AdjacencyRows`
    does (``none``: 0/1, no weights passed; ``row``: ``1 / deg_i``; ``sym``: ``1 / sqrt(deg_i deg_j)``),
    computed per batch from the degrees, so no weight array of the edge count is stored.
    """
    from samlp_lite.data.adjacency import AdjacencyBatch, gather_csr_rows
    from samlp_lite.train.distill import LeanBatches

    timers = timers or Timers()
    is_train = torch.zeros(graph.num_nodes, dtype=torch.bool)
    is_train[graph.split("train")] = True
    rowptr, col = graph.rowptr_tensor(), graph.col_tensor(torch.int32)
    degree = (rowptr[1:] - rowptr[:-1]).float().clamp_(min=1.0)

    def rows(nodes: Tensor) -> AdjacencyBatch:
        positions, offsets = gather_csr_rows(rowptr, nodes)
        indices = col.index_select(0, positions).long()
        if adj_norm == "none":
            return AdjacencyBatch(indices, offsets, None)
        counts = rowptr.index_select(0, nodes + 1) - rowptr.index_select(0, nodes)
        weight = degree.index_select(0, nodes).repeat_interleave(counts, output_size=indices.numel())
        weight = weight.reciprocal_() if adj_norm == "row" else (weight * degree.index_select(0, indices)).rsqrt_()
        return AdjacencyBatch(indices, offsets, weight)

    def teacher_logits(nodes: Tensor) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(soft_labels[nodes.numpy()])).float()

    return LeanBatches(features=timers.wrap("gather features", graph.features), labels=graph.labels(),
                       is_train=is_train, adjacency=timers.wrap("gather adjacency rows", rows) if structure else None,
                       teacher_logits=timers.wrap("read soft labels", teacher_logits) if soft_labels is not None else None)


class _TimedOptimizer:
    def __init__(self, optimizer, timers: Timers) -> None:
        self.optimizer, self.timers = optimizer, timers

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        with self.timers("optimizer step"):
            self.optimizer.step()


def stage_student(student: str, options: ScaleOptions, paths: ScalePaths, log: StageLog, progress: bool) -> dict:
    """A student on mini-batches over every node; per-epoch checkpoints; best epoch on validation."""
    from samlp_lite.models.registry import make_student
    from samlp_lite.runtime import seed_everything
    from samlp_lite.train.distill import lean_epoch, lean_predict, make_optimizer

    graph = open_graph(paths)
    config = student_config(options, student)
    seed_everything(options.seed)
    device = _device(options)
    model = make_student(student, graph.num_features, graph.num_classes, graph.num_nodes, config).to(device)
    structure = student == "sa-mlp"
    if structure:
        model.use_sparse_gradients(True)
    optimizer = make_optimizer(model, config.lr, config.weight_decay, sparse_lr=options.sparse_lr)
    folder = paths.stage_dir(student)
    state = {"epoch": 0, "best_val": -1.0, "best_epoch": 0, "history": [], "timers": {}}
    if (folder / "checkpoint.pt").is_file():
        saved = _load(folder / "checkpoint.pt")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        del saved
        state = json.loads((folder / "checkpoint.json").read_text())
    timers = Timers(state["timers"])
    soft = np.load(paths.soft_labels, mmap_mode="r")
    source = lean_source(graph, soft, structure, timers, adj_norm=config.adj_norm)
    nodes = torch.arange(graph.num_nodes)
    val, test = graph.split("val"), graph.split("test")
    batch_size = options.student_batch_size
    per_epoch = math.ceil(nodes.numel() / batch_size)
    bar = _bar(options.student_epochs * per_epoch, f"student ({student}): batches", state["epoch"] * per_epoch,
               progress=progress)
    timed = _TimedOptimizer(optimizer, timers)
    rows_touched: list[int] = []
    if structure:  # what a sparse step touches: distinct neighbour rows of a batch (first 20 batches)
        probe = nodes[torch.randperm(nodes.numel(), generator=torch.Generator().manual_seed(1))]
        for start in range(0, min(20 * batch_size, nodes.numel()), batch_size):
            rows_touched.append(int(torch.unique(source.adjacency(probe[start:start + batch_size]).indices).numel()))
    for epoch in range(state["epoch"] + 1, options.student_epochs + 1):
        running = {"loss": 0.0, "n": 0}

        def on_batch(count: int, loss: float, epoch: int = epoch) -> None:
            running["loss"] += loss * count
            running["n"] += count
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{running['loss'] / running['n']:.4f}", refresh=False)

        with timers("epoch total"):
            loss = lean_epoch(student, model, timed, source, nodes, config, epoch=epoch, batch_size=batch_size,
                              on_batch=on_batch, device=device)
        with timers("validate"):
            val_acc = float((lean_predict(model, source, val, options.inference_chunk, device).argmax(-1)
                             == graph.labels(val)).float().mean())
        state["history"].append({"epoch": epoch, "loss": round(loss, 5), "val_acc": val_acc})
        if val_acc > state["best_val"]:
            state["best_val"], state["best_epoch"] = val_acc, epoch
            with timers("checkpoint"):
                _save_atomic(model.state_dict(), folder / "best.pt")
        state["epoch"], state["timers"] = epoch, timers.as_dict()
        with timers("checkpoint"):
            _save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, folder / "checkpoint.pt")
        write_json_atomic(folder / "checkpoint.json", state)
        log.update(epochs_done=epoch)
        tqdm.write(f"{student} epoch {epoch}: loss {loss:.4f}, validation accuracy {val_acc:.4f}", file=sys.stderr)
    bar.close()
    model.load_state_dict(_load(folder / "best.pt"))
    test_bar = _bar(test.numel(), f"student ({student}): test predictions", unit="node", progress=progress)
    with timers("test predictions"):
        logits = lean_predict(model, source, test, options.inference_chunk, device, on_chunk=test_bar.update)
    test_bar.close()
    test_acc = float((logits.argmax(-1) == graph.labels(test)).float().mean())
    teacher_logits = torch.from_numpy(np.asarray(soft[test.numpy()], dtype=np.float32))
    fidelity = float((logits.argmax(-1) == teacher_logits.argmax(-1)).float().mean())
    num_params = sum(p.numel() for p in model.parameters())
    table = model.structure_encoder.weight.numel() if structure else 0
    out = {"test_acc": test_acc, "val_acc": state["best_val"], "best_epoch": state["best_epoch"],
           "epochs": options.student_epochs, "history": state["history"], "batch_size": batch_size,
           "batches_per_epoch": per_epoch, "num_params": num_params, "teacher_agreement_test": fidelity,
           "optimizer": repr(optimizer), "timers": timers.as_dict(),
           "config": {k: getattr(config, k) for k in ("hidden", "dropout", "lr", "weight_decay", "lam", "tau", "beta")}}
    if structure:
        out.update({"structure_table_bytes": table * 4, "optimizer_state_bytes": 2 * table * 4,
                    "rows_touched_per_step": int(np.mean(rows_touched)) if rows_touched else 0,
                    "rows_touched_share": float(np.mean(rows_touched) / graph.num_nodes) if rows_touched else 0.0})
    return out


# --------------------------------------------------------------------------- serving

def stage_serve(options: ScaleOptions, paths: ScalePaths, log: StageLog, progress: bool) -> dict:
    """Serving latency on the stored graph: SAGE (full, sampled), MLP, SA-MLP, the structure lookup."""
    from samlp_lite.serve.bench import BenchOptions, bench_store
    from samlp_lite.serve.measure import TimingPolicy

    graph = open_graph(paths)
    started = time.perf_counter()
    device = _device(options)
    store = store_from_disk(graph, adj_norm=options.adj_norm, device=device)
    models = ("sage", "mlp", "sa-mlp", "structure-lookup")
    student = {"hidden": options.student_hidden, "adj_norm": options.adj_norm, "self_loop": False}
    bench = BenchOptions(models=models, batch_sizes=list(options.serve_batch_sizes),
                         policy=TimingPolicy(warmup=2, repeats=options.serve_repeats, min_repeats=3,
                                             budget_s=options.serve_budget_s),
                         device=str(device), seed=options.seed, profile_batch_size=None,
                         model_overrides={"sage": {"hidden": options.teacher_hidden, "num_layers": 2,
                                                   "fanouts": list(options.fanouts)},
                                          "mlp": student, "sa-mlp": student, "structure-lookup": student})
    cells = sum(2 if m == "sage" else 1 for m in models) * len(options.serve_batch_sizes)
    bar = _bar(cells, "serve: latency cells", progress=progress)
    body = bench_store(store, graph.num_classes, bench, progress=lambda label: (bar.update(1), bar.set_postfix_str(label)),
                       synthetic=options.synthetic, started=started)
    bar.close()
    return {"latency": body}


STAGE_FUNCTIONS: dict[str, Callable] = {
    "graph": stage_graph, "teacher": stage_teacher, "soft-labels": stage_soft_labels,
    "glnn": lambda *a: stage_student("glnn", *a), "sa-mlp": lambda *a: stage_student("sa-mlp", *a),
    "serve": stage_serve,
}


# --------------------------------------------------------------------------- running

def run_stage_here(stage: str, options: ScaleOptions, paths: ScalePaths, *, progress: bool = True,
                   in_process: bool = False) -> dict:
    """Run one stage in this process (what the stage's own process does); returns its saved state."""
    log = StageLog(paths, stage, in_process=in_process)
    log.update()
    metrics = STAGE_FUNCTIONS[stage](options, paths, log, progress)
    log.finish(**metrics)
    return read_stage(paths, stage)


def stages_to_redo(old: dict[str, Any], options: "ScaleOptions") -> tuple[list[str], list[str]]:
    """The stages a change of options from ``old`` (a saved :meth:`ScaleOptions.to_dict`) invalidates.

    A stage is redone when an option it depends on (:data:`STAGE_OPTIONS`, the graph's options for
    every stage) changed, and so is every stage that reads its outputs (:data:`STAGE_INPUTS`).

    Returns:
        The stages to redo (in pipeline order) and the changed option names.
    """
    new = options.to_dict()
    changed = sorted(k for k in new if k != "device" and old.get(k) != new[k])
    graph_keys = set(options.graph_options())
    redo: list[str] = []
    for stage in STAGES:  # inputs come earlier in STAGES, so one pass in order closes the list
        if (any(k in graph_keys or k in STAGE_OPTIONS.get(stage, ()) for k in changed)
                or any(i in redo for i in STAGE_INPUTS.get(stage, ()))):
            redo.append(stage)
    return redo, changed


def prepare_workdir(options: ScaleOptions, workdir: str | Path | None = None, *, fresh: bool = False,
                    echo: Callable[[str], None] = lambda text: print(text, file=sys.stderr)) -> ScalePaths:
    """Create (or check) the work folder; with ``fresh`` forget the run (the stored graph is kept if it matches).

    If the folder holds a run with other options, the stages those options touch (and the stages
    reading their outputs, :func:`stages_to_redo`) are forgotten, checkpoints included; the others resume.
    """
    paths = ScalePaths(Path(workdir) if workdir is not None else default_workdir(options.graph))
    paths.run.mkdir(parents=True, exist_ok=True)
    saved = paths.run / "options.json"
    if saved.is_file() and not fresh:
        redo, changed = stages_to_redo(read_json(saved), options)
        done = [stage for stage in redo if paths.stage_file(stage).is_file() or paths.stage_dir(stage).exists()]
        if done:
            echo(f"scale: options changed ({', '.join(changed)}): re-running {', '.join(redo)}")
        for stage in redo:
            paths.stage_file(stage).unlink(missing_ok=True)
            if stage != "graph" and paths.stage_dir(stage).exists():
                shutil.rmtree(paths.stage_dir(stage))
    if fresh and paths.run.exists():
        shutil.rmtree(paths.run)
        paths.run.mkdir(parents=True)
    write_json_atomic(saved, options.to_dict())
    return paths


def run_scale(options: ScaleOptions, *, workdir: str | Path | None = None, record: str | Path | None = None,
              stages: list[str] | None = None, fresh: bool = False, in_process: bool = False,
              progress: bool = True, command: str | None = None,
              echo: Callable[[str], None] = lambda text: print(text, file=sys.stderr)) -> dict | None:
    """Run (or resume) the stages not done yet, each in its own process; write the record when all are done.

    Args:
        options: what to run.
        workdir: the work folder (default :func:`default_workdir`).
        record: the record path (default :func:`default_record`).
        stages: run only these (the others must be done already, or come later).
        fresh: forget a previous run in the work folder first.
        in_process: run the stages in this process (tests; peak RSS is then this process's).
        progress: progress bars.
        command: the command line recorded in the provenance.

    Returns:
        The record once every stage is done, else None.
    """
    paths = prepare_workdir(options, workdir, fresh=fresh, echo=echo)
    record = Path(record) if record is not None else default_record(options.graph)
    selected = list(stages) if stages else list(STAGES)
    unknown = [s for s in selected if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {list(STAGES)}")
    for stage in STAGES:
        if stage not in selected:
            continue
        state = read_stage(paths, stage)
        if state and state.get("done"):
            echo(f"scale: {stage} done already ({state['wall_s']:.0f} s, peak RSS "
                 f"{state['peak_rss_bytes'] / 2**30:.2f} GiB)")
            continue
        missing = [s for s in STAGES[:STAGES.index(stage)] if not (read_stage(paths, s) or {}).get("done")]
        if missing:
            raise ValueError(f"stage {stage} needs {missing} first")
        echo(f"scale: running {stage} ({'in this process' if in_process else 'own process'})")
        if in_process:
            run_stage_here(stage, options, paths, progress=progress, in_process=True)
        else:
            env = dict(os.environ)
            result = subprocess.run([sys.executable, "-m", "samlp_lite.runs.scale_local", "--workdir", str(paths.workdir),
                                     "--stage", stage] + ([] if progress else ["--quiet"]), env=env)
            if result.returncode != 0:
                raise RuntimeError(f"stage {stage} failed (exit {result.returncode}); fix the cause and re-run "
                                   "the same command to resume")
        state = read_stage(paths, stage)
        echo(f"scale: {stage} finished in {state['wall_s']:.0f} s, peak RSS {state['peak_rss_bytes'] / 2**30:.2f} GiB")
    states = {stage: read_stage(paths, stage) for stage in STAGES}
    if not all(s and s.get("done") for s in states.values()):
        return None
    body = build_record(options, states, command=command)
    write_json_atomic(record, body)
    echo(f"scale: wrote {record}")
    return body


BOUNDS = {
    "graph": "sorting the edge keys and random writes of the CSR (memory bandwidth and latency); "
             "peak: the edge keys (2 E int64) while sorting",
    "teacher": "the sampler's per-row shuffles over every in-edge of the frontier (memory latency: hubs' long "
               "rows) and scattered feature-row reads; the dense SAGE layers are small",
    "soft-labels": "the neighbour mean reads every CSR entry once per layer, a random row of the layer's input "
                   "each (memory latency and bandwidth); peak: the layer's input and output, N x width floats",
    "glnn": "dense matmuls on feature rows (flops) and the float16 feature/soft-label reads (bytes)",
    "sa-mlp": "the embedding-bag over the batch's neighbour rows, forward and sparse backward, and the sparse Adam's "
              "scattered row updates (memory latency); peak: W_A and its two Adam moments, 3 N h floats",
    "serve": "SAGE(full): the two-hop gather (memory latency); students: one feature row plus one table row "
             "per neighbour; peak: the stored graph as float32 features and int64 CSR",
}
"""What bounds each stage, as measured (see each stage's ``timers``) and written in the record."""


def _distinct(items) -> list:
    """``items`` without repeats, in first-seen order."""
    out: list = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def build_record(options: ScaleOptions, states: dict[str, dict], *, command: str | None = None) -> dict:
    """The ``scale`` record from the stages' saved states."""
    graph_metrics = states["graph"]["metrics"]
    stages = []
    for stage in STAGES:
        state = states[stage]
        metrics = state["metrics"]
        loads = [x for sitting in state["sittings"] for x in sitting.get("load_average", [])]
        stages.append({"stage": stage, "wall_s": state["wall_s"], "peak_rss_bytes": state["peak_rss_bytes"],
                       "cpu_s": state.get("cpu_s"),
                       "code": _distinct(sitting.get("code") for sitting in state["sittings"]),
                       "load_average": round(sum(loads) / len(loads), 2) if loads else None,
                       "sittings": len(state["sittings"]), "bound": BOUNDS[stage],
                       "timers": metrics.get("timers", {})})
    accuracy = {"sage": states["soft-labels"]["metrics"]["test_acc"],
                "glnn": states["glnn"]["metrics"]["test_acc"], "sa-mlp": states["sa-mlp"]["metrics"]["test_acc"]}
    latency = states["serve"]["metrics"]["latency"]
    total = sum(s["wall_s"] for s in stages)
    peak = max(s["peak_rss_bytes"] for s in stages)
    return {
        "kind": "scale", "graph": options.graph, "num_nodes": graph_metrics["num_nodes"],
        "num_edges": graph_metrics["num_edges"], "num_edge_entries": graph_metrics["num_edge_entries"],
        "num_features": graph_metrics["num_features"], "num_classes": graph_metrics["num_classes"],
        "processes": 1,
        "provenance": provenance(wall_s=total, device=str(_device(options)), command=command,
                                 stage_processes="one process per stage, run one after another"),
        "stages": stages,
        "accuracy": accuracy,
        "accuracy_split": "test nodes; sage = the full-neighbour (layer-wise) soft labels the students learn from",
        "sa_mlp_minus_sage_points": round(100 * (accuracy["sa-mlp"] - accuracy["sage"]), 2),
        "memory": {"limit_bytes": RSS_LIMIT_BYTES, "peak_rss_bytes": peak, "within_limit": peak <= RSS_LIMIT_BYTES},
        "graph_stats": {k: graph_metrics.get(k) for k in ("degree", "edge_homophily", "split", "stored_bytes",
                                                          "description")},
        "details": {stage: {k: v for k, v in states[stage]["metrics"].items() if k not in ("timers", "latency")}
                    for stage in STAGES if stage != "graph"},
        "serving": {k: latency[k] for k in ("rows", "summary", "floor", "models", "skipped", "timing",
                                            "memory_method", "threads", "device", "avg_degree") if k in latency},
        "options": options.to_dict(),
    }


def format_table(record: dict) -> str:
    """The stage table of a record, as markdown."""
    lines = ["| stage | wall time | peak RSS |", "|---|---|---|"]
    for stage in record["stages"]:
        lines.append(f"| {stage['stage']} | {stage['wall_s'] / 60:.1f} min | {stage['peak_rss_bytes'] / 2**30:.2f} GiB |")
    accuracy = ", ".join(f"{k} {100 * v:.2f}" for k, v in record["accuracy"].items())
    return "\n".join(lines) + f"\n\ntest accuracy (%): {accuracy}"


def stage_table(record: dict):
    """The stages of a scale record as a pandas DataFrame: wall time, peak RSS, share of the budget, bound."""
    import pandas as pd

    rows = [{"stage": s["stage"], "wall (min)": s["wall_s"] / 60,
             "CPU (min)": s["cpu_s"] / 60 if s.get("cpu_s") is not None else float("nan"),
             "peak RSS (GiB)": s["peak_rss_bytes"] / 2**30,
             "of 12 GB": s["peak_rss_bytes"] / RSS_LIMIT_BYTES, "sittings": s.get("sittings", 1),
             "what bounds it": s.get("bound", "")} for s in record["stages"]]
    return pd.DataFrame(rows).set_index("stage")


BASELINE_RSS_BYTES = 400 * 2**20
"""About what a stage's process holds before any data (Python, PyTorch): kept when scaling peaks down."""
CPU_SIDE_PARTS = {
    "teacher": ("sample", "gather features", "load graph"),
    "soft-labels": ("load features", "write float16"),
    "glnn": ("gather features", "read soft labels", "checkpoint"),
    "sa-mlp": ("gather adjacency rows", "gather features", "read soft labels", "checkpoint"),
}
"""The timed parts of a stage that stay on the CPU when its models run on a GPU (sampling, reads of the maps)."""


def colab_estimate(record: dict, graphs: tuple[str, ...] = ("ogbn-products", "ogbn-arxiv")):
    """Projected cost of each stage on Colab for real graphs, from a products-sized scale record.

    For each graph and stage: the CPU time (the record's one-core wall time, scaled by the
    size that bounds the stage: edge entries for ``graph``, ``soft-labels`` (times the feature
    width) and ``sa-mlp``, training nodes for ``teacher``, nodes times width for ``glnn``;
    ``serve`` is kept, its cells being time-budgeted), the lower bound on a T4 (the stage's
    CPU-side parts, :data:`CPU_SIDE_PARTS`, which a GPU does not speed up), the peak RAM (the
    record's peak, its part above :data:`BASELINE_RSS_BYTES` scaled like the time) and the GPU
    memory the models would need (SA-MLP: ``W_A`` and two moments; layer-wise inference: one
    layer's input and output; serving: the stored graph and the table). ogbn-products has the
    twin's sizes, so its rows are the record's own measurements.

    Returns:
        A pandas DataFrame indexed by (graph, stage).
    """
    import pandas as pd

    from samlp_lite.data.products import ARXIV, PRODUCTS

    sizes = {"ogbn-products": PRODUCTS, "ogbn-arxiv": ARXIV, record["graph"]: {
        "num_nodes": record["num_nodes"], "num_edges": record["num_edges"], "num_features": record["num_features"],
        "num_classes": record["num_classes"], "num_train": record["graph_stats"]["split"]["train"]}}
    base = sizes[record["graph"]]
    options = record["options"]
    rows = []
    for name in graphs:
        size = sizes[name]
        entries = size["num_edges"] / base["num_edges"]
        nodes = size["num_nodes"] / base["num_nodes"]
        width = size["num_features"] / base["num_features"]
        factor = {"graph": entries, "teacher": size["num_train"] / base["num_train"], "soft-labels": entries * width,
                  "glnn": nodes * width, "sa-mlp": entries, "serve": 1.0}
        n, d, c = size["num_nodes"], size["num_features"], size["num_classes"]
        gpu = {"graph": 0.0, "teacher": 0.1 * 2**30,
               "soft-labels": 4.0 * n * (d + options["teacher_hidden"] + 2 * c),
               "glnn": 0.1 * 2**30, "sa-mlp": 3 * 4.0 * n * options["student_hidden"],
               "serve": 4.0 * n * (d + options["student_hidden"]) + 8.0 * 2 * size["num_edges"]}
        for stage in record["stages"]:
            key = stage["stage"]
            cpu_side = sum(stage["timers"].get(part, 0.0) for part in CPU_SIDE_PARTS.get(key, ()))
            peak = BASELINE_RSS_BYTES + max(stage["peak_rss_bytes"] - BASELINE_RSS_BYTES, 0) * min(factor[key], 1.0) \
                if name != "ogbn-products" else stage["peak_rss_bytes"]
            rows.append({"graph": name, "stage": key, "CPU, one core (min)": stage["wall_s"] * factor[key] / 60,
                         "T4, lower bound (min)": (cpu_side * factor[key] / 60) if key in CPU_SIDE_PARTS else
                         float("nan"),
                         "peak RAM (GiB)": peak / 2**30, "GPU memory (GiB)": gpu[key] / 2**30})
    return pd.DataFrame(rows).set_index(["graph", "stage"])


def read_scale_record(path: str | Path) -> dict:
    """A ``scale`` record (raises ValueError for anything else)."""
    record = read_json(path)
    if not isinstance(record, dict) or record.get("kind") != "scale":
        raise ValueError(f"{path} is not a scale record")
    return record


def _main(argv: list[str] | None = None) -> int:
    """One stage in its own process: ``python -m samlp_lite.runs.scale_local --workdir W --stage S``."""
    parser = argparse.ArgumentParser(prog="python -m samlp_lite.runs.scale_local")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--stage", required=True, choices=STAGES)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    from samlp_lite.runtime import apply_threads

    apply_threads(1)
    paths = ScalePaths(Path(args.workdir))
    saved = read_json(paths.run / "options.json")
    options = ScaleOptions(**{**saved, "fanouts": tuple(saved["fanouts"]),
                              "serve_batch_sizes": tuple(saved["serve_batch_sizes"])})
    run_stage_here(args.stage, options, paths, progress=not args.quiet)
    return 0


__all__ = ["BOUNDS", "RSS_LIMIT_BYTES", "STAGES", "ScaleOptions", "ScalePaths", "build_record", "default_record",
           "colab_estimate", "default_workdir", "format_table", "stage_table", "lean_source", "peak_rss_bytes", "prepare_workdir", "read_scale_record",
           "run_scale", "run_stage_here", "sage_forward_trimmed", "sage_layerwise", "store_from_disk", "synthetic_size"]

if __name__ == "__main__":
    sys.exit(_main())
