"""Serving cost of GNN teachers and MLP-like students, measured end to end (METHOD.md 6, 8).

A *server* answers "logits for these target nodes" from the stored graph, a CSR adjacency
plus a feature matrix (:class:`GraphStore`). What is timed is everything a server does for one
batch: gathering the data its model needs, then the forward pass, under
``torch.inference_mode``.

- GNN teachers (``sage``, ``gcn``, ``gat`` from :func:`samlp_lite.teachers.build_teacher`):
  the k-hop in-neighbourhood of the targets, all neighbours (``gather="full"``) or up to
  ``fanouts`` per hop (``"sampled"``, the package sampler's semantics and draws), the
  features of every node in it, then PyG's convs, each computing outputs only for the nodes
  the next layer needs. For *all* nodes a k-hop tree is pointless: the ``full`` server runs
  full-graph layer-wise inference on the stored CSR (see :class:`TeacherServer`); there is no
  sampled all-node row.
- ``mlp`` (MLP/GLNN): the targets' feature rows, then the layers.
- ``sa-mlp`` and ``linkx``: feature rows plus adjacency rows (1-hop neighbour ids only); the
  ``W_A a_i`` product is an ``embedding_bag`` over the neighbour ids.

Student servers run a fused path (:class:`MLPServer`, :class:`SAMLPServer`,
:class:`LINKXServer`) that is tested equal to the package modules: ``index_select`` instead of
advanced indexing, no per-call validation, SA-MLP's two heads and gate folded into two small
matmuls and one ``lerp``. Model weights are random (seeded): latency and memory do not depend
on their values, only on shapes.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` over one call, minus what was
allocated before. On CPU, tracemalloc does not see torch's allocator, so one call runs under
``torch.profiler`` with ``profile_memory=True``; the peak of the running sum of its allocation
and free events is the extra memory that serving the batch needed (gathered inputs,
activations, temporaries, the output), excluding the stored graph and the parameters.
"""
from __future__ import annotations

import contextlib
import difflib
import math
import os
import re
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import softmax as pyg_softmax

from .config import resolve_config
from .data import GraphData, load_dataset, make_csbm
from .distill import make_student
from .features import select_rows
from .records import provenance, read_json, write_json_atomic
from .sampling import InNeighbors
from .structure import AdjacencyBatch, AdjacencyRows
from .students import MLP, SAMLP, LINKXStudent, count_parameters
from .teachers import Teacher, build_teacher

TEACHER_MODELS = ("sage", "gcn", "gat")
STUDENT_MODELS = ("mlp", "linkx", "sa-mlp")
MODELS = TEACHER_MODELS + STUDENT_MODELS
GATHERS: dict[str, tuple[str, ...]] = {
    **{name: ("full", "sampled") for name in TEACHER_MODELS},
    "mlp": ("features",), "linkx": ("adjacency-rows",), "sa-mlp": ("adjacency-rows",),
}
"""Gather modes per model: teachers read a k-hop neighbourhood, students rows of the store."""
REAL_GRAPHS = ("cora", "citeseer", "chameleon", "squirrel")
SYNTHETIC_GRAPHS = ("csbm-10k", "csbm-100k", "csbm-1m", "csbm-2m")
DEFAULT_GRAPHS = REAL_GRAPHS + SYNTHETIC_GRAPHS
DEFAULT_BATCH_SIZES: tuple[int | str, ...] = (1, 256, 4096, "all")
CSBM_OPTIONS = dict(num_classes=5, avg_degree=20.0, num_features=128, homophily=0.8,
                    feature_signal=1.0, num_splits=1, seed=0)
"""Synthetic scaling graphs: average degree 20, 128 features (issue 7)."""
SMOKE_GRAPH = "csbm-2k"
LAYERWISE_CHUNK = 65536
SAMPLED_ALL_REASON = ("all-node inference runs layer by layer over every neighbour (exact and cheaper "
                      "than a k-hop tree); neighbour sampling is a mini-batch device, so there is no "
                      "sampled all-node row")
MEMORY_METHOD = {
    "cpu": "torch.profiler(profile_memory=True): peak of the running sum of allocations minus "
           "frees during one call (stored graph and parameters excluded)",
    "cuda": "torch.cuda.max_memory_allocated during one call minus memory_allocated before it",
}
_CSBM_NAME = re.compile(r"^csbm-(\d+(?:\.\d+)?)([km]?)$")


# --------------------------------------------------------------------------- graphs and store

def csbm_size(name: str) -> int | None:
    """Nodes of a synthetic graph name such as ``csbm-10k``, ``csbm-2m`` or ``csbm-1500``; else None."""
    match = _CSBM_NAME.match(name)
    if not match:
        return None
    return int(round(float(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2)]))


