"""Training students: label-only baselines, GLNN-style KD and SA-MLP with structure-mixing KD."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from samlp_lite.config import RunConfig
from samlp_lite.data.adjacency import AdjacencyBatch, AdjacencyRows
from samlp_lite.data.features import select_rows, to_model_features
from samlp_lite.models.registry import (
    build_adjacency,
    make_student,
    model_spec,
    uses_teacher,
)
from samlp_lite.models.students import SAMLP
from samlp_lite.runtime import pick_device, seed_everything
from samlp_lite.train.loop import FitResult, fit_with_early_stopping
from samlp_lite.train.losses import (
    combined_loss,
    draw_mixing,
    label_loss,
    mixing_kd_loss,
    teacher_probabilities,
)
from samlp_lite.train.metrics import accuracy, score, split_metrics

if TYPE_CHECKING:
    from samlp_lite.data import GraphData
    from samlp_lite.train.soft_labels import TeacherOutputs

VirtualTargetFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``(batch_nodes, perm, mu) -> [B, C]`` teacher probabilities for virtual nodes (``mix_target=teacher``)."""


@dataclass
class TrainedStudent:
    """A trained student and its predictions on the training graph.

    Attributes:
        model: best-validation weights loaded, eval mode.
        logits: ``[N, C]`` logits of every node of the training graph.
        val_acc, test_acc: accuracies on the split.
        fit: early-stopping record (loss and validation curves in ``fit.history``).
        adjacency: the adjacency rows the student reads (``None`` for MLPs).
        features: the features as fed to the model (dense or sparse CSR).
    """

    model: nn.Module
    logits: Tensor
    val_acc: float
    test_acc: float
    fit: FitResult
    adjacency: AdjacencyRows | None
    features: Tensor


@torch.no_grad()
def predict(model: nn.Module, features: Tensor, adjacency: AdjacencyRows | None,
            nodes: Tensor | None = None, chunk_size: int = 65536) -> Tensor:
    """Student logits for ``nodes`` (default all) in chunks, on the model's device, returned on CPU."""
    model.eval()
    device = next(model.parameters()).device
    num_nodes = features.shape[0]
    nodes = torch.arange(num_nodes) if nodes is None else nodes
    parts = []
    for start in range(0, nodes.numel(), chunk_size):
        batch = nodes[start:start + chunk_size]
        x = select_rows(features, batch.to(features.device)).to(device)
        adj = adjacency.gather(batch.to(adjacency.rowptr.device)).to(device) if adjacency is not None else None
        parts.append(model(x, adj).cpu())
    return torch.cat(parts) if parts else torch.empty(0)


def _batch_loss(name: str, model: nn.Module, x: Tensor, adj: AdjacencyBatch | None, y: Tensor,
                label_mask: Tensor, probs: Tensor | None, config: RunConfig, generator: torch.Generator,
                nodes: Tensor, virtual_target: VirtualTargetFn | None) -> Tensor:
    if not uses_teacher(name):
        logits = model(x, adj)
        return label_loss(logits[label_mask], y[label_mask]) if label_mask.any() else logits.sum() * 0.0
    if not isinstance(model, SAMLP) or config.beta == 0:
        return combined_loss(model(x, adj), probs, y, lam=config.lam, tau=config.tau, label_mask=label_mask)
    structure_pre = model.structure_preactivation(adj) if model.use_structure else None
    feature_pre = model.feature_preactivation(x) if model.use_features else None
    loss = combined_loss(model.decode(structure_pre, feature_pre), probs, y, lam=config.lam, tau=config.tau,
                         label_mask=label_mask)
    perm, mu = draw_mixing(nodes.numel(), config.mix_a, config.mix_per_sample, generator, device=probs.device)
    target = None
    if config.mix_target == "teacher":
        if virtual_target is None:
            raise ValueError("mix_target=teacher needs the teacher model; train through "
                             "samlp_lite.runs.experiment.run_student, which supplies it")
        target = virtual_target(nodes, perm, mu)
    return loss + config.beta * mixing_kd_loss(model, x, adj, probs, config.tau, perm, mu, config.mix_features,
                                               target, structure_pre=structure_pre, feature_pre=feature_pre)


