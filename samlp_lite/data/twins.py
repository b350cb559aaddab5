"""Row twins: evaluation nodes whose adjacency row (or feature row) equals a training node's.

On Chameleon and Squirrel many test nodes have a training node with exactly the same non-empty
set of neighbours, and that node almost always has the same label: a model that maps equal
rows to equal outputs (SA-MLP's structure encoder, LINKX) can copy it. Reporting every metric
on twin and non-twin nodes separately tells such copying apart from learning.

Rows are compared through two independent 64-bit hashes of the neighbour set (a sum of random
per-node codes), so equal sets always match and different sets collide with probability
about 2^-128.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import Tensor

_HASH_SEED = 20221017


def row_hashes(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``[N, 2]`` int64: a hash of each node's set of out-neighbours (``[0, 0]`` for an empty row)."""
    generator = torch.Generator().manual_seed(_HASH_SEED)
    codes = torch.randint(-(2**62), 2**62, (num_nodes, 2), generator=generator, dtype=torch.long)
    src, dst = edge_index.cpu()
    hashes = torch.zeros(num_nodes, 2, dtype=torch.long)
    hashes.index_add_(0, src, codes[dst])
    return hashes


def feature_hashes(x: Tensor) -> Tensor:
    """``[N, 2]`` int64 hashes of feature rows (``[0, 0]`` for an all-zero row)."""
    generator = torch.Generator().manual_seed(_HASH_SEED + 1)
    dense = x.to_dense() if x.layout != torch.strided else x
    weights = torch.randn(dense.size(1), 2, generator=generator, dtype=torch.float64)
    projected = dense.double() @ weights
    return torch.round(projected * 1e9).long()


def _keys(hashes: Tensor) -> list[tuple[int, int]]:
    return [tuple(row) for row in hashes.tolist()]


@dataclass
class Twins:
    """Which evaluation nodes have a training twin, and the labels a twin lookup would predict.

    Attributes:
        nodes: the evaluation nodes (original ids).
        is_twin: ``[len(nodes)]`` bool, a training node has the same non-empty row.
        lookup: ``[len(nodes)]`` long, the majority label of the training twins (``-1`` without one).
    """

    nodes: Tensor
    is_twin: Tensor
    lookup: Tensor

    @property
    def share(self) -> float:
        """Fraction of evaluation nodes with a training twin."""
        return float(self.is_twin.float().mean()) if self.nodes.numel() else float("nan")


def find_twins(hashes: Tensor, y: Tensor, train: Tensor, nodes: Tensor) -> Twins:
    """Twins of ``nodes`` among ``train`` under ``hashes`` (from :func:`row_hashes` or :func:`feature_hashes`)."""
    labels: dict[tuple[int, int], Counter] = {}
    for key, label in zip(_keys(hashes[train.cpu()]), y[train.cpu()].tolist()):
        if key != (0, 0):
            labels.setdefault(key, Counter())[label] += 1
    lookup = [labels[key].most_common(1)[0][0] if key in labels else -1 for key in _keys(hashes[nodes.cpu()])]
    lookup = torch.tensor(lookup, dtype=torch.long)
    return Twins(nodes=nodes.cpu(), is_twin=lookup >= 0, lookup=lookup)


def twin_metrics(correct: Tensor, twins: Twins, prefix: str) -> dict[str, float]:
    """``{share}``, ``{prefix}_acc_twin`` and ``{prefix}_acc_no_twin`` from a per-node correctness mask.

    The share is ``twin_share`` for ``prefix="test"`` and ``<prefix>_twin_share`` otherwise
    (``ind_twin_share``). An empty group gives NaN.
    """
    correct = correct.cpu().bool()
    if correct.numel() != twins.is_twin.numel():
        raise ValueError(f"{correct.numel()} predictions for {twins.is_twin.numel()} evaluation nodes")
    share_key = "twin_share" if prefix == "test" else f"{prefix}_twin_share"

    def mean(mask: Tensor) -> float:
        return float(correct[mask].float().mean()) if bool(mask.any()) else float("nan")

    return {share_key: twins.share, f"{prefix}_acc_twin": mean(twins.is_twin),
            f"{prefix}_acc_no_twin": mean(~twins.is_twin)}


def twin_lookup_accuracy(twins: Twins, y: Tensor) -> float:
    """Accuracy of predicting each twin node's label from its training twins (twin nodes only)."""
    if not bool(twins.is_twin.any()):
        return float("nan")
    truth = y[twins.nodes[twins.is_twin]].cpu()
    return float((twins.lookup[twins.is_twin] == truth).float().mean())
