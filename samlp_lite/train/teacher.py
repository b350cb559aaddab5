"""Training a GNN teacher: full-batch or on sampled mini-batches, with early stopping."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from samlp_lite.config import RunConfig
from samlp_lite.data.features import to_model_features
from samlp_lite.data.sampling import InNeighbors, neighbor_batches
from samlp_lite.models.teachers import Teacher, build_teacher
from samlp_lite.runtime import pick_device, seed_everything
from samlp_lite.train.loop import FitResult, fit_with_early_stopping
from samlp_lite.train.metrics import accuracy, score


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
                  progress: bool = True, desc: str | None = None, metric: str = "accuracy") -> TrainedTeacher:
    """Train a teacher with early stopping on the validation metric (accuracy, or ROC AUC).

    Args:
        name: ``gcn``, ``sage``, ``gat`` or ``appnp``.
        data: the graph the teacher may see (``x``, ``y``, ``edge_index``).
        train_idx, val_idx, test_idx: node ids of the split, ``torch.long``.
        num_classes: number of classes.
        config: resolved config; ``batch_size > 0`` switches to NeighborLoader mini-batches.
        device: ``None`` picks CUDA when present.
        progress: show a progress bar.
        desc: progress-bar label.
        metric: ``accuracy`` or ``roc_auc``: what selects the best epoch.
    """
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
            return score(model(x, edge_index)[val_idx], y[val_idx], metric)
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
            return score(logits[val_idx.cpu()], data.y[val_idx.cpu()], metric)

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
