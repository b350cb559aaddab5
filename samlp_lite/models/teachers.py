"""GNN teachers (GCN, GraphSAGE, GAT, APPNP) from PyG's own models, behind one interface.

Every teacher maps ``(x, edge_index) -> logits [N, C]``. Small graphs train full-batch;
large ones (``batch_size > 0``) train on ``NeighborLoader`` mini-batches and predict with
layer-wise full-neighbour inference.
"""
from __future__ import annotations

import difflib
import warnings
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import APPNP, GCNConv, SAGEConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.models import GCN, MLP, GraphSAGE
from torch_geometric.utils import coalesce, to_torch_csr_tensor

from samlp_lite.config import RunConfig
from samlp_lite.data.features import feature_dropout, to_model_features
from samlp_lite.data.sampling import InNeighbors, layerwise_inference, sample_in_edges
from samlp_lite.models.attention import AttentionGraph, FusedGAT
from samlp_lite.models.sparse_ops import spmm

_NORMS = {"none": None, "batch": "batch_norm", "layer": "layer_norm"}


class SymmetricProduct:
    """Mixin for a PyG convolution: its full-batch sparse product goes through
    :func:`~samlp_lite.models.sparse_ops.spmm` (a cheap backward pass on undirected graphs)."""

    def message_and_aggregate(self, adj_t, x):  # noqa: D102
        return spmm(adj_t, x[0] if isinstance(x, tuple) else x, reduce=self.aggr)


class SparseAwareSAGEConv(SymmetricProduct, SAGEConv):
    """PyG's ``SAGEConv`` (mean aggregation) that also accepts sparse CSR features.

    Mean aggregation and the linear map commute, so for sparse ``x`` the neighbour features
    are projected first (``x W_l``, a sparse matmul) and then averaged: same result, without
    densifying a bag-of-words matrix.
    """

    def forward(self, x, edge_index, size=None):  # noqa: D102
        if not isinstance(x, Tensor) or x.layout != torch.sparse_csr:
            return super().forward(x, edge_index, size)
        projected = F.linear(x, self.lin_l.weight)
        out = self.propagate(edge_index, x=(projected, projected), size=size)
        if self.lin_l.bias is not None:
            out = out + self.lin_l.bias
        if self.root_weight:
            out = out + self.lin_r(x)
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out


class SparseAwareGraphSAGE(GraphSAGE):
    """PyG's ``GraphSAGE`` built from :class:`SparseAwareSAGEConv` layers."""

    def init_conv(self, in_channels, out_channels, **kwargs):  # noqa: D102
        return SparseAwareSAGEConv(in_channels, out_channels, **kwargs)


class SymmetricGCNConv(SymmetricProduct, GCNConv):
    """PyG's ``GCNConv`` with :class:`SymmetricProduct`."""


class SymmetricGCN(GCN):
    """PyG's ``GCN`` built from :class:`SymmetricGCNConv` layers."""

    def init_conv(self, in_channels, out_channels, **kwargs):  # noqa: D102
        return SymmetricGCNConv(in_channels, out_channels, **kwargs)


class SymmetricAPPNP(SymmetricProduct, APPNP):
    """PyG's ``APPNP`` propagation with :class:`SymmetricProduct`."""


