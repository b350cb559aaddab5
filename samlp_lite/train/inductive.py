"""Inductive and online nodes: latent structure approximation with two-stage distillation.

Stage 1 trains SA-MLP on the observed graph (:func:`samlp_lite.train.distill.train_student`).
Stage 2 trains a latent predictor ``g(x)`` (MLP d -> h -> h) so that ``g(x_i)`` matches the
stage-1 structure pre-activation ``W_A a_i + b_A`` on observed nodes (MSE), plus KD of the
outputs computed through ``g``. A new node is then scored either *online* (its adjacency
row over its edges to known nodes) or *isolated* (``g(x)`` replaces ``W_A a``).
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samlp_lite.config import RunConfig
from samlp_lite.data import GraphData, inductive_split
from samlp_lite.data.adjacency import AdjacencyRows
from samlp_lite.data.features import select_rows, to_model_features
from samlp_lite.models.latent import LatentPredictor
from samlp_lite.models.registry import architecture_of, uses_teacher
from samlp_lite.models.students import SAMLP
from samlp_lite.runtime import pick_device, seed_everything
from samlp_lite.train.distill import (
    TrainedStudent,
    train_student,
    virtual_target_from_teacher,
)
from samlp_lite.train.loop import FitResult, fit_with_early_stopping
from samlp_lite.train.losses import kd_loss, teacher_probabilities
from samlp_lite.train.metrics import evaluate, inductive_metrics, score
from samlp_lite.train.soft_labels import TeacherOutputs


@dataclass
class OnlineScorer:
    """A trained student ready to score nodes that were not in its training graph.

    Attributes:
        model: the student (SA-MLP for structure; any student works for features only).
        adjacency: the known graph's adjacency rows (defines ``a`` for new nodes).
        latent_predictor: stage-2 ``g``; used for nodes that arrive without edges.
        sparse_features: how features are fed (``auto``, ``true``, ``false``).
    """

    model: nn.Module
    adjacency: AdjacencyRows | None
    latent_predictor: LatentPredictor | None = None
    sparse_features: str = "auto"

    @torch.no_grad()
    def score(self, x: Tensor, neighbors: list[Tensor] | Tensor | None = None,
              edge_index: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Class probabilities (and SA-MLP's gate) for new nodes.

        Args:
            x: ``[B, d]`` features of the new nodes.
            neighbors: one long tensor of known-node ids per new node (may be empty), or
                ``None`` for no edges at all.
            edge_index: alternative to ``neighbors``: ``[2, M]`` pairs (new-node index, known id).

        Returns:
            ``(probs [B, C], alpha [B] or None)``. A node with at least one known neighbour is
            scored online from its adjacency row; one without uses the latent predictor
            (or, lacking one, cannot be scored by a structure-only model).
        """
        self.model.eval()
        device = next(self.model.parameters()).device
        features = to_model_features(x, self.sparse_features).to(device)
        if edge_index is None:
            edge_index = _pairs_from_lists(neighbors, x.shape[0])
        if self.adjacency is None:
            return F.softmax(self.model(features, None), dim=-1).cpu(), None
        rows = self.adjacency.rows_for_new_nodes(edge_index[0], edge_index[1], x.shape[0]).to(device)
        if not isinstance(self.model, SAMLP):
            return F.softmax(self.model(features, rows), dim=-1).cpu(), None
        has_edges = rows.row_lengths() > 0
        feature_pre = self.model.feature_preactivation(features) if self.model.use_features else None
        out = self.model.decode(self.model.structure_preactivation(rows), feature_pre, return_parts=True)
        logits, alpha = out.logits, out.alpha
        if self.latent_predictor is not None and not bool(has_edges.all()):
            isolated = self.latent_predictor.to(device).eval().decode(self.model, features, feature_pre, True)
            logits = torch.where(has_edges.unsqueeze(-1), logits, isolated.logits)
            if alpha is not None:
                alpha = torch.where(has_edges, alpha, isolated.alpha)
        return F.softmax(logits, dim=-1).cpu(), (alpha.cpu() if alpha is not None else None)


def _pairs_from_lists(neighbors: list[Tensor] | Tensor | None, num_new: int) -> Tensor:
    if neighbors is None:
        return torch.empty(2, 0, dtype=torch.long)
    if isinstance(neighbors, Tensor):
        neighbors = [neighbors] if num_new == 1 else list(neighbors)
    if len(neighbors) != num_new:
        raise ValueError(f"neighbors has {len(neighbors)} entries for {num_new} new nodes; give one list per node")
    lists = [torch.as_tensor(n, dtype=torch.long).view(-1) for n in neighbors]
    rows = torch.repeat_interleave(torch.arange(num_new), torch.tensor([n.numel() for n in lists]))
    return torch.stack([rows, torch.cat(lists) if lists else torch.empty(0, dtype=torch.long)])