def check_graph_names(names: Iterable[str]) -> list[str]:
    """Return ``names`` if each is a real dataset or ``csbm-<size>``; else raise ValueError."""
    names = list(names)
    for name in names:
        if name not in REAL_GRAPHS and csbm_size(name) is None:
            close = difflib.get_close_matches(name, list(DEFAULT_GRAPHS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown graph {name!r}: use one of {list(REAL_GRAPHS)} or a synthetic "
                             f"graph csbm-<size> such as csbm-10k, csbm-2m.{hint}")
        if csbm_size(name) is not None and csbm_size(name) < 10:
            raise ValueError(f"graph {name!r} is too small; a CSBM graph needs at least 10 nodes")
    return names


def check_models(names: Iterable[str]) -> list[str]:
    """Return ``names`` if each is one of :data:`MODELS`; else raise ValueError naming the valid ones."""
    names = list(names)
    for name in names:
        if name not in MODELS:
            close = difflib.get_close_matches(name, list(MODELS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown model {name!r}; choose from {list(MODELS)}.{hint}")
    return names


def parse_batch_sizes(items: Iterable[int | str]) -> list[int | str]:
    """Batch sizes as positive ints or ``"all"``, e.g. from ``"1,256,4096,all"``."""
    out: list[int | str] = []
    for item in items:
        text = str(item).strip().lower()
        if text == "all":
            out.append("all")
            continue
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"batch size {item!r} is neither a positive integer nor 'all'") from None
        if value < 1:
            raise ValueError(f"batch size must be at least 1, got {value}")
        out.append(value)
    if not out:
        raise ValueError("give at least one batch size, e.g. 1,256,4096,all")
    return list(dict.fromkeys(out))


def load_bench_graph(name: str, *, progress: bool = False) -> GraphData:
    """A benchmark graph: an offline dataset by name, or ``csbm-<size>`` built by :func:`make_csbm`."""
    check_graph_names([name])
    size = csbm_size(name)
    if size is None:
        return load_dataset(name, progress=progress)
    return make_csbm(size, name=name, **CSBM_OPTIONS)


@dataclass
class GraphStore:
    """The stored graph every server reads: features and in-neighbour CSR, on one device.

    Attributes:
        name: graph name.
        features: dense float32 ``[N, d]``.
        adjacency: :class:`AdjacencyRows` the structure-aware students read.
        in_neighbors: the sampler's CSR (shares ``rowptr``/``col`` with ``adjacency`` when the
            rows carry no self-loops, which is the default).
        num_edges: edge entries of the graph (both directions of an undirected edge).
    """

    name: str
    features: Tensor
    adjacency: AdjacencyRows
    in_neighbors: InNeighbors
    num_edges: int

    @classmethod
    def from_graph(cls, graph: GraphData, *, adj_norm: str = "none", self_loop: bool = False,
                   device: torch.device | str = "cpu") -> "GraphStore":
        """Build the store of ``graph`` (adjacency rows with ``adj_norm``/``self_loop``)."""
        data = graph.data
        adjacency = AdjacencyRows.from_edge_index(data.edge_index, graph.num_nodes, adj_norm=adj_norm,
                                                  self_loop=self_loop)
        if self_loop:
            in_neighbors = InNeighbors.from_edge_index(data.edge_index, graph.num_nodes)
        else:  # the same CSR (rows sorted, duplicates merged): share it
            in_neighbors = InNeighbors(adjacency.rowptr, adjacency.col, graph.num_nodes)
        device = torch.device(device)
        in_neighbors = InNeighbors(in_neighbors.rowptr.to(device), in_neighbors.col.to(device),
                                   graph.num_nodes)
        features = data.x.to_dense() if data.x.layout != torch.strided else data.x
        return cls(graph.name, features.float().contiguous().to(device), adjacency.to(device),
                   in_neighbors, int(data.edge_index.size(1)))

    @property
    def num_nodes(self) -> int:
        """N."""
        return self.adjacency.num_nodes

    @property
    def device(self) -> torch.device:
        """Where the store lives."""
        return self.features.device

    @property
    def in_degree(self) -> Tensor:
        """Float ``[N]`` in-degree (CSR row lengths)."""
        rowptr = self.in_neighbors.rowptr
        return (rowptr[1:] - rowptr[:-1]).float()


# --------------------------------------------------------------------------- k-hop gathering

@dataclass
class Subgraph:
    """A gathered k-hop neighbourhood, targets first, nodes and edges grouped by hop.

    Attributes:
        n_id: long ``[n]`` global ids (targets, then each hop's new nodes).
        edge_index: long ``[2, E]`` local (source, target) edges, hop after hop.
        entry: long ``[E]`` position of each edge in the CSR ``col`` (``-1`` for added self-loops).
        nodes_per_hop: ``[B, new nodes of hop 1, ...]`` (PyG's ``num_sampled_nodes_per_hop``).
        edges_per_hop: edges of each hop (``num_sampled_edges_per_hop``).
    """

    n_id: Tensor
    edge_index: Tensor
    entry: Tensor
    nodes_per_hop: list[int]
    edges_per_hop: list[int]


class NeighborhoodGatherer:
    """k-hop in-neighbourhoods with :func:`samlp_lite.sampling.sample_subgraph`'s output, faster.

    Same nodes in the same order, same edges, same random draws for a given generator (tests
    assert this). Two differences make it a serving path: the global-to-local relabel table
    is allocated once and only the touched entries are reset after a call (``sample_subgraph``
    fills an ``N``-long table per call, which alone costs milliseconds on a 2M-node graph), and
    everything runs on the store's device. It also reports per-hop counts for PyG's trimming
    and can add one self-loop per target of each hop (GCN). Not thread-safe.

    Args:
        graph: the in-neighbour CSR.
    """

    def __init__(self, graph: InNeighbors) -> None:
        self.graph = graph
        self.device = graph.rowptr.device
        self._local = torch.full((graph.num_nodes,), -1, dtype=torch.long, device=self.device)

    def in_edges(self, targets: Tensor, fanout: int, generator: torch.Generator | None = None
                 ) -> tuple[Tensor, Tensor, Tensor]:
        """``(sources, target_position, entry)`` of up to ``fanout`` in-edges per target (all if < 0)."""
        rowptr = self.graph.rowptr
        starts = rowptr.index_select(0, targets)
        counts = rowptr.index_select(0, targets + 1) - starts
        ends = torch.cumsum(counts, 0)
        total = int(ends[-1]) if ends.numel() else 0
        offsets = ends - counts
        positions = torch.repeat_interleave(starts - offsets, counts, output_size=total)
        positions += torch.arange(total, device=self.device)
        row = torch.repeat_interleave(torch.arange(targets.numel(), device=self.device), counts,
                                      output_size=total)
        if fanout >= 0 and total:
            # The package sampler's draw: a uniform key per edge, rank within its row, keep < fanout.
            keys = torch.rand(total, generator=generator, device=self.device)
            order = torch.argsort(row.double() + keys.double())
            rank = torch.arange(total, device=self.device) - offsets.index_select(0, row.index_select(0, order))
            keep = order[rank < fanout]
            positions, row = positions.index_select(0, keep), row.index_select(0, keep)
        return self.graph.col.index_select(0, positions), row, positions

    def __call__(self, targets: Tensor, fanouts: Sequence[int], generator: torch.Generator | None = None,
                 self_loops: bool = False) -> Subgraph:
        """Gather the neighbourhood of distinct ``targets`` over ``len(fanouts)`` hops."""
        local = self._local
        count = targets.numel()
        local.index_copy_(0, targets, torch.arange(count, device=self.device))
        parts_n, parts_src, parts_dst, parts_entry = [targets], [], [], []
        nodes_per_hop, edges_per_hop = [count], []
        frontier, frontier_start = targets, 0
        try:
            for fanout in fanouts:
                src, row, entry = self.in_edges(frontier, fanout, generator)
                src_local = local.index_select(0, src)
                new = torch.unique(src[src_local < 0])
                local.index_copy_(0, new, torch.arange(count, count + new.numel(), device=self.device))
                src_local = local.index_select(0, src)
                dst_local = row + frontier_start
                if self_loops:
                    loop = torch.arange(frontier_start, frontier_start + frontier.numel(), device=self.device)
                    src_local, dst_local = torch.cat([src_local, loop]), torch.cat([dst_local, loop])
                    entry = torch.cat([entry, torch.full_like(loop, -1)])
                parts_n.append(new)
                parts_src.append(src_local)
                parts_dst.append(dst_local)
                parts_entry.append(entry)
                nodes_per_hop.append(new.numel())
                edges_per_hop.append(src_local.numel())
                frontier, frontier_start, count = new, count, count + new.numel()
            n_id = torch.cat(parts_n)
        finally:
            local.index_fill_(0, torch.cat(parts_n), -1)
        if not parts_src:
            empty = torch.empty(0, dtype=torch.long, device=self.device)
            return Subgraph(n_id, torch.empty(2, 0, dtype=torch.long, device=self.device), empty,
                            nodes_per_hop, edges_per_hop)
        edge_index = torch.stack([torch.cat(parts_src), torch.cat(parts_dst)])
        return Subgraph(n_id, edge_index, torch.cat(parts_entry), nodes_per_hop, edges_per_hop)


# --------------------------------------------------------------------------- servers

class Server:
    """Logits for target nodes from a :class:`GraphStore`: ``gather`` then ``forward``.

    Attributes:
        model_name, gather_name: the row labels (``sa-mlp`` / ``adjacency-rows`` ...).
        impl: how it computes a batch (``fused``, ``module``, ``per-hop``).
        num_params: parameter count of the served model.
    """

    model_name = ""
    gather_name = ""
    impl = ""

    @property
    def impl_all(self) -> str:
        """How all-node inference computes (same as :attr:`impl` unless a subclass says otherwise)."""
        return self.impl

    def __init__(self, model: nn.Module, store: GraphStore) -> None:
        self.model, self.store = model.eval(), store
        self.num_params = count_parameters(model)

    def gather(self, targets: Tensor) -> tuple:
        """The inputs the model needs for ``targets`` (long ``[B]`` on the store's device)."""
        raise NotImplementedError

    def forward(self, *inputs: Any) -> Tensor:
        """Logits ``[B, C]`` from :meth:`gather`'s inputs."""
        raise NotImplementedError

    def gather_all(self) -> tuple:
        """Inputs for every node; students read the stored arrays in place (no copy)."""
        return self.gather(torch.arange(self.store.num_nodes, device=self.store.device))

    def __call__(self, targets: Tensor | None) -> Tensor:
        """Logits for ``targets`` (``None``: every node), gather included."""
        with torch.inference_mode():
            return self.forward(*(self.gather_all() if targets is None else self.gather(targets)))

    def input_bytes(self, targets: Tensor | None) -> int:
        """Bytes of the tensors :meth:`gather` hands to the model (not timed)."""
        with torch.inference_mode():
            inputs = self.gather_all() if targets is None else self.gather(targets)
        return _nbytes(inputs)


def _nbytes(value: Any) -> int:
    if isinstance(value, Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, AdjacencyBatch):
        return _nbytes((value.indices, value.offsets, value.weights))
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return 0


def gather_rows(adjacency: AdjacencyRows, nodes: Tensor, with_weights: bool = True) -> AdjacencyBatch:
    """:meth:`AdjacencyRows.gather` without input checks, with ``index_select`` throughout.

    Same rows as the package gather (a test asserts it); on CPU ``index_select`` is several
    times faster than advanced indexing for these 1-D gathers. With ``with_weights=False``
    (the rows are 0/1, ``adj_norm="none"``) ``weights`` is ``None`` so ``embedding_bag`` skips
    the multiply.
    """
    rowptr = adjacency.rowptr
    starts = rowptr.index_select(0, nodes)
    counts = rowptr.index_select(0, nodes + 1) - starts
    ends = torch.cumsum(counts, 0)
    total = int(ends[-1]) if ends.numel() else 0
    offsets = ends - counts
    positions = torch.repeat_interleave(starts - offsets, counts, output_size=total)
    positions += torch.arange(total, device=rowptr.device)
    weights = adjacency.weight.index_select(0, positions) if with_weights else None
    return AdjacencyBatch(adjacency.col.index_select(0, positions), offsets, weights)


def _unit_weights(adjacency: AdjacencyRows) -> bool:
    return adjacency.adj_norm == "none"


class MLPServer(Server):
    """MLP/GLNN: feature rows, then ``(Linear -> ReLU) * (L - 1) -> Linear`` (fused: no checks)."""

    model_name, gather_name = "mlp", "features"

    def __init__(self, model: MLP, store: GraphStore, fused: bool = True) -> None:
        super().__init__(model, store)
        # Fusing assumes no norm layers (the default); with norms the module runs as is.
        self.fused = fused and all(isinstance(n, nn.Identity) for n in model.norms)
        self.impl = "fused" if self.fused else "module"

    def gather(self, targets: Tensor) -> tuple:  # noqa: D102
        if not self.fused:  # the package's path end to end
            return (select_rows(self.store.features, targets),)
        return (self.store.features.index_select(0, targets),)

    def gather_all(self) -> tuple:  # noqa: D102
        return (self.store.features,)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        if not self.fused:
            return self.model(x)
        layers = self.model.layers
        for layer in layers[:-1]:
            x = F.linear(x, layer.weight, layer.bias).relu_()
        return F.linear(x, layers[-1].weight, layers[-1].bias)


class SAMLPServer(Server):
    """SA-MLP: feature rows and adjacency rows, then the fused student.

    Fused forward for the default architecture (``combine="gate"``, one-layer heads, both
    branches): ``hA = relu(embedding_bag(ids) + b_A)``, ``hX = relu(W_X x + b_X)``,
    ``P = hA [W_sA; w_gA]^T + [b_s; b_g]``, ``Q = hX [W_fX; w_gX]^T + [b_f; 0]``,
    ``alpha = sigmoid(P[:, C] + Q[:, C])``, ``logits = lerp(Q[:, :C], P[:, :C], alpha)``:
    the two heads and the gate are two matmuls. Other architectures run the module.
    """

    model_name, gather_name = "sa-mlp", "adjacency-rows"

    def __init__(self, model: SAMLP, store: GraphStore, fused: bool = True) -> None:
        super().__init__(model, store)
        heads_are_linear = (model.combine == "gate" and len(model.structure_head.layers) == 1
                            and len(model.feature_head.layers) == 1)
        self.fused = fused and heads_are_linear
        self.impl = "fused" if self.fused else "module"
        self.with_weights = not (self.fused and _unit_weights(store.adjacency))
        if self.fused:
            h, c = model.hidden, model.structure_head.layers[0].out_features
            gate_w, gate_b = model.gate.weight.detach(), model.gate.bias.detach()
            s_head, f_head = model.structure_head.layers[0], model.feature_head.layers[0]
            self.num_classes = c
            self.structure_table = model.structure_encoder.weight.detach()
            self.structure_bias = model.structure_bias.detach()
            self.feature_weight = model.feature_encoder.weight.detach()
            self.feature_bias = model.feature_encoder.bias.detach()
            self.p_weight = torch.cat([s_head.weight.detach(), gate_w[:, :h]]).t().contiguous()
            self.p_bias = torch.cat([s_head.bias.detach(), gate_b])
            self.q_weight = torch.cat([f_head.weight.detach(), gate_w[:, h:]]).t().contiguous()
            self.q_bias = torch.cat([f_head.bias.detach(), torch.zeros_like(gate_b)])

    def gather(self, targets: Tensor) -> tuple:  # noqa: D102
        if not self.fused:
            return (select_rows(self.store.features, targets), self.store.adjacency.gather(targets))
        return (self.store.features.index_select(0, targets),
                gather_rows(self.store.adjacency, targets, self.with_weights))

    def gather_all(self) -> tuple:  # noqa: D102
        rows = self.store.adjacency.all()
        if not self.with_weights:
            rows = AdjacencyBatch(rows.indices, rows.offsets, None)
        return (self.store.features, rows)

    def forward(self, x: Tensor, adj: AdjacencyBatch) -> Tensor:  # noqa: D102
        if not self.fused:
            return self.model(x, adj)
        h_s = F.embedding_bag(adj.indices, self.structure_table, adj.offsets, mode="sum",
                              per_sample_weights=adj.weights).add_(self.structure_bias).relu_()
        h_f = F.linear(x, self.feature_weight, self.feature_bias).relu_()
        p = torch.addmm(self.p_bias, h_s, self.p_weight)
        q = torch.addmm(self.q_bias, h_f, self.q_weight)
        c = self.num_classes
        alpha = torch.sigmoid(p[:, c:] + q[:, c:])
        return torch.lerp(q[:, :c], p[:, :c], alpha)


class LINKXServer(Server):
    """LINKX: feature rows and adjacency rows; its ``SparseLinear`` as an ``embedding_bag``.

    PyG's LINKX multiplies a sparse ``[B, N]`` matrix with its ``[N, h]`` weight; the fused path
    computes that product as an ``embedding_bag`` sum (same value) and runs LINKX's other
    layers as they are, so LINKX and SA-MLP get the same structure-encoder kernel.
    """

    model_name, gather_name = "linkx", "adjacency-rows"

    def __init__(self, model: LINKXStudent, store: GraphStore, fused: bool = True) -> None:
        super().__init__(model, store)
        linkx = model.linkx
        self.fused = fused and linkx.edge_mlp is None  # num_edge_layers == 1
        self.impl = "fused" if self.fused else "module"
        self.with_weights = not (self.fused and _unit_weights(store.adjacency))

    def gather(self, targets: Tensor) -> tuple:  # noqa: D102
        if not self.fused:
            return (select_rows(self.store.features, targets), self.store.adjacency.gather(targets))
        return (self.store.features.index_select(0, targets),
                gather_rows(self.store.adjacency, targets, self.with_weights))

    def gather_all(self) -> tuple:  # noqa: D102
        rows = self.store.adjacency.all()
        if not self.with_weights:
            rows = AdjacencyBatch(rows.indices, rows.offsets, None)
        return (self.store.features, rows)

    def forward(self, x: Tensor, adj: AdjacencyBatch) -> Tensor:  # noqa: D102
        if not self.fused:
            return self.model(x, adj)
        linkx = self.model.linkx
        out = F.embedding_bag(adj.indices, linkx.edge_lin.weight, adj.offsets, mode="sum",
                              per_sample_weights=adj.weights)
        if linkx.edge_lin.bias is not None:
            out = out + linkx.edge_lin.bias
        out = out + linkx.cat_lin1(out)
        x = linkx.node_mlp(x)
        out = out + x
        out = out + linkx.cat_lin2(x)
        return linkx.final_mlp(out.relu_())


class TeacherServer(Server):
    """A GNN teacher served from its k-hop neighbourhood (see the module docstring).

    Batches: the k-hop neighbourhood by :class:`NeighborhoodGatherer`, then one PyG conv per
    layer that computes outputs only for the nodes the next layer needs (SAGE and GAT as
    bipartite ``(source, target)`` convs; a SAGE layer that narrows (d > h) projects before
    averaging, see :func:`_projects_first`). All nodes (``gather="full"`` only): full-graph
    layer-wise inference on the stored CSR, no gathering: SAGE as ``D^-1 A (X W_l) + X W_r + b``
    when it narrows (the sparse matmul then moves h instead of d columns), GCN as
    ``D^-1/2 (A + I) D^-1/2 X W`` with the same sparse matrix, GAT's attention over chunks of
    target nodes (so the per-edge messages never exist for the whole graph at once). Tests
    assert each equals the teacher's full-graph forward.

    Args:
        teacher: built by :func:`build_teacher` for mini-batches (``batch_size > 0``), so it
            reads ``edge_index`` (GCN: with normalised ``edge_weight``).
        store: the stored graph.
        gather: ``full`` (every in-neighbour; the prediction equals the full-graph one) or
            ``sampled`` (up to ``fanouts[l]`` per hop, uniformly, GCN normalised on the sampled
            subgraph as in training).
        fanouts: neighbours per hop for ``sampled``.
        seed: seed of the sampler's generator.
        chunk_size: target nodes per chunk of GAT's all-node inference.
    """

    def __init__(self, teacher: Teacher, store: GraphStore, gather: str, fanouts: Sequence[int],
                 seed: int = 0, chunk_size: int = LAYERWISE_CHUNK) -> None:
        super().__init__(teacher, store)
        if gather not in ("full", "sampled"):
            raise ValueError(f"teacher gather must be 'full' or 'sampled', got {gather!r}")
        self.model_name, self.gather_name, self.impl = teacher.name, gather, "per-hop"
        self.gnn = teacher.gnn
        self.num_layers = self.gnn.num_layers
        if gather == "sampled" and len(fanouts) < self.num_layers:
            raise ValueError(f"{self.num_layers} layers need {self.num_layers} fanouts, got {list(fanouts)}")
        self.fanouts = [-1] * self.num_layers if gather == "full" else [int(f) for f in fanouts[: self.num_layers]]
        self.gatherer = NeighborhoodGatherer(store.in_neighbors)
        self.generator = torch.Generator(device=store.device).manual_seed(seed)
        self.is_gcn = teacher.name == "gcn"
        self.bipartite = teacher.name in ("sage", "gat")  # GCNConv takes no (source, target) pair
        # GCN's full-graph normalisation (self-loops included) is part of the stored graph.
        self.inv_sqrt_degree = (store.in_degree + 1.0).pow(-0.5) if self.is_gcn else None
        self.inv_degree = store.in_degree.clamp(min=1.0).reciprocal() if teacher.name == "sage" else None
        self.chunk_size = chunk_size
        self._adj_t: Tensor | None = None

    @property
    def impl_all(self) -> str:  # noqa: D102
        return "full-graph-chunked" if self.model_name == "gat" else "full-graph-spmm"

    @property
    def adj_t(self) -> Tensor:
        """The stored in-neighbour CSR as a 0/1 sparse ``[N, N]`` matrix (row i: sources into i)."""
        if self._adj_t is None:
            graph = self.store.in_neighbors
            ones = torch.ones(graph.col.numel(), device=graph.col.device)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                self._adj_t = torch.sparse_csr_tensor(graph.rowptr, graph.col, ones,
                                                      (graph.num_nodes, graph.num_nodes), check_invariants=False)
        return self._adj_t

    def _edge_weight(self, sub: Subgraph) -> Tensor | None:
        if not self.is_gcn:
            return None
        src, dst = sub.edge_index
        if self.gather_name == "full":
            norm = self.inv_sqrt_degree.index_select(0, sub.n_id)
        else:  # gcn_norm of the sampled subgraph; nodes without sampled in-edges keep degree 1
            degree = torch.bincount(dst, minlength=sub.n_id.numel()).clamp_(min=1)
            norm = degree.float().pow_(-0.5)
        return norm.index_select(0, src) * norm.index_select(0, dst)

    def gather(self, targets: Tensor) -> tuple:  # noqa: D102
        sub = self.gatherer(targets, self.fanouts, self.generator, self_loops=self.is_gcn)
        x = self.store.features.index_select(0, sub.n_id)
        return x, sub.edge_index, self._edge_weight(sub), sub.nodes_per_hop, sub.edges_per_hop

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None,
                nodes_per_hop: list[int], edges_per_hop: list[int]) -> Tensor:  # noqa: D102
        # Layer l only needs outputs for the nodes within num_layers - 1 - l hops of the targets;
        # nodes and edges are grouped by hop, so those are prefixes of x and edge_index.
        for layer in range(self.num_layers):
            hops = self.num_layers - layer
            num_dst, num_edges = sum(nodes_per_hop[:hops]), sum(edges_per_hop[:hops])
            edges = edge_index[:, :num_edges]
            conv = self.gnn.convs[layer]
            if self.model_name == "sage" and _projects_first(conv):
                src, dst = edges
                h = F.linear(x, conv.lin_l.weight)
                summed = h.new_zeros(num_dst, h.size(1)).index_add_(0, dst, h.index_select(0, src))
                count = torch.bincount(dst, minlength=num_dst).clamp_(min=1).unsqueeze(-1)
                out = self._sage_output(conv, summed / count, x[:num_dst])
            elif self.bipartite:  # outputs for the destination rows only
                out = conv((x, x[:num_dst]), edges, size=(x.size(0), num_dst))
            elif edge_weight is not None:
                out = conv(x, edges, edge_weight=edge_weight[:num_edges])[:num_dst]
            else:
                out = conv(x, edges)[:num_dst]
            x = self._activate(layer, out)
        return x

    def gather_all(self) -> tuple:  # noqa: D102
        if self.gather_name != "full":
            raise ValueError("all-node inference uses every neighbour: ask the 'full' server")
        graph = self.store.in_neighbors
        return (self.store.features, graph.rowptr, graph.col)

    def __call__(self, targets: Tensor | None) -> Tensor:  # noqa: D102
        if targets is not None:
            return super().__call__(targets)
        self.gather_all()
        with torch.inference_mode():
            x = self.store.features
            for layer in range(self.num_layers):
                x = self._activate(layer, self._all_nodes_layer(self.gnn.convs[layer], x))
            return x

    def _all_nodes_layer(self, conv: nn.Module, x: Tensor) -> Tensor:
        if self.model_name == "sage":
            if not _projects_first(conv):
                return conv(x, self.adj_t)  # PyG's own sparse path
            h = F.linear(x, conv.lin_l.weight)
            return self._sage_output(conv, torch.sparse.mm(self.adj_t, h) * self.inv_degree.unsqueeze(-1), x)
        if self.model_name == "gcn":
            norm = self.inv_sqrt_degree.unsqueeze(-1)
            h = conv.lin(x) * norm
            out = (torch.sparse.mm(self.adj_t, h) + h) * norm
            return out + conv.bias if conv.bias is not None else out
        return self._gat_all_nodes(conv, x)

    @staticmethod
    def _sage_output(conv: nn.Module, mean_projected: Tensor, x_dst: Tensor) -> Tensor:
        """SAGEConv's output from the mean of the projected neighbours: ``+ b_l + W_r x_i``."""
        out = mean_projected + conv.lin_r(x_dst)
        out = out + conv.lin_l.bias if conv.lin_l.bias is not None else out
        return F.normalize(out, p=2.0, dim=-1) if conv.normalize else out

    def _gat_all_nodes(self, conv: nn.Module, x: Tensor) -> Tensor:
        """PyG ``GATConv`` (eval, shared ``lin``, no edge features) over every node, chunked by target."""
        if conv.lin is None or conv.res is not None or conv.edge_dim is not None or not conv.add_self_loops:
            raise NotImplementedError("all-node GAT inference supports PyG's default GATConv only")
        heads, channels = conv.heads, conv.out_channels
        h = conv.lin(x).view(-1, heads, channels)
        score_src = (h * conv.att_src).sum(-1)
        score_dst = (h * conv.att_dst).sum(-1)
        outputs = []
        for start in range(0, x.size(0), self.chunk_size):
            targets = torch.arange(start, min(start + self.chunk_size, x.size(0)), device=x.device)
            src, row, _ = self.gatherer.in_edges(targets, -1)
            src = torch.cat([src, targets])  # GATConv's self-loops
            row = torch.cat([row, targets - start])
            score = F.leaky_relu(score_src.index_select(0, src) + score_dst.index_select(0, row + start),
                                conv.negative_slope)
            weight = pyg_softmax(score, row, num_nodes=targets.numel())
            message = h.index_select(0, src) * weight.unsqueeze(-1)
            out = message.new_zeros(targets.numel(), heads, channels).index_add_(0, row, message)
            outputs.append(out.reshape(targets.numel(), heads * channels) if conv.concat else out.mean(dim=1))
        out = torch.cat(outputs)
        return out + conv.bias if conv.bias is not None else out

    def _activate(self, layer: int, out: Tensor) -> Tensor:
        """BasicGNN's activation and norm between layers (none after the last)."""
        gnn = self.gnn
        if layer == self.num_layers - 1:
            return out
        if gnn.act is not None and gnn.act_first:
            out = gnn.act(out)
        out = gnn.norms[layer](out)
        if gnn.act is not None and not gnn.act_first:
            out = gnn.act(out)
        return out


def _projects_first(conv: nn.Module) -> bool:
    """Whether a SAGE layer should project before averaging: ``mean_j(x_j) W = mean_j(x_j W)``.

    PyG's ``SAGEConv`` averages the d-wide inputs first; when the layer narrows (d > h) moving
    h-wide rows over the edges is cheaper. Only PyG's default mean/root-weight layer qualifies.
    """
    return (not conv.project and str(conv.aggr) == "mean" and conv.root_weight
            and conv.in_channels > conv.out_channels)


def build_servers(model_name: str, store: GraphStore, num_classes: int, *, seed: int = 0,
                  fused: bool = True, overrides: dict | None = None) -> list[Server]:
    """One server per gather mode of ``model_name`` (teachers: full and sampled), random weights.

    The model shape comes from the resolved config of (``store.name``, ``model_name``);
    ``overrides`` change config keys (e.g. ``{"hidden": 128}``).
    """
    check_models([model_name])
    torch.manual_seed(seed)
    num_features = store.features.size(1)
    if model_name in TEACHER_MODELS:
        config = resolve_config(store.name, model_name, {**(overrides or {}), "batch_size": 256})
        teacher = build_teacher(model_name, num_features, num_classes, config).to(store.device)
        return [TeacherServer(teacher, store, gather, config.fanouts, seed=seed)
                for gather in GATHERS[model_name]]
    config = resolve_config(store.name, model_name, overrides or {})
    if (config.adj_norm, config.self_loop) != (store.adjacency.adj_norm, store.adjacency.self_loop):
        raise ValueError(f"the store's adjacency rows are adj_norm={store.adjacency.adj_norm!r}, "
                         f"self_loop={store.adjacency.self_loop} but {model_name} is configured with "
                         f"adj_norm={config.adj_norm!r}, self_loop={config.self_loop}; build the "
                         "GraphStore with the config's values")
    student = make_student(model_name, num_features, num_classes, store.num_nodes, config).to(store.device)
    server_class = {"mlp": MLPServer, "linkx": LINKXServer, "sa-mlp": SAMLPServer}[model_name]
    return [server_class(student, store, fused=fused)]


# --------------------------------------------------------------------------- measuring

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send file descriptor 2 to /dev/null: the profiler's C++ side logs a line per start and stop."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cpu_peak_bytes(call: Callable[[], Any]) -> int | None:
    from torch.profiler import ProfilerActivity, profile

    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    try:
        events = prof.profiler.kineto_results.events()
        deltas = [(e.start_ns(), e.nbytes()) for e in events
                  if e.name() == "[memory]" and str(e.device_type()).endswith("CPU")]
    except AttributeError:  # the profiler's result API moved: say so rather than guess
        return None
    deltas.sort(key=lambda item: item[0])
    running = peak = 0
    for _, nbytes in deltas:
        running += nbytes
        peak = max(peak, running)
    return peak


def peak_memory_bytes(call: Callable[[], Any], device: torch.device) -> int | None:
    """Extra memory one ``call()`` needs at its peak (see the module docstring); None if unknown."""
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        call()
        _sync(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    return _cpu_peak_bytes(call)


@dataclass
class TimingPolicy:
    """How often a cell runs.

    One untimed call measures memory (and warms up); then up to ``warmup - 1`` more untimed
    calls; then timed calls until ``repeats`` are done, or ``budget_s`` has passed and at least
    ``min_repeats`` are done. A cell whose first timed call alone exceeds ``budget_s`` stops
    after it (the row says ``repeats: 1``).
    """

    warmup: int = 3
    repeats: int = 20
    min_repeats: int = 3
    budget_s: float = 3.0


def time_calls(call: Callable[[Tensor | None], Any], batches: Sequence[Tensor | None], device: torch.device,
               policy: TimingPolicy, warm_s: float = 0.0) -> list[float]:
    """Seconds per timed call of ``call(batch)``, batches taken in order (after the warm-up ones).

    Targets are copied to ``device`` and logits back to the host inside the timed region, with
    ``torch.cuda.synchronize`` around it on CUDA (no-ops on the CPU). Warm-up calls stop once
    they (plus ``warm_s`` already spent, e.g. by the memory call) exceed a quarter of the budget.
    """
    index = 0
    warm_start = time.perf_counter() - warm_s
    for _ in range(max(policy.warmup - 1, 0)):
        if time.perf_counter() - warm_start > policy.budget_s / 4:
            break
        batch = batches[index % len(batches)]
        call(batch.to(device) if batch is not None else None)
        index += 1
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < policy.repeats:
        batch = batches[index % len(batches)]
        index += 1
        _sync(device)
        t0 = time.perf_counter()
        out = call(batch.to(device) if batch is not None else None)
        out = out.cpu()
        _sync(device)
        times.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if times[0] > policy.budget_s or (elapsed > policy.budget_s and len(times) >= policy.min_repeats):
            break
    return times


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def target_batches(num_nodes: int, batch_size: int, count: int, seed: int = 0) -> list[Tensor]:
    """``count`` batches of ``batch_size`` distinct random nodes (fresh nodes per batch while they last)."""
    generator = torch.Generator().manual_seed(seed)
    batches: list[Tensor] = []
    while len(batches) < count:
        perm = torch.randperm(num_nodes, generator=generator)
        for start in range(0, num_nodes - batch_size + 1, batch_size):
            batches.append(perm[start:start + batch_size])
            if len(batches) == count:
                break
    return batches


def op_profile(call: Callable[[Tensor | None], Any], batches: Sequence[Tensor | None], top: int = 8
               ) -> list[dict[str, Any]]:
    """Self CPU time per call of the ``top`` most expensive aten ops over ``batches`` (microseconds)."""
    from torch.profiler import ProfilerActivity, profile

    for batch in batches[:3]:
        call(batch)
    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches:
            call(batch)
    table = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in table) / len(batches)
    rows = [{"op": e.key, "self_us_per_call": round(e.self_cpu_time_total / len(batches), 2),
             "calls_per_batch": round(e.count / len(batches), 2)} for e in table[:top]]
    return [{"op": "total", "self_us_per_call": round(total, 2), "calls_per_batch": None}] + rows


@dataclass
class BenchOptions:
    """What :func:`bench_graph` runs.

    Attributes:
        models: from :data:`MODELS`.
        batch_sizes: ints and/or ``"all"``; sizes not below N are skipped (``all`` covers them).
        policy: :class:`TimingPolicy`.
        device: where the store and models live.
        seed: seeds weights, targets and sampling.
        profile_batch_size: batch size of the op profile of ``mlp`` and ``sa-mlp`` (None: off).
        overrides: config overrides for every model (e.g. ``{"hidden": 128}``).
    """

    models: Sequence[str] = MODELS
    batch_sizes: Sequence[int | str] = DEFAULT_BATCH_SIZES
    policy: TimingPolicy = field(default_factory=TimingPolicy)
    device: str = "cpu"
    seed: int = 0
    profile_batch_size: int | None = 256
    overrides: dict = field(default_factory=dict)


def bench_graph(graph: GraphData, options: BenchOptions, *, progress: Callable[[str], None] | None = None
                ) -> dict[str, Any]:
    """Measure every model x gather x batch size on ``graph``; return the latency record body.

    ``progress`` is called with a short label after each measured cell.

    The result has every METHOD.md section 8 key except ``provenance`` (see :func:`run_bench`).
    """
    check_models(options.models)
    batch_sizes = parse_batch_sizes(options.batch_sizes)
    device = torch.device(options.device)
    num_nodes = graph.num_nodes
    started = time.perf_counter()
    store = GraphStore.from_graph(graph, device=device)
    policy = options.policy
    count = policy.warmup + policy.repeats
    batches = {b: ([None] if b == "all" else target_batches(num_nodes, b, count, options.seed))
               for b in batch_sizes if b == "all" or b < num_nodes}
    skipped = [{"batch_size": b, "reason": f"not below the graph's {num_nodes} nodes; 'all' covers it"}
               for b in batch_sizes if b != "all" and b >= num_nodes]
    rows, configs, profile = [], {}, {}
    for model_name in options.models:
        servers = build_servers(model_name, store, graph.num_classes, seed=options.seed,
                                overrides=options.overrides)
        configs[model_name] = _shape_of(store.name, model_name, options.overrides)
        for server in servers:
            for batch_size, cell in batches.items():
                if batch_size == "all" and server.gather_name == "sampled":
                    skipped.append({"model": server.model_name, "gather": "sampled", "batch_size": "all",
                                    "reason": SAMPLED_ALL_REASON})
                    continue
                size = num_nodes if batch_size == "all" else batch_size
                first = cell[0].to(device) if cell[0] is not None else None
                memory_start = time.perf_counter()
                peak = peak_memory_bytes(lambda: server(first), device)
                seconds = time_calls(server, cell[1:] if len(cell) > 1 else cell, device, policy,
                                     warm_s=time.perf_counter() - memory_start)
                ms = [1e3 * s for s in seconds]
                rows.append({
                    "model": server.model_name, "gather": server.gather_name, "batch_size": size,
                    "all_nodes": batch_size == "all",
                    "median_ms": round(statistics.median(ms), 4),
                    "p10_ms": round(_quantile(ms, 0.1), 4), "p90_ms": round(_quantile(ms, 0.9), 4),
                    "peak_mem_bytes": peak, "num_params": server.num_params,
                    "bytes_per_node": round(server.input_bytes(first) / size, 1),
                    "us_per_node": round(1e3 * statistics.median(ms) / size, 4),
                    "repeats": len(ms), "impl": server.impl_all if batch_size == "all" else server.impl,
                })
                if progress:
                    progress(f"{graph.name} {server.model_name}/{server.gather_name} B={batch_size}: "
                             f"{rows[-1]['median_ms']:.3g} ms")
            if (options.profile_batch_size and server.model_name in ("mlp", "sa-mlp")
                    and options.profile_batch_size < num_nodes and device.type == "cpu"):
                profile[server.model_name] = _profile_entry(server, store, graph.num_classes, options)
        del servers
    return {
        "kind": "latency", "graph": graph.name, "num_nodes": num_nodes, "num_edges": store.num_edges,
        "num_features": graph.num_features, "num_classes": graph.num_classes,
        "synthetic": csbm_size(graph.name) is not None, "device": str(device),
        "threads": torch.get_num_threads(), "rows": rows, "skipped": skipped,
        "summary": summarize(rows), "profile": profile, "models": configs,
        "weights": f"random initialisation (seed {options.seed}); latency and memory depend on "
                   "shapes, not weight values",
        "timing": {"warmup": policy.warmup, "repeats": policy.repeats, "min_repeats": policy.min_repeats,
                   "budget_s": policy.budget_s, "clock": "time.perf_counter",
                   "timed": "target ids to device, gather from the store, forward, logits to host"},
        "memory_method": MEMORY_METHOD["cuda" if device.type == "cuda" else "cpu"],
        "bench_wall_s": round(time.perf_counter() - started, 2),
    }


def _shape_of(dataset: str, model_name: str, overrides: dict) -> dict[str, Any]:
    config = resolve_config(dataset, model_name, overrides or {})
    keys = ["hidden", "num_layers"]
    keys += {"gat": ["heads", "fanouts"], "sage": ["fanouts"], "gcn": ["fanouts"],
             "sa-mlp": ["head_layers", "combine", "adj_norm", "self_loop"],
             "linkx": ["linkx_layers", "adj_norm", "self_loop"]}.get(model_name, [])
    return {key: getattr(config, key) for key in keys}


def _profile_entry(server: Server, store: GraphStore, num_classes: int, options: BenchOptions) -> dict[str, Any]:
    """Op breakdown of the fused path and fused-versus-module medians at the profile batch size."""
    size = options.profile_batch_size
    batches = target_batches(store.num_nodes, size, 40, options.seed + 1)
    module_server = build_servers(server.model_name, store, num_classes, seed=options.seed, fused=False,
                                  overrides=options.overrides)[0]
    policy = TimingPolicy(warmup=3, repeats=30, min_repeats=5, budget_s=options.policy.budget_s)
    fused_ms = statistics.median(time_calls(server, batches, store.device, policy)) * 1e3
    module_ms = statistics.median(time_calls(module_server, batches, store.device, policy)) * 1e3
    return {"batch_size": size, "fused_median_ms": round(fused_ms, 4), "module_median_ms": round(module_ms, 4),
            "ops": op_profile(server, batches[:20])}


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ratios per batch size: SA-MLP/MLP and each teacher-gather/SA-MLP (median latencies)."""
    by_key = {(r["model"], r["gather"], r["batch_size"]): r["median_ms"] for r in rows}
    out = []
    for size in sorted({r["batch_size"] for r in rows}):
        entry: dict[str, Any] = {"batch_size": size}
        sa = by_key.get(("sa-mlp", "adjacency-rows", size))
        mlp = by_key.get(("mlp", "features", size))
        if sa and mlp:
            entry["sa_mlp_over_mlp"] = round(sa / mlp, 3)
        for teacher in TEACHER_MODELS:
            for gather in GATHERS[teacher]:
                value = by_key.get((teacher, gather, size))
                if value and sa:
                    entry[f"{teacher}_{gather}_over_sa_mlp"] = round(value / sa, 2)
        out.append(entry)
    return out


# --------------------------------------------------------------------------- records

RESULTS_DIR = Path("results") / "latency"


def record_file(template: str | Path | None, graph: str, num_graphs: int) -> Path:
    """Where the record of ``graph`` goes.

    ``template`` may hold ``{graph}``; a folder (no ``.json`` suffix) gets ``<graph>.json``; a
    plain file name is only allowed for a single graph. Default ``results/latency/<graph>.json``.
    In smoke mode a path inside ``results/`` moves to ``results/smoke/...``.
    """
    from .experiments import record_path

    if template is None:
        path = RESULTS_DIR / f"{graph}.json"
    else:
        text = str(template)
        if "{graph}" in text:
            path = Path(text.format(graph=graph))
        elif not text.endswith(".json"):
            path = Path(text) / f"{graph}.json"
        elif num_graphs > 1:
            raise ValueError(f"--json {text} names one file but {num_graphs} graphs are benchmarked; "
                             "put {graph} in the name (e.g. results/latency/{graph}.json) or give a folder")
        else:
            path = Path(text)
    return record_path(path)


def run_bench(graphs: Sequence[str | GraphData], options: BenchOptions, *, json_path: str | Path | None = None,
              command: str | None = None, progress: bool = True) -> list[tuple[Path, dict[str, Any]]]:
    """Benchmark each graph, write one latency record per graph (atomically); return (path, record)s.

    Args:
        graphs: names (see :func:`load_bench_graph`) or graphs already loaded.
        options: what to measure.
        json_path: see :func:`record_file`.
        command: the command recorded in the provenance (default: this process's command line).
        progress: show a progress bar.
    """
    from tqdm.auto import tqdm

    check_graph_names([g for g in graphs if isinstance(g, str)])
    check_models(options.models)
    sizes = parse_batch_sizes(options.batch_sizes)
    cells = sum(len(GATHERS[m]) for m in options.models) * len(sizes)
    bar = tqdm(total=cells * len(graphs), desc="bench", disable=not progress, unit="cell")
    written = []
    for item in graphs:
        name = item if isinstance(item, str) else item.name
        path = record_file(json_path, name, len(graphs))
        bar.set_postfix_str(f"{name}: loading")
        start = time.perf_counter()
        graph = load_bench_graph(item) if isinstance(item, str) else item

        def step(label: str) -> None:
            bar.set_postfix_str(label)
            bar.update(1)

        body = bench_graph(graph, options, progress=step if progress else None)
        bar.update(cells - len(body["rows"]))
        del graph
        record = {**body, "provenance": provenance(wall_s=time.perf_counter() - start, device=options.device,
                                                   command=command)}
        write_json_atomic(path, record)
        written.append((path, record))
    bar.close()
    return written


def load_records(folder: str | Path = RESULTS_DIR) -> list[dict[str, Any]]:
    """Every latency record (``"kind": "latency"``) under ``folder``, sorted by node count."""
    records = [read_json(path) for path in sorted(Path(folder).rglob("*.json"))]
    records = [r for r in records if isinstance(r, dict) and r.get("kind") == "latency"]
    return sorted(records, key=lambda r: (r["num_nodes"], r["graph"]))


def rows_frame(records: Sequence[dict[str, Any]]):
    """All rows of ``records`` as one pandas DataFrame with ``graph`` and ``num_nodes`` columns."""
    import pandas as pd

    frames = [pd.DataFrame(r["rows"]).assign(graph=r["graph"], num_nodes=r["num_nodes"]) for r in records]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def markdown_table(record: dict[str, Any]) -> str:
    """A markdown table of one record: median (p10-p90) ms and peak memory per model x batch size."""
    sizes = sorted({r["batch_size"] for r in record["rows"]})
    header = "| model | gather | " + " | ".join(
        ("all" if any(r["all_nodes"] and r["batch_size"] == s for r in record["rows"]) else str(s))
        for s in sizes) + " |"
    lines = [header, "|" + "---|" * (len(sizes) + 2)]
    keys = list(dict.fromkeys((r["model"], r["gather"]) for r in record["rows"]))
    cell = {(r["model"], r["gather"], r["batch_size"]): r for r in record["rows"]}
    for model, gather in keys:
        parts = []
        for size in sizes:
            row = cell.get((model, gather, size))
            parts.append("" if row is None else
                         f"{row['median_ms']:.3g} ms ({row['p10_ms']:.3g}-{row['p90_ms']:.3g}); "
                         f"{_mib(row['peak_mem_bytes'])}")
        lines.append(f"| {model} | {gather} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


def _mib(nbytes: int | None) -> str:
    if nbytes is None:
        return "mem n/a"
    return f"{nbytes / 2**20:.3g} MiB"