class APPNPNet(nn.Module):
    """APPNP: an MLP predicts, PyG's ``APPNP`` layer propagates (personalised PageRank).

    Args:
        in_channels, hidden_channels, out_channels: layer widths.
        num_layers: layers of the MLP.
        dropout: MLP dropout.
        k: propagation steps. alpha: teleport probability.
        normalize: let the APPNP layer normalise the adjacency (``False`` when the caller
            passes a pre-normalised sparse adjacency, see :meth:`Teacher.prepare_graph`).
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int,
                 dropout: float, k: int, alpha: float, norm: str | None = None, normalize: bool = True):
        super().__init__()
        self.mlp = MLP(in_channels=in_channels, hidden_channels=hidden_channels,
                       out_channels=out_channels, num_layers=num_layers, dropout=dropout, norm=norm)
        self.propagate = SymmetricAPPNP(K=k, alpha=alpha, normalize=normalize)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:  # noqa: D102
        return self.propagate(self.mlp(x), edge_index)

    @torch.no_grad()
    def inference(self, x: Tensor, edge_index: Tensor, chunk_size: int = 65536) -> Tensor:
        """Full-graph prediction with the MLP applied in chunks of nodes."""
        parts = [self.mlp(x[i:i + chunk_size]) for i in range(0, x.shape[0], chunk_size)]
        return self.propagate(torch.cat(parts), edge_index)


class Teacher(nn.Module):
    """A GNN teacher: input dropout on (possibly sparse) features, then a PyG model.

    One subclass per GNN (:class:`GCNTeacher`, :class:`SAGETeacher`, :class:`GATTeacher`,
    :class:`APPNPTeacher`) says how it is built and how it reads a graph; the training loop,
    the soft-label cache and the servers only use this interface.

    Args:
        gnn: the wrapped PyG model.
        input_dropout: dropout on the input features.
        prenormalized: the model expects :meth:`prepare_graph`'s sparse adjacency (full-batch
            mode) rather than a raw ``edge_index`` (mini-batch mode).
    """

    name: ClassVar[str]
    edge_weighted: ClassVar[bool] = False
    """Whether the convolutions take GCN-normalised ``edge_weight`` (GCN)."""
    bipartite: ClassVar[bool] = False
    """Whether a convolution accepts a ``(source, target)`` feature pair (SAGE, GAT)."""
    mean_aggregation: ClassVar[bool] = False
    """Whether a layer averages its in-neighbours (SAGE), which servers may compute as a sparse matmul."""
    attention: ClassVar[bool] = False
    """Whether edge weights are computed per target (GAT), so all-node inference goes by target chunks."""

    def __init__(self, gnn: nn.Module, input_dropout: float = 0.0, prenormalized: bool = False):
        super().__init__()
        self.gnn, self.input_dropout = gnn, input_dropout
        self.prenormalized = prenormalized

    @classmethod
    def build_gnn(cls, common: dict, config: RunConfig, prenormalized: bool) -> nn.Module:
        """The PyG model from ``common`` (widths, layers, dropout, norm) and the config."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, num_features: int, num_classes: int, config: RunConfig,
                    input_dropout: float | None = None) -> "Teacher":
        """Build from the config keys ``hidden``, ``num_layers``, ``dropout``, ``norm`` and the
        model's own (``heads``, ``appnp_k``, ``appnp_alpha``); ``batch_size == 0`` is full-batch."""
        prenormalized = config.batch_size <= 0
        common = dict(in_channels=num_features, hidden_channels=config.hidden, num_layers=config.num_layers,
                      out_channels=num_classes, dropout=config.dropout, norm=_NORMS[config.norm])
        gnn = cls.build_gnn(common, config, prenormalized)
        return cls(gnn, config.dropout if input_dropout is None else input_dropout, prenormalized)

    def forward(self, x: Tensor, graph: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """Logits for the nodes of ``graph`` (see :meth:`prepare_graph`); ``edge_weight`` is GCN's only."""
        x = feature_dropout(x, self.input_dropout, self.training)
        return self.gnn(x, graph)

    def minibatch_graph(self, edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor | None]:
        """``(edge_index, edge_weight)`` for a sampled subgraph: GCN normalises it, others use it raw."""
        return edge_index, None

    def uses_sparse_adjacency(self) -> bool:
        """Whether :meth:`prepare_graph` gives a sparse CSR matrix (full-batch) rather than ``edge_index``."""
        return self.prenormalized

    def adjacency_weights(self, edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor | None]:
        """Edges and weights of the full-batch sparse adjacency (GCN and APPNP normalise)."""
        return edge_index, None

    def prepare_graph(self, edge_index: Tensor, num_nodes: int) -> Tensor:
        """What :meth:`forward` takes as its graph argument for a whole graph.

        Full-batch GCN and APPNP get the GCN-normalised adjacency (self-loops added) as a
        transposed sparse CSR matrix, computed once; GraphSAGE the 0/1 transposed CSR
        (sparse matmul beats scatter on CPU); GAT an :class:`~samlp_lite.models.attention.AttentionGraph`;
        mini-batch models the ``edge_index``.
        """
        if not self.uses_sparse_adjacency():
            return edge_index
        edge_index, weight = self.adjacency_weights(edge_index, num_nodes)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
            warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
            return to_torch_csr_tensor(edge_index.flip(0), weight, size=(num_nodes, num_nodes))

    def virtual_forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> Tensor:
        """Logits of every node of a graph with weighted edges (:meth:`predict_virtual`'s graph)."""
        return self.gnn(x, coalesce(edge_index, num_nodes=num_nodes).to(x.device))

    @torch.no_grad()
    def predict_virtual(self, data: Data, nodes: Tensor, perm: Tensor, mu: Tensor | float,
                        features: Tensor | None = None) -> Tensor:
        """Logits ``[B, C]`` for virtual nodes that mix the neighbourhoods of ``nodes`` and ``nodes[perm]``.

        Virtual node k receives the in-edges of ``nodes[k]`` with weight ``mu_k`` and those of
        ``nodes[perm[k]]`` with weight ``1 - mu_k``, and has features ``features[k]`` (default
        ``x[nodes[k]]``). It has no out-edges, so real nodes are unaffected. GCN and APPNP use
        the weights in their normalisation; GraphSAGE and GAT, whose PyG layers take no edge
        weights, see the unweighted union of both neighbourhoods.
        """
        self.eval()
        device = next(self.parameters()).device
        num_nodes, batch = data.num_nodes, nodes.numel()
        mu = torch.as_tensor(mu, dtype=torch.float32).expand(batch).cpu()
        graph = InNeighbors.from_edge_index(data.edge_index, num_nodes)
        sources, weights, targets = [], [], []
        for partner, weight in ((nodes.cpu(), mu), (nodes.cpu()[perm.cpu()], 1.0 - mu)):
            src, position, _ = sample_in_edges(graph, partner, -1)
            sources.append(src)
            weights.append(weight[position])
            targets.append(num_nodes + position)
        edge_index = torch.cat([data.edge_index, torch.stack([torch.cat(sources), torch.cat(targets)])], dim=1)
        edge_weight = torch.cat([torch.ones(data.edge_index.shape[1]), torch.cat(weights)])
        x_virtual = features if features is not None else data.x[nodes.cpu()]
        x = torch.cat([data.x, x_virtual.to(data.x.dtype)]).to(device)
        return self.virtual_forward(x, edge_index, edge_weight, num_nodes + batch)[num_nodes:].cpu()

    def layerwise_logits(self, data: Data, batch_size: int, device: torch.device, progress: bool) -> Tensor:
        """Mini-batch models' full-graph prediction: PyG's layer-wise full-neighbour inference."""
        edge_index, edge_weight = self.minibatch_graph(data.edge_index, data.num_nodes)
        return layerwise_inference(self.gnn, data.x, edge_index, batch_size, edge_weight=edge_weight,
                                   device=device, progress=progress)

    @torch.no_grad()
    def predict_all(self, data: Data, *, batch_size: int = 0, sparse_features: str = "auto",
                    progress: bool = False, device: torch.device | None = None) -> Tensor:
        """Logits ``[N, C]`` for every node of ``data`` (full graph, no sampling).

        With ``batch_size > 0`` message-passing models run PyG's layer-wise full-neighbour
        inference, which keeps memory at one layer of embeddings.
        """
        self.eval()
        device = device or next(self.parameters()).device
        if batch_size <= 0 or self.prenormalized:
            x = to_model_features(data.x, sparse_features).to(device)
            return self(x, self.prepare_graph(data.edge_index, data.num_nodes).to(device)).cpu()
        return self.layerwise_logits(data, batch_size, device, progress)


def _gcn_normalized(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int) -> tuple[Tensor, Tensor]:
    return gcn_norm(edge_index, edge_weight, num_nodes, add_self_loops=True)


class GCNTeacher(Teacher):
    """GCN (Kipf and Welling, 2017): PyG's ``GCN`` on an explicitly normalised graph."""

    name = "gcn"
    edge_weighted = True

    @classmethod
    def build_gnn(cls, common: dict, config: RunConfig, prenormalized: bool) -> nn.Module:  # noqa: D102
        return SymmetricGCN(**common, normalize=False)

    def forward(self, x: Tensor, graph: Tensor, edge_weight: Tensor | None = None) -> Tensor:  # noqa: D102
        x = feature_dropout(x, self.input_dropout, self.training)
        return self.gnn(x, graph, edge_weight=edge_weight)

    def minibatch_graph(self, edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor | None]:  # noqa: D102
        return _gcn_normalized(edge_index, None, num_nodes)

    def uses_sparse_adjacency(self) -> bool:  # noqa: D102
        return True

    def adjacency_weights(self, edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor | None]:  # noqa: D102
        return _gcn_normalized(edge_index, None, num_nodes)

    def virtual_forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> Tensor:  # noqa: D102
        edge_index, edge_weight = _gcn_normalized(edge_index, edge_weight, num_nodes)
        return self.gnn(x, edge_index.to(x.device), edge_weight=edge_weight.to(x.device))


class SAGETeacher(Teacher):
    """GraphSAGE (Hamilton et al., 2017) with mean aggregation, sparse features allowed."""

    name = "sage"
    bipartite = True
    mean_aggregation = True

    @classmethod
    def build_gnn(cls, common: dict, config: RunConfig, prenormalized: bool) -> nn.Module:  # noqa: D102
        return SparseAwareGraphSAGE(**common)



class GATTeacher(Teacher):
    """GAT (Velickovic et al., 2018): PyG's ``GAT`` with ``heads`` attention heads, whose full-batch
    attention sums run as sparse products (:class:`~samlp_lite.models.attention.FusedGATConv`)."""

    name = "gat"
    bipartite = True
    attention = True

    @classmethod
    def build_gnn(cls, common: dict, config: RunConfig, prenormalized: bool) -> nn.Module:  # noqa: D102
        if config.hidden % config.heads:
            raise ValueError(f"GAT needs hidden ({config.hidden}) divisible by heads ({config.heads})")
        return FusedGAT(**common, heads=config.heads)

    def uses_sparse_adjacency(self) -> bool:  # noqa: D102
        return False

    def prepare_graph(self, edge_index: Tensor, num_nodes: int) -> Tensor | AttentionGraph:
        """Full-batch: the :class:`~samlp_lite.models.attention.AttentionGraph` (self-loops added,
        sorted once); mini-batch models read the ``edge_index``."""
        return AttentionGraph.from_edge_index(edge_index, num_nodes) if self.prenormalized else edge_index


class APPNPTeacher(Teacher):
    """APPNP (Gasteiger et al., 2019): an MLP predicts, personalised PageRank propagates."""

    name = "appnp"
    edge_weighted = True

    @classmethod
    def build_gnn(cls, common: dict, config: RunConfig, prenormalized: bool) -> nn.Module:  # noqa: D102
        return APPNPNet(common["in_channels"], config.hidden, common["out_channels"], config.num_layers,
                        config.dropout, config.appnp_k, config.appnp_alpha, common["norm"],
                        normalize=not prenormalized)

    def adjacency_weights(self, edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor | None]:  # noqa: D102
        return _gcn_normalized(edge_index, None, num_nodes)

    def virtual_forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> Tensor:  # noqa: D102
        device = x.device
        if not self.prenormalized:
            return self.gnn.propagate(self.gnn.mlp(x), edge_index.to(device), edge_weight.to(device))
        edge_index, edge_weight = _gcn_normalized(edge_index, edge_weight, num_nodes)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse")
            adj = to_torch_csr_tensor(edge_index.flip(0), edge_weight, size=(num_nodes, num_nodes))
        return self.gnn.propagate(self.gnn.mlp(x), adj.to(device))

    def layerwise_logits(self, data: Data, batch_size: int, device: torch.device, progress: bool) -> Tensor:  # noqa: D102
        return self.gnn.inference(data.x.to(device), data.edge_index.to(device)).cpu()


TEACHER_CLASSES: dict[str, type[Teacher]] = {cls.name: cls for cls in (GCNTeacher, SAGETeacher, GATTeacher,
                                                                       APPNPTeacher)}
"""The teacher class of each GNN name; :mod:`samlp_lite.models.registry` declares them as models."""
TEACHERS = tuple(TEACHER_CLASSES)


def build_teacher(name: str, num_features: int, num_classes: int, config: RunConfig,
                  input_dropout: float | None = None) -> Teacher:
    """Build the teacher ``name`` (``gcn``, ``sage``, ``gat`` or ``appnp``); see :meth:`Teacher.from_config`."""
    if name not in TEACHER_CLASSES:
        close = difflib.get_close_matches(name, TEACHERS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown teacher {name!r}; choose one of {list(TEACHERS)}.{hint}")
    return TEACHER_CLASSES[name].from_config(num_features, num_classes, config, input_dropout)