def train_latent_predictor(student: TrainedStudent, teacher_logits: Tensor, val_idx: Tensor, y: Tensor,
                           config: RunConfig, *, device: torch.device | str | None = None,
                           progress: bool = True, desc: str = "stage 2",
                           metric: str = "accuracy") -> tuple[LatentPredictor, FitResult]:
    """Stage 2: fit ``g`` to the stage-1 structure pre-activations of observed nodes.

    Loss: ``stage2_mse_weight * MSE(g(x_i), W_A a_i + b_A) + stage2_kd_weight * KD(decode(g(x_i), W_X x_i + b_X), p_i)``
    over the observed nodes except the validation nodes, which are kept out so that early
    stopping on their isolated-mode accuracy measures generalisation to unseen nodes.
    The student stays frozen. With ``stage2_freeze`` only ``g`` trains; otherwise copies of the
    heads and gate, owned by the predictor and used only on the isolated path, are fine-tuned
    with it, so the online path is unchanged either way. Early stopping uses the
    isolated-mode accuracy on the validation nodes.
    """
    model = student.model
    if not isinstance(model, SAMLP) or not model.use_structure:
        raise ValueError("the latent predictor replaces SA-MLP's structure encoder; this student has none")
    seed_everything(config.seed)
    device = pick_device(device if device is not None else config.device)
    model.to(device)
    predictor = LatentPredictor(model.num_features, model.hidden, config.dropout).to(device)
    keep = torch.ones(student.features.shape[0], dtype=torch.bool)
    keep[val_idx] = False
    nodes = keep.nonzero().view(-1)
    x = select_rows(student.features, nodes).to(device)
    model.eval()
    with torch.no_grad():
        target = model.structure_preactivation(student.adjacency.gather(nodes).to(device))
        feature_pre = model.feature_preactivation(x) if model.use_features else None
    probs = teacher_probabilities(teacher_logits[nodes].to(device), config.tau)
    if not config.stage2_freeze:
        predictor.heads.update({name: copy.deepcopy(module) for name, module in model.decoder_modules().items()})
    for p in model.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=config.stage2_lr)
    x_val = select_rows(student.features, val_idx).to(device)

    def train_epoch(epoch: int) -> float:
        optimizer.zero_grad()
        latent = predictor(x)
        loss = config.stage2_mse_weight * F.mse_loss(latent, target)
        if config.stage2_kd_weight > 0:
            logits = model.decode(latent, feature_pre, heads=dict(predictor.heads) or None)
            loss = loss + config.stage2_kd_weight * kd_loss(logits, probs, config.tau)
        loss.backward()
        optimizer.step()
        return loss.item()

    def validate() -> float:
        return score(predictor.decode(model, x_val).cpu(), y[val_idx], metric)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        fit = fit_with_early_stopping(predictor, train_epoch, validate, max_epochs=config.stage2_epochs,
                                      patience=config.patience, progress=progress, desc=desc)
    for p in model.parameters():
        p.requires_grad_(True)
    return predictor.eval(), fit


def evaluate_inductive_student(graph: GraphData, student: str, split: int, config: RunConfig,
                               outputs: TeacherOutputs, *, device: torch.device | str | None = None,
                               progress: bool = True, desc: str | None = None,
                               return_scorer: bool = False, teacher: nn.Module | None = None) -> dict:
    """Train a student on the observed graph of one split and score held-out nodes.

    Returns a metrics dict: ``val_acc``, ``tran_acc`` (observed test nodes), ``ind_acc``
    (held-out nodes; structure-aware students use their online adjacency rows), ``prod_acc``
    and, for SA-MLP, ``ind_isolated_acc`` (latent predictor, no edges). With
    ``return_scorer`` the :class:`OnlineScorer` is added under ``"scorer"``. ``teacher`` (the GNN
    trained on the observed graph) is needed only for ``mix_target=teacher``.
    """
    ind = inductive_split(graph, split, rate=config.held_out_rate, seed=config.seed)
    if outputs.held_out_logits is None or outputs.logits.shape[0] != ind.num_observed:
        raise ValueError("teacher outputs do not belong to this inductive split: train the teacher with "
                         "setting='inductive' and the same held_out_rate and seed")
    if outputs.held_out_nodes is None or not torch.equal(outputs.held_out_nodes.cpu(), ind.held_out_nodes.cpu()):
        raise ValueError(f"the teacher's held-out nodes differ from this student's (student seed {config.seed}, "
                         f"held_out_rate {config.held_out_rate}): the teacher trained on nodes the student holds "
                         "out. Give the teacher the same seed and held_out_rate (e.g. --teacher-set seed=... "
                         "--teacher-set held_out_rate=...)")
    s = ind.split
    virtual = (virtual_target_from_teacher(teacher, ind.observed_data, config)
               if config.mix_target == "teacher" and uses_teacher(student) else None)
    trained = train_student(student, ind.observed_data, s.train, s.val, s.test, graph.num_classes, config,
                            outputs.logits, virtual_target=virtual, device=device, progress=progress, desc=desc,
                            metric=graph.metric)
    scorer = OnlineScorer(trained.model, trained.adjacency, sparse_features=config.sparse_features)
    x_held = graph.data.x[ind.held_out_nodes]
    y_held = graph.data.y[ind.held_out_nodes]
    probs, _ = scorer.score(x_held, edge_index=ind.held_out_edge_index)
    metrics = {**inductive_metrics(ind, graph, split, trained.logits, probs, config.held_out_rate),
               "best_epoch": trained.fit.best_epoch}
    if architecture_of(student) == "sa-mlp" and trained.model.use_structure:
        variants = [config.stage2_freeze] if not config.stage2_select else [True, False]
        fitted = [train_latent_predictor(trained, outputs.logits, s.val, ind.observed_data.y,
                                         config.replace(stage2_freeze=freeze), device=device, progress=progress,
                                         desc=f"{desc or student} stage 2", metric=graph.metric)
                  for freeze in variants]
        best = max(range(len(fitted)), key=lambda i: fitted[i][1].best_val_acc)
        predictor = fitted[best][0]
        metrics["stage2_freeze"] = variants[best]
        scorer.latent_predictor = predictor
        isolated, _ = scorer.score(x_held, edge_index=torch.empty(2, 0, dtype=torch.long))
        metrics.update(evaluate(isolated, y_held, "ind_isolated", graph.metric))
    if return_scorer:
        metrics["scorer"] = scorer
    return metrics


__all__ = ["LatentPredictor", "OnlineScorer", "evaluate_inductive_student", "train_latent_predictor"]
