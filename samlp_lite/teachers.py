"""GNN teachers (GCN, GraphSAGE, GAT, APPNP) from PyG's own models, behind one interface.

Every teacher maps ``(x, edge_index) -> logits [N, C]``. Small graphs train full-batch;
large ones (``batch_size > 0``) train on ``NeighborLoader`` mini-batches and predict with
layer-wise full-neighbour inference.
"""
from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import APPNP, SAGEConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.models import GAT, GCN, MLP, GraphSAGE
from torch_geometric.utils import coalesce, to_torch_csr_tensor

from .config import RunConfig
from .features import feature_dropout, to_model_features
from .sampling import InNeighbors, layerwise_inference, neighbor_batches, sample_in_edges
from .training import FitResult, accuracy, fit_with_early_stopping

TEACHERS = ("gcn", "sage", "gat", "appnp")
_NORMS = {"none": None, "batch": "batch_norm", "layer": "layer_norm"}


class SparseAwareSAGEConv(SAGEConv):
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
        self.propagate = APPNP(K=k, alpha=alpha, normalize=normalize)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:  # noqa: D102
        return self.propagate(self.mlp(x), edge_index)

    @torch.no_grad()
    def inference(self, x: Tensor, edge_index: Tensor, chunk_size: int = 65536) -> Tensor:
        """Full-graph prediction with the MLP applied in chunks of nodes."""
        parts = [self.mlp(x[i:i + chunk_size]) for i in range(0, x.shape[0], chunk_size)]
        return self.propagate(torch.cat(parts), edge_index)


