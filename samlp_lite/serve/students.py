"""Model servers: logits for target nodes from a :class:`~samlp_lite.serve.store.GraphStore`.

What a server does for one batch is gather the data its model needs, then run the forward
pass under ``torch.inference_mode``; :mod:`samlp_lite.serve.bench` times exactly that.

- GNN teachers (``sage``, ``gcn``, ``gat`` from :func:`samlp_lite.models.teachers.build_teacher`):
  the k-hop in-neighbourhood of the targets, all neighbours (``gather="full"``) or up to
  ``fanouts`` per hop (``"sampled"``, the package sampler's semantics and draws), the
  features of every node in it, then PyG's convs, each computing outputs only for the nodes
  the next layer needs. For *all* nodes a k-hop tree is pointless: the ``full`` server runs
  full-graph layer-wise inference on the stored CSR (see
  :class:`~samlp_lite.serve.teachers.TeacherServer`); there is no sampled all-node server.
- ``mlp`` (MLP/GLNN): the targets' feature rows, then the layers.
- ``sa-mlp`` and ``linkx``: feature rows plus adjacency rows (1-hop neighbour ids only); the
  ``W_A a_i`` product is an ``embedding_bag`` over the neighbour ids.
- ``structure-lookup`` (:class:`StructureLookupServer`): SA-MLP's structure lookup alone, the
  adjacency rows and their ``embedding_bag`` with SA-MLP's ``W_A``, no features, no heads. With
  ``mlp`` (the feature lookup plus an MLP) it makes SA-MLP's latency floor: the sum of its two
  parts timed alone (:func:`samlp_lite.serve.bench.summarize` reports SA-MLP over it).

Student servers run a fused path (:class:`MLPServer`, :class:`SAMLPServer`,
:class:`LINKXServer`) that is tested equal to the package modules: ``index_select`` instead of
advanced indexing, no per-call validation, SA-MLP's two heads and gate folded into two small
matmuls and one ``lerp``. :func:`build_servers` makes them with random (seeded) weights:
latency and memory depend on shapes, not on weight values.

Every server subclasses :class:`~samlp_lite.serve.base.Server`; the teachers' server lives in
:mod:`samlp_lite.serve.teachers`. Both are re-exported here (``samlp_lite.serve.students.Server``,
``samlp_lite.serve.students.TeacherServer``), so callers import servers from this module.
"""
from __future__ import annotations

import difflib
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samlp_lite.config import resolve_config
from samlp_lite.data.adjacency import AdjacencyBatch, AdjacencyRows
from samlp_lite.data.features import select_rows
from samlp_lite.models.registry import make_student, model_spec
from samlp_lite.models.students import MLP, SAMLP, LINKXStudent
from samlp_lite.models.teachers import build_teacher
from samlp_lite.serve import FLOOR_MODELS, MODELS, STUDENT_MODELS, TEACHER_MODELS  # noqa: E402,F401 (re-exported)
from samlp_lite.serve.base import Server
from samlp_lite.serve.store import GraphStore, gather_rows
from samlp_lite.serve.teachers import LAYERWISE_CHUNK, TeacherServer  # noqa: F401 (LAYERWISE_CHUNK is re-exported)

GATHERS: dict[str, tuple[str, ...]] = {
    **{name: ("full", "sampled") if model_spec(name).reads == "neighbourhood" else (model_spec(name).reads,)
       for name in TEACHER_MODELS + STUDENT_MODELS},
    "structure-lookup": ("adjacency-rows",),
}
"""Gather modes per model, from what the registry says it reads (teachers a k-hop
neighbourhood, in full or sampled; students rows of the store; the structure lookup SA-MLP's
adjacency rows)."""


def check_models(names: Iterable[str]) -> list[str]:
    """Return ``names`` if each is one of :data:`MODELS`; else raise ValueError naming the valid ones."""
    names = list(names)
    for name in names:
        if name not in MODELS:
            close = difflib.get_close_matches(name, list(MODELS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown model {name!r}; choose from {list(MODELS)}.{hint}")
    return names


# --------------------------------------------------------------------------- student servers

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


class AdjacencyRowServer(Server):
    """A student that reads feature rows and adjacency rows (SA-MLP, LINKX)."""

    fused: bool = False
    with_weights: bool = True

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


class SAMLPServer(AdjacencyRowServer):
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


class LINKXServer(AdjacencyRowServer):
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


class StructureLookupServer(Server):
    """SA-MLP's structure lookup alone: adjacency rows, then ``embedding_bag`` with ``W_A`` (no bias).

    No features, no heads, no gate: with :class:`MLPServer` (feature rows and an MLP) it is one of
    the two parts whose summed latency is SA-MLP's floor. ``W_A`` has SA-MLP's shape (N x hidden).
    """

    model_name, gather_name, impl = "structure-lookup", "adjacency-rows", "fused"

    def __init__(self, table: nn.EmbeddingBag, store: GraphStore) -> None:
        super().__init__(table, store)
        self.table = table.weight.detach()
        self.with_weights = not _unit_weights(store.adjacency)

    def gather(self, targets: Tensor) -> tuple:  # noqa: D102
        return (gather_rows(self.store.adjacency, targets, self.with_weights),)

    def gather_all(self) -> tuple:  # noqa: D102
        rows = self.store.adjacency.all()
        return (rows if self.with_weights else AdjacencyBatch(rows.indices, rows.offsets, None),)

    def forward(self, adj: AdjacencyBatch) -> Tensor:  # noqa: D102
        return F.embedding_bag(adj.indices, self.table, adj.offsets, mode="sum", per_sample_weights=adj.weights)


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
    config = resolve_config(store.name, "sa-mlp" if model_name in FLOOR_MODELS else model_name, overrides or {})
    if (config.adj_norm, config.self_loop) != (store.adjacency.adj_norm, store.adjacency.self_loop):
        raise ValueError(f"the store's adjacency rows are adj_norm={store.adjacency.adj_norm!r}, "
                         f"self_loop={store.adjacency.self_loop} but {model_name} is configured with "
                         f"adj_norm={config.adj_norm!r}, self_loop={config.self_loop}; build the "
                         "GraphStore with the config's values")
    if model_name == "structure-lookup":  # SA-MLP's W_A, initialised as SA-MLP does
        table = nn.EmbeddingBag(store.num_nodes, config.hidden, mode="sum").to(store.device)
        nn.init.uniform_(table.weight, -store.num_nodes ** -0.5, store.num_nodes ** -0.5)
        return [StructureLookupServer(table, store)]
    student = make_student(model_name, num_features, num_classes, store.num_nodes, config).to(store.device)
    server_class = {"mlp": MLPServer, "linkx": LINKXServer, "sa-mlp": SAMLPServer}[model_spec(model_name).architecture]
    return [server_class(student, store, fused=fused)]

