"""Evaluation: accuracy, ROC AUC (binary graphs), the graph's selection metric, and the metrics
of one split, split again into row-twin and non-twin nodes (see :mod:`samlp_lite.data.twins`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from samlp_lite.data.twins import find_twins, row_hashes, twin_metrics
from samlp_lite.records import production_accuracy

if TYPE_CHECKING:
    from samlp_lite.data import GraphData, InductiveSplit


def accuracy(logits: Tensor, y: Tensor) -> float:
    """Fraction of rows of ``logits`` ``[n, C]`` whose argmax equals ``y`` ``[n]``."""
    if logits.shape[0] != y.shape[0]:
        raise ValueError(f"accuracy: {logits.shape[0]} predictions but {y.shape[0]} labels")
    if y.numel() == 0:
        return float("nan")
    return float((logits.argmax(dim=-1) == y).float().mean())


def roc_auc(scores: Tensor, y: Tensor) -> float:
    """ROC AUC of binary labels ``y`` ``[n]`` (0/1) from logits or probabilities ``[n, 2]`` (or positive-class scores ``[n]``).

    The positive-class score is ``scores[:, 1] - scores[:, 0]`` (monotone in the softmax
    probability); ties count one half (the Mann-Whitney statistic). NaN when a class is absent.
    """
    from scipy.stats import rankdata

    if scores.dim() == 2:
        if scores.size(1) != 2:
            raise ValueError(f"ROC AUC needs two classes, got scores of shape {list(scores.shape)}")
        scores = scores[:, 1] - scores[:, 0]
    if scores.shape[0] != y.shape[0]:
        raise ValueError(f"roc_auc: {scores.shape[0]} scores but {y.shape[0]} labels")
    positive = y.cpu().numpy() == 1
    num_pos, num_neg = int(positive.sum()), int((~positive).sum())
    if num_pos == 0 or num_neg == 0:
        return float("nan")
    ranks = rankdata(scores.detach().cpu().double().numpy())
    return float((ranks[positive].sum() - num_pos * (num_pos + 1) / 2) / (num_pos * num_neg))


def score(logits: Tensor, y: Tensor, metric: str = "accuracy") -> float:
    """The graph's selection metric: ``accuracy`` or ``roc_auc`` (binary graphs)."""
    if metric == "accuracy":
        return accuracy(logits, y)
    if metric == "roc_auc":
        return roc_auc(logits, y)
    raise ValueError(f"unknown metric {metric!r}; choose accuracy or roc_auc")


def evaluate(logits: Tensor, y: Tensor, prefix: str, metric: str = "accuracy") -> dict[str, float]:
    """``{prefix}_acc``, plus ``{prefix}_roc_auc`` when the graph's metric is ROC AUC."""
    values = {f"{prefix}_acc": accuracy(logits, y)}
    if metric == "roc_auc":
        values[f"{prefix}_roc_auc"] = roc_auc(logits, y)
    return values


def split_metrics(graph: "GraphData", split: int, logits: Tensor) -> dict[str, float]:
    """Transductive metrics of one split from logits of every node: ``val_acc``, ``test_acc``
    (and ``val_roc_auc``, ``test_roc_auc`` on ROC AUC graphs), and the test nodes' row-twin
    split (``twin_share``, ``test_acc_twin``, ``test_acc_no_twin``)."""
    s, y = graph.split(split), graph.data.y
    metrics = {**evaluate(logits[s.val], y[s.val], "val", graph.metric),
               **evaluate(logits[s.test], y[s.test], "test", graph.metric)}
    twins = find_twins(row_hashes(graph.data.edge_index, graph.num_nodes), y, s.train, s.test)
    return {**metrics, **twin_metrics(logits[s.test].argmax(-1) == y[s.test], twins, "test")}


def held_out_metrics(graph: "GraphData", split: int, held_out_nodes: Tensor, scores: Tensor) -> dict[str, float]:
    """Metrics on the held-out nodes of an inductive split from their logits or probabilities:
    ``ind_acc`` (and ``ind_roc_auc``), and their row-twin split against the split's training
    nodes in the full graph (``ind_twin_share``, ``ind_acc_twin``, ``ind_acc_no_twin``)."""
    y = graph.data.y[held_out_nodes]
    twins = find_twins(row_hashes(graph.data.edge_index, graph.num_nodes), graph.data.y, graph.split(split).train,
                       held_out_nodes)
    return {**evaluate(scores, y, "ind", graph.metric), **twin_metrics(scores.argmax(-1) == y, twins, "ind")}


def inductive_metrics(ind: "InductiveSplit", graph: "GraphData", split: int, observed_logits: Tensor,
                      held_out_scores: Tensor, held_out_rate: float) -> dict[str, float]:
    """Metrics of an inductive split: ``val_*`` and ``tran_*`` on the observed graph's validation and
    test nodes, ``ind_*`` on held-out nodes (with their twin split), ``prod_*`` weighting the two
    by ``held_out_rate``; ``*`` is ``acc`` and, on ROC AUC graphs, ``roc_auc``."""
    s, y = ind.split, ind.observed_data.y
    metrics = {**evaluate(observed_logits[s.val], y[s.val], "val", graph.metric),
               **evaluate(observed_logits[s.test], y[s.test], "tran", graph.metric),
               **held_out_metrics(graph, split, ind.held_out_nodes, held_out_scores)}
    for kind in ("acc", "roc_auc"):
        if f"ind_{kind}" in metrics:
            metrics[f"prod_{kind}"] = production_accuracy(metrics[f"tran_{kind}"], metrics[f"ind_{kind}"],
                                                          held_out_rate)
    return metrics