def train_student(name: str, data: Data, train_idx: Tensor, val_idx: Tensor, test_idx: Tensor, num_classes: int,
                  config: RunConfig, teacher_logits: Tensor | None = None, *,
                  virtual_target: VirtualTargetFn | None = None, device: torch.device | str | None = None,
                  progress: bool = True, desc: str | None = None, metric: str = "accuracy") -> TrainedStudent:
    """Train a student with early stopping on validation accuracy.

    Transductively the KD term runs over every node of ``data`` (the observed graph in the
    inductive setting); the label term over ``train_idx``.

    Args:
        name: ``mlp``, ``glnn``, ``linkx``, ``sa-mlp``, ``sa-mlp-nomix`` or an ``sa-mlp-*`` ablation.
        data: graph with ``x``, ``y``, ``edge_index``.
        train_idx, val_idx, test_idx: split node ids.
        num_classes: C.
        config: resolved config (``lam``, ``tau``, ``beta``, ``mix_*``, ``batch_size``...).
        teacher_logits: ``[N, C]``, required by GLNN and SA-MLP.
        virtual_target: teacher predictions on virtual nodes, for ``mix_target=teacher``.
        device: ``None`` picks CUDA when present.
        progress: progress bar.
        desc: progress-bar label.
        metric: ``accuracy`` or ``roc_auc``: what selects the best epoch.
    """
    seed_everything(config.seed)
    device = pick_device(device if device is not None else config.device)
    num_nodes = data.num_nodes
    if uses_teacher(name):
        if teacher_logits is None:
            raise ValueError(f"student {name!r} learns from a teacher: pass teacher_logits [N, C]")
        if tuple(teacher_logits.shape) != (num_nodes, num_classes):
            raise ValueError(f"teacher_logits has shape {tuple(teacher_logits.shape)}, "
                             f"expected ({num_nodes}, {num_classes}) for this graph")
    model = make_student(name, data.num_features, num_classes, num_nodes, config).to(device)
    adjacency = build_adjacency(data.edge_index, num_nodes, config) if model_spec(name).reads_structure else None
    features = to_model_features(data.x, config.sparse_features)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    y = data.y.to(device)
    is_train = torch.zeros(num_nodes, dtype=torch.bool)
    is_train[train_idx] = True
    is_train = is_train.to(device)
    probs = teacher_probabilities(teacher_logits.to(device), config.tau) if teacher_logits is not None else None
    loss_nodes = torch.arange(num_nodes) if uses_teacher(name) else train_idx.cpu()
    full_batch = config.batch_size <= 0 or config.batch_size >= loss_nodes.numel()
    if full_batch:
        x_all = select_rows(features, loss_nodes).to(device)
        adj_all = adjacency.gather(loss_nodes).to(device) if adjacency is not None else None
    adjacency_device = adjacency.to(device) if adjacency is not None else None

    def run_batch(nodes: Tensor, x: Tensor, adj: AdjacencyBatch | None) -> Tensor:
        nodes_d = nodes.to(device)
        return _batch_loss(name, model, x, adj, y[nodes_d], is_train[nodes_d],
                           probs[nodes_d] if probs is not None else None, config, generator, nodes_d, virtual_target)

    def train_epoch(epoch: int) -> float:
        if full_batch:
            optimizer.zero_grad()
            loss = run_batch(loss_nodes, x_all, adj_all)
            loss.backward()
            optimizer.step()
            return loss.item()
        order = loss_nodes[torch.randperm(loss_nodes.numel(), generator=torch.Generator().manual_seed(
            config.seed * 100003 + epoch))]
        total = 0.0
        for start in range(0, order.numel(), config.batch_size):
            nodes = order[start:start + config.batch_size]
            optimizer.zero_grad()
            adj = adjacency.gather(nodes).to(device) if adjacency is not None else None
            loss = run_batch(nodes, select_rows(features, nodes).to(device), adj)
            loss.backward()
            optimizer.step()
            total += loss.item() * nodes.numel()
        return total / order.numel()

    def validate() -> float:
        logits = predict(model, features, adjacency_device, val_idx.cpu())
        return score(logits, data.y[val_idx.cpu()], metric)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        fit = fit_with_early_stopping(model, train_epoch, validate, max_epochs=config.max_epochs,
                                      patience=config.patience, eval_every=config.eval_every,
                                      progress=progress, desc=desc or f"student {name}")
        logits = predict(model, features, adjacency_device)
    return TrainedStudent(model=model, logits=logits, val_acc=accuracy(logits[val_idx.cpu()], data.y[val_idx.cpu()]),
                          test_acc=accuracy(logits[test_idx.cpu()], data.y[test_idx.cpu()]), fit=fit,
                          adjacency=adjacency, features=features)


def train_student_on_split(graph: "GraphData", student: str, split: int, config: RunConfig,
                           outputs: "TeacherOutputs | None", *, device: torch.device | str | None = None,
                           progress: bool = True, desc: str | None = None, teacher: nn.Module | None = None) -> dict:
    """Train a student on one transductive split; returns ``val_acc``, ``test_acc``, ``best_epoch``.

    ``teacher`` (the trained GNN) is needed only for ``mix_target=teacher``.
    """
    s = graph.split(split)
    virtual = virtual_target_from_teacher(teacher, graph.data, config) if config.mix_target == "teacher" else None
    trained = train_student(student, graph.data, s.train, s.val, s.test, graph.num_classes, config,
                            outputs.logits if outputs is not None else None, virtual_target=virtual, device=device,
                            progress=progress, desc=desc, metric=graph.metric)
    return {**split_metrics(graph, split, trained.logits), "best_epoch": trained.fit.best_epoch}


def virtual_target_from_teacher(teacher: nn.Module | None, data: Data, config: RunConfig) -> VirtualTargetFn:
    """``mix_target=teacher``: the teacher's soft labels on virtual nodes that mix two neighbourhoods."""
    if teacher is None:
        raise ValueError("mix_target=teacher needs the trained teacher model (get_teacher_outputs(need_model=True) "
                         "and samlp_lite.train.soft_labels.load_teacher_model)")

    def target(nodes: Tensor, perm: Tensor, mu: Tensor) -> Tensor:
        features = None
        if config.mix_features:
            weight = torch.as_tensor(mu, dtype=data.x.dtype).cpu().reshape(-1, 1)
            features = weight * data.x[nodes.cpu()] + (1 - weight) * data.x[nodes.cpu()[perm.cpu()]]
        logits = teacher.predict_virtual(data, nodes, perm, mu, features)
        return teacher_probabilities(logits, config.tau).to(nodes.device)

    return target
