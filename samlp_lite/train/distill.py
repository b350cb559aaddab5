"""Training students: label-only baselines, GLNN-style KD and SA-MLP with structure-mixing KD.

:func:`train_student` trains on a graph held in memory. For graphs that are not (the scale
path, :mod:`samlp_lite.runs.scale_local`), :class:`LeanBatches` reads each mini-batch's feature rows,
adjacency rows and soft labels on demand (from memory maps) and :func:`lean_epoch` /
:func:`lean_predict` run the same losses over them; :func:`make_optimizer` gives parameters
with sparse gradients (SA-MLP's ``W_A`` after :meth:`~samlp_lite.models.students.SAMLP.use_sparse_gradients`)
a sparse Adam (:class:`RowSparseAdam`), so a step touches only the rows the batch read.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

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


def sparse_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Weights of the ``Embedding``/``EmbeddingBag`` modules of ``model`` that make sparse gradients."""
    return [m.weight for m in model.modules()
            if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse and m.weight.requires_grad]


class RowSparseAdam(torch.optim.Optimizer):
    """Adam for tables with sparse row gradients (``EmbeddingBag(sparse=True)``), touching only those rows.

    The same update as ``torch.optim.SparseAdam`` ("lazy" Adam: a row's moments decay and the
    row moves only in steps whose gradient holds it; a test asserts equal results), computed
    with ``index_select`` / ``index_copy_`` / ``index_add_`` on the rows of the coalesced
    gradient, so a step reads and writes each touched row of the table and its two moments a
    few times and nothing else. Measured on a 2.45M x 128 table with 200k rows per step, one
    CPU thread, it takes about half of SparseAdam's time (whose masked sparse additions make
    more passes over those rows).

    Args:
        params: the sparse-gradient tables.
        lr, betas, eps: as Adam's (no weight decay, as SparseAdam).
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        if not lr > 0 or not eps > 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid RowSparseAdam settings lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # noqa: D102
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise RuntimeError("RowSparseAdam takes sparse gradients only; use Adam for dense parameters")
                grad = param.grad.coalesce()
                rows, values = grad.indices()[0], grad.values()
                if rows.numel() == 0:
                    continue
                state = self.state[param]
                if not state:  # the same keys as SparseAdam, so checkpoints of either load into the other
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["step"] += 1
                step = state["step"]
                exp_avg = state["exp_avg"].index_select(0, rows).mul_(beta1).add_(values, alpha=1 - beta1)
                exp_avg_sq = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(values, values,
                                                                                           value=1 - beta2)
                state["exp_avg"].index_copy_(0, rows, exp_avg)
                state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
                step_size = group["lr"] * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
                param.index_add_(0, rows, exp_avg.div_(exp_avg_sq.sqrt_().add_(group["eps"])), alpha=-step_size)
        return loss


class CombinedOptimizer:
    """Several optimisers stepped as one (``zero_grad``, ``step``, ``state_dict``, ``load_state_dict``).

    :func:`make_optimizer` returns one when a model has sparse-gradient tables:
    :class:`RowSparseAdam` for them, ``torch.optim.Adam`` for everything else.
    """

    def __init__(self, optimizers: Iterable[torch.optim.Optimizer]) -> None:
        self.optimizers = list(optimizers)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """Every optimiser's parameter groups, in order."""
        return [group for opt in self.optimizers for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:  # noqa: D102
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:  # noqa: D102
        for opt in self.optimizers:
            opt.step()

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        return {"optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: D102
        for opt, part in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(part)

    def __repr__(self) -> str:
        return f"CombinedOptimizer({', '.join(type(o).__name__ for o in self.optimizers)})"


def make_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.0, *,
                   sparse_lr: float | None = None, sparse_optimizer: str = "rows"
                   ) -> "torch.optim.Optimizer | CombinedOptimizer":
    """Adam for ``model``; with sparse-gradient tables, a sparse Adam for them and Adam for the rest.

    Without sparse parameters this is exactly ``torch.optim.Adam(model.parameters(), lr,
    weight_decay=weight_decay)``. The sparse tables get :class:`RowSparseAdam` (the update of
    ``torch.optim.SparseAdam``, faster; ``sparse_optimizer="torch"`` picks SparseAdam itself):
    both keep Adam's two moments for every row but read and write only the rows present in a
    step's gradient, and neither has weight decay, so the tables train without it
    (``weight_decay`` applies to the dense parameters).

    Args:
        model: the model.
        lr: learning rate of the dense parameters (and of the tables, unless ``sparse_lr``).
        weight_decay: Adam's weight decay on the dense parameters.
        sparse_lr: learning rate of the sparse tables (default ``lr``).
        sparse_optimizer: ``rows`` (:class:`RowSparseAdam`, default) or ``torch`` (``torch.optim.SparseAdam``).
    """
    sparse = sparse_parameters(model)
    if not sparse:
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in ids and p.requires_grad]
    if sparse_optimizer not in ("rows", "torch"):
        raise ValueError(f"sparse_optimizer must be 'rows' or 'torch', got {sparse_optimizer!r}")
    table_optimizer = RowSparseAdam if sparse_optimizer == "rows" else torch.optim.SparseAdam
    optimizers: list[torch.optim.Optimizer] = [table_optimizer(sparse, lr=sparse_lr or lr)]
    if dense:
        optimizers.append(torch.optim.Adam(dense, lr=lr, weight_decay=weight_decay))
    return CombinedOptimizer(optimizers)


