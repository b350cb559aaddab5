"""Model servers: logits for target nodes from a :class:`~samlp_lite.gathering.GraphStore` (METHOD.md 6).

What a server does for one batch is gather the data its model needs, then run the forward
pass under ``torch.inference_mode``; :mod:`samlp_lite.bench` times exactly that.

- GNN teachers (``sage``, ``gcn``, ``gat`` from :func:`samlp_lite.teachers.build_teacher`):
  the k-hop in-neighbourhood of the targets, all neighbours (``gather="full"``) or up to
  ``fanouts`` per hop (``"sampled"``, the package sampler's semantics and draws), the
  features of every node in it, then PyG's convs, each computing outputs only for the nodes
  the next layer needs. For *all* nodes a k-hop tree is pointless: the ``full`` server runs
  full-graph layer-wise inference on the stored CSR (see :class:`TeacherServer`); there is no
  sampled all-node server.
- ``mlp`` (MLP/GLNN): the targets' feature rows, then the layers.
- ``sa-mlp`` and ``linkx``: feature rows plus adjacency rows (1-hop neighbour ids only); the
  ``W_A a_i`` product is an ``embedding_bag`` over the neighbour ids.

Student servers run a fused path (:class:`MLPServer`, :class:`SAMLPServer`,
:class:`LINKXServer`) that is tested equal to the package modules: ``index_select`` instead of
advanced indexing, no per-call validation, SA-MLP's two heads and gate folded into two small
matmuls and one ``lerp``. :func:`build_servers` makes them with random (seeded) weights:
latency and memory depend on shapes, not on weight values.
"""
from __future__ import annotations

import difflib
import warnings
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import softmax as pyg_softmax

from .config import resolve_config
from .distill import make_student
from .features import select_rows
from .gathering import GraphStore, NeighborhoodGatherer, Subgraph, gather_rows
from .sampling import between_layers
from .structure import AdjacencyBatch, AdjacencyRows
from .students import MLP, SAMLP, LINKXStudent, count_parameters
from .teachers import Teacher, build_teacher

TEACHER_MODELS = ("sage", "gcn", "gat")
"""GNN teachers a server can serve (from :func:`samlp_lite.teachers.build_teacher`)."""
STUDENT_MODELS = ("mlp", "linkx", "sa-mlp")
"""Students (``mlp`` also stands for GLNN: same network, different training)."""
MODELS = TEACHER_MODELS + STUDENT_MODELS
"""Every model name :func:`build_servers` takes, teachers first."""
GATHERS: dict[str, tuple[str, ...]] = {
    **{name: ("full", "sampled") for name in TEACHER_MODELS},
    "mlp": ("features",), "linkx": ("adjacency-rows",), "sa-mlp": ("adjacency-rows",),
}
"""Gather modes per model (teachers read a k-hop neighbourhood, students rows of the store)."""
LAYERWISE_CHUNK = 65536
"""Target nodes per chunk of GAT's all-node inference."""


def check_models(names: Iterable[str]) -> list[str]:
    """Return ``names`` if each is one of :data:`MODELS`; else raise ValueError naming the valid ones."""
    names = list(names)
    for name in names:
        if name not in MODELS:
            close = difflib.get_close_matches(name, list(MODELS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown model {name!r}; choose from {list(MODELS)}.{hint}")
    return names


# --------------------------------------------------------------------------- servers

class Server:
    """Logits for target nodes from a :class:`~samlp_lite.gathering.GraphStore`: ``gather`` then ``forward``.

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


class TeacherServer(Server):
    """A GNN teacher served from its k-hop neighbourhood (see the module docstring).

    Batches: the k-hop neighbourhood by :class:`~samlp_lite.gathering.NeighborhoodGatherer`,
    then one PyG conv per layer that computes outputs only for the nodes the next layer needs
    (SAGE and GAT as bipartite ``(source, target)`` convs; a SAGE layer that narrows (d > h)
    projects before averaging, see ``_projects_first``). All nodes (``gather="full"`` only): full-graph
    layer-wise inference on the stored CSR, no gathering: SAGE as ``D^-1 A (X W_l) + X W_r + b``
    when it narrows (the sparse matmul then moves h instead of d columns), GCN as
    ``D^-1/2 (A + I) D^-1/2 X W`` with the same sparse matrix, GAT's attention over chunks of
    target nodes (so the per-edge messages never exist for the whole graph at once). Tests
    assert each equals the teacher's full-graph forward.

    Args:
        teacher: built by :func:`~samlp_lite.teachers.build_teacher` for mini-batches
            (``batch_size > 0``), so it reads ``edge_index`` (GCN: with normalised ``edge_weight``).
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
            x = between_layers(self.gnn, layer, out)
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
                x = between_layers(self.gnn, layer, self._all_nodes_layer(self.gnn.convs[layer], x))
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

