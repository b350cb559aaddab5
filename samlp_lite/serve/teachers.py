"""GNN teachers served from the stored graph: :class:`TeacherServer`.

Batches gather the targets' k-hop in-neighbourhood, all neighbours (``gather="full"``) or up
to ``fanouts`` per hop (``"sampled"``), then run one PyG conv per layer for the nodes the next
layer needs; all nodes run full-graph layer-wise inference on the stored CSR. Made by
:func:`samlp_lite.serve.students.build_servers`, which also re-exports it.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import softmax as pyg_softmax

from samlp_lite.data.sampling import between_layers
from samlp_lite.models.teachers import Teacher
from samlp_lite.serve.base import Server
from samlp_lite.serve.store import GraphStore, NeighborhoodGatherer, Subgraph

LAYERWISE_CHUNK = 65536
"""Target nodes per chunk of GAT's all-node inference."""


class TeacherServer(Server):
    """A GNN teacher served from its k-hop neighbourhood (see the module docstring).

    Batches: the k-hop neighbourhood by :class:`~samlp_lite.serve.store.NeighborhoodGatherer`,
    then one PyG conv per layer that computes outputs only for the nodes the next layer needs
    (SAGE and GAT as bipartite ``(source, target)`` convs; a SAGE layer that narrows (d > h)
    projects before averaging, see ``_projects_first``). All nodes (``gather="full"`` only): full-graph
    layer-wise inference on the stored CSR, no gathering: SAGE as ``D^-1 A (X W_l) + X W_r + b``
    when it narrows (the sparse matmul then moves h instead of d columns), GCN as
    ``D^-1/2 (A + I) D^-1/2 X W`` with the same sparse matrix, GAT's attention over chunks of
    target nodes (so the per-edge messages never exist for the whole graph at once). Tests
    assert each equals the teacher's full-graph forward.

    Args:
        teacher: built by :func:`~samlp_lite.models.teachers.build_teacher` for mini-batches
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
        self.is_gcn = teacher.edge_weighted
        self.bipartite = teacher.bipartite  # GCNConv takes no (source, target) pair
        self.mean_aggregation, self.attention = teacher.mean_aggregation, teacher.attention
        # GCN's full-graph normalisation (self-loops included) is part of the stored graph.
        self.inv_sqrt_degree = (store.in_degree + 1.0).pow(-0.5) if self.is_gcn else None
        self.inv_degree = store.in_degree.clamp(min=1.0).reciprocal() if self.mean_aggregation else None
        self.chunk_size = chunk_size
        self._adj_t: Tensor | None = None

    @property
    def impl_all(self) -> str:  # noqa: D102
        return "full-graph-chunked" if self.attention else "full-graph-spmm"

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
            if self.mean_aggregation and _projects_first(conv):
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
        if self.mean_aggregation:
            if not _projects_first(conv):
                return conv(x, self.adj_t)  # PyG's own sparse path
            h = F.linear(x, conv.lin_l.weight)
            return self._sage_output(conv, torch.sparse.mm(self.adj_t, h) * self.inv_degree.unsqueeze(-1), x)
        if self.is_gcn:
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