@dataclass
class LeanBatches:
    """Where a memory-lean student epoch reads a batch from: callables of node ids.

    Nothing of size N x d, N x C or E is materialised by this path itself: each callable
    returns the rows of one batch (e.g. from memory-mapped float16 arrays).

    Attributes:
        features: ``nodes -> [B, d]`` float32 feature rows.
        labels: long ``[N]`` labels (only training nodes' enter the label loss).
        is_train: bool ``[N]``, the nodes whose label may be used.
        adjacency: ``nodes -> AdjacencyBatch`` (students that read structure), else ``None``.
        teacher_logits: ``nodes -> [B, C]`` float32 teacher logits (distilled students), else ``None``.
    """

    features: Callable[[Tensor], Tensor]
    labels: Tensor
    is_train: Tensor
    adjacency: Callable[[Tensor], AdjacencyBatch] | None = None
    teacher_logits: Callable[[Tensor], Tensor] | None = None


def _adjacency_to(adj: AdjacencyBatch, device: torch.device | str) -> AdjacencyBatch:
    """``adj`` on ``device``; rows without weights (0/1 adjacency) stay without."""
    weights = adj.weights.to(device) if adj.weights is not None else None
    return AdjacencyBatch(adj.indices.to(device), adj.offsets.to(device), weights)


def lean_epoch(name: str, model: nn.Module, optimizer: "torch.optim.Optimizer | CombinedOptimizer",
               source: LeanBatches, nodes: Tensor, config: RunConfig, *, epoch: int, batch_size: int,
               generator: torch.Generator | None = None, device: torch.device | str = "cpu",
               on_batch: Callable[[int, float], None] | None = None) -> float:
    """One epoch of mini-batches over ``nodes`` (shuffled by ``config.seed`` and ``epoch``); mean loss.

    The loss is :func:`train_student`'s (labels, KD, SA-MLP's structure mixing), batch by batch.
    ``on_batch(batch_nodes, loss)`` is called after each step (progress bars).
    """
    device = torch.device(device)
    generator = generator or torch.Generator(device=device).manual_seed(config.seed * 7919 + epoch)
    order = nodes[torch.randperm(nodes.numel(), generator=torch.Generator().manual_seed(
        config.seed * 100003 + epoch))]
    total = 0.0
    model.train()
    for start in range(0, order.numel(), batch_size):
        batch = order[start:start + batch_size]
        x = source.features(batch).to(device)
        adj = _adjacency_to(source.adjacency(batch), device) if source.adjacency is not None else None
        probs = None
        if source.teacher_logits is not None and uses_teacher(name):
            probs = teacher_probabilities(source.teacher_logits(batch).float().to(device), config.tau)
        batch_d = batch.to(device)
        optimizer.zero_grad()
        loss = _batch_loss(name, model, x, adj, source.labels[batch].to(device), source.is_train[batch].to(device),
                           probs, config, generator, batch_d, None)
        loss.backward()
        optimizer.step()
        value = float(loss.item())
        total += value * batch.numel()
        if on_batch is not None:
            on_batch(batch.numel(), value)
    return total / max(order.numel(), 1)


@torch.no_grad()
def lean_predict(model: nn.Module, source: LeanBatches, nodes: Tensor, chunk_size: int = 65536,
                 device: torch.device | str = "cpu", on_chunk: Callable[[int], None] | None = None) -> Tensor:
    """Student logits ``[len(nodes), C]`` read chunk by chunk through ``source``."""
    model.eval()
    parts = []
    for start in range(0, nodes.numel(), chunk_size):
        batch = nodes[start:start + chunk_size]
        adj = _adjacency_to(source.adjacency(batch), device) if source.adjacency is not None else None
        parts.append(model(source.features(batch).to(device), adj).float().cpu())
        if on_chunk is not None:
            on_chunk(batch.numel())
    return torch.cat(parts) if parts else torch.empty(0)


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
    optimizer = make_optimizer(model, config.lr, config.weight_decay)
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