class Teacher(nn.Module):
    """A GNN teacher: input dropout on (possibly sparse) features, then a PyG model.

    Args:
        name: one of ``gcn``, ``sage``, ``gat``, ``appnp``.
        gnn: the wrapped PyG model.
        input_dropout: dropout on the input features.
        prenormalized: the model expects :meth:`prepare_graph`'s sparse adjacency (full-batch
            mode) rather than a raw ``edge_index`` (mini-batch mode).
    """

    def __init__(self, name: str, gnn: nn.Module, input_dropout: float = 0.0, prenormalized: bool = False):
        super().__init__()
        self.name, self.gnn, self.input_dropout = name, gnn, input_dropout
        self.prenormalized = prenormalized

    def forward(self, x: Tensor, graph: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """Logits for the nodes of ``graph`` (see :meth:`prepare_graph`); ``edge_weight`` is GCN's only."""
        x = feature_dropout(x, self.input_dropout, self.training)
        if self.name == "gcn":
            return self.gnn(x, graph, edge_weight=edge_weight)
        return self.gnn(x, graph)

    def minibatch_graph(self, edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor | None]:
        """``(edge_index, edge_weight)`` for a sampled subgraph: GCN normalises it, others use it raw."""
        if self.name == "gcn":
            return gcn_norm(edge_index, None, num_nodes, add_self_loops=True)
        return edge_index, None

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
        total = num_nodes + batch
        if self.name == "appnp" and not self.prenormalized:
            return self.gnn.propagate(self.gnn.mlp(x), edge_index.to(device), edge_weight.to(device))[num_nodes:].cpu()
        if self.name in ("gcn", "appnp"):
            edge_index, edge_weight = gcn_norm(edge_index, edge_weight, total, add_self_loops=True)
            if self.name == "gcn":
                return self.gnn(x, edge_index.to(device), edge_weight=edge_weight.to(device))[num_nodes:].cpu()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse")
                adj = to_torch_csr_tensor(edge_index.flip(0), edge_weight, size=(total, total))
            return self.gnn.propagate(self.gnn.mlp(x), adj.to(device))[num_nodes:].cpu()
        edge_index = coalesce(edge_index, num_nodes=total)
        return self.gnn(x, edge_index.to(device))[num_nodes:].cpu()

    def prepare_graph(self, edge_index: Tensor, num_nodes: int) -> Tensor:
        """What :meth:`forward` takes as its graph argument for a whole graph.

        Full-batch GCN and APPNP get the GCN-normalised adjacency (self-loops added) as a
        transposed sparse CSR matrix, computed once; GraphSAGE the 0/1 transposed CSR
        (sparse matmul beats scatter on CPU); GAT and mini-batch models the ``edge_index``.
        """
        if self.name == "gat" or not (self.prenormalized or self.name == "gcn"):
            return edge_index
        weight = None
        if self.name in ("gcn", "appnp"):
            edge_index, weight = gcn_norm(edge_index, None, num_nodes, add_self_loops=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
            warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
            return to_torch_csr_tensor(edge_index.flip(0), weight, size=(num_nodes, num_nodes))

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
        if isinstance(self.gnn, APPNPNet):
            return self.gnn.inference(data.x.to(device), data.edge_index.to(device)).cpu()
        edge_index, edge_weight = self.minibatch_graph(data.edge_index, data.num_nodes)
        return layerwise_inference(self.gnn, data.x, edge_index, batch_size, edge_weight=edge_weight,
                                   device=device, progress=progress)


def build_teacher(name: str, num_features: int, num_classes: int, config: RunConfig,
                  input_dropout: float | None = None) -> Teacher:
    """Build a teacher from the config keys ``hidden``, ``num_layers``, ``dropout``, ``norm``,
    ``heads`` (GAT), ``appnp_k`` and ``appnp_alpha`` (APPNP).

    GCN always reads an explicitly normalised graph (:meth:`Teacher.prepare_graph` for a whole
    graph, :meth:`Teacher.minibatch_graph` for a sampled one). With ``batch_size == 0`` (full
    batch) APPNP and GraphSAGE read a sparse CSR adjacency; otherwise raw ``edge_index``.
    """
    prenormalized = config.batch_size <= 0
    if name not in TEACHERS:
        close = difflib.get_close_matches(name, TEACHERS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown teacher {name!r}; choose one of {list(TEACHERS)}.{hint}")
    common = dict(in_channels=num_features, hidden_channels=config.hidden, num_layers=config.num_layers,
                  out_channels=num_classes, dropout=config.dropout, norm=_NORMS[config.norm])
    if name == "gcn":
        gnn = GCN(**common, normalize=False)
    elif name == "sage":
        gnn = SparseAwareGraphSAGE(**common)
    elif name == "gat":
        if config.hidden % config.heads:
            raise ValueError(f"GAT needs hidden ({config.hidden}) divisible by heads ({config.heads})")
        gnn = GAT(**common, heads=config.heads)
    else:
        gnn = APPNPNet(num_features, config.hidden, num_classes, config.num_layers, config.dropout,
                       config.appnp_k, config.appnp_alpha, _NORMS[config.norm], normalize=not prenormalized)
    return Teacher(name, gnn, config.dropout if input_dropout is None else input_dropout, prenormalized)


@dataclass
class TrainedTeacher:
    """A trained teacher and what it predicts.

    Attributes:
        model: the teacher, best-validation weights loaded, in eval mode.
        logits: ``[N, C]`` logits for every node of the training graph.
        val_acc, test_acc: accuracies on the split's validation and test nodes.
        fit: the early-stopping record.
    """

    model: Teacher
    logits: Tensor
    val_acc: float
    test_acc: float
    fit: FitResult


def train_teacher(name: str, data: Data, train_idx: Tensor, val_idx: Tensor, test_idx: Tensor,
                  num_classes: int, config: RunConfig, *, device: torch.device | str | None = None,
                  progress: bool = True, desc: str | None = None) -> TrainedTeacher:
    """Train a teacher with early stopping on validation accuracy.

    Args:
        name: ``gcn``, ``sage``, ``gat`` or ``appnp``.
        data: the graph the teacher may see (``x``, ``y``, ``edge_index``).
        train_idx, val_idx, test_idx: node ids of the split, ``torch.long``.
        num_classes: number of classes.
        config: resolved config; ``batch_size > 0`` switches to NeighborLoader mini-batches.
        device: ``None`` picks CUDA when present.
        progress: show a progress bar.
        desc: progress-bar label.
    """
    from .runtime import pick_device, seed_everything

    seed_everything(config.seed)
    device = pick_device(device if device is not None else config.device)
    model = build_teacher(name, data.num_features, num_classes, config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    y = data.y.to(device)
    train_idx, val_idx = train_idx.to(device), val_idx.to(device)
    desc = desc or f"teacher {name}"

    if config.batch_size <= 0:
        x = to_model_features(data.x, config.sparse_features).to(device)
        edge_index = model.prepare_graph(data.edge_index, data.num_nodes).to(device)

        def train_epoch(epoch: int) -> float:
            optimizer.zero_grad()
            out = model(x, edge_index)
            loss = F.cross_entropy(out[train_idx], y[train_idx])
            loss.backward()
            optimizer.step()
            return loss.item()

        def validate() -> float:
            return accuracy(model(x, edge_index)[val_idx], y[val_idx])
    else:
        fanouts = list(config.fanouts)[: config.num_layers]
        in_neighbors = InNeighbors.from_edge_index(data.edge_index, data.num_nodes)

        def train_epoch(epoch: int) -> float:
            total, count = 0.0, 0
            for batch in neighbor_batches(data, train_idx.cpu(), fanouts, config.batch_size, seed=config.seed,
                                          epoch=epoch, graph=in_neighbors):
                batch = batch.to(device)
                optimizer.zero_grad()
                edge_index, edge_weight = model.minibatch_graph(batch.edge_index, batch.num_nodes)
                out = model(batch.x, edge_index, edge_weight)[: batch.batch_size]
                loss = F.cross_entropy(out, batch.y[: batch.batch_size])
                loss.backward()
                optimizer.step()
                total, count = total + loss.item() * batch.batch_size, count + batch.batch_size
            return total / max(count, 1)

        def validate() -> float:
            logits = model.predict_all(data, batch_size=4 * config.batch_size, device=device)
            return accuracy(logits[val_idx.cpu()], data.y[val_idx.cpu()])

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        fit = fit_with_early_stopping(model, train_epoch, validate, max_epochs=config.max_epochs,
                                      patience=config.patience, eval_every=config.eval_every,
                                      progress=progress, desc=desc)
        logits = model.predict_all(data, batch_size=4 * config.batch_size if config.batch_size > 0 else 0,
                                   sparse_features=config.sparse_features, device=device)
    return TrainedTeacher(model=model, logits=logits,
                          val_acc=accuracy(logits[val_idx.cpu()], data.y[val_idx.cpu()]),
                          test_acc=accuracy(logits[test_idx], data.y[test_idx]), fit=fit)
