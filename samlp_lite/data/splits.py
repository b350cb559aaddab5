"""Seeded, class-stratified random splits."""
from __future__ import annotations

import torch
from torch import Tensor

from samlp_lite.data.graph import Split


def random_splits(y: Tensor, num_splits: int = 10, train: float = 0.48, val: float = 0.32,
                  seed: int = 0) -> list[Split]:
    """Class-stratified random train/val/test splits (default 48/32/20, as Geom-GCN).

    Within every class, ``round(train * n_c)`` nodes go to train (at least one when the class
    has two or more nodes), ``round(val * n_c)`` to validation and the rest to test. Nodes with
    a negative label are in no part.

    Args:
        y: labels ``[N]`` (or ``[N, 1]``).
        num_splits: number of splits (default 10).
        train: train fraction per class (default 0.48).
        val: validation fraction per class (default 0.32).
        seed: seed; split ``i`` is the ``i``-th draw of one generator seeded with it.

    Returns:
        ``num_splits`` splits with sorted, disjoint node ids.
    """
    if not (0.0 <= train <= 1.0 and 0.0 <= val <= 1.0 and train + val <= 1.0 + 1e-9):
        raise ValueError(f"train={train} and val={val} must be fractions with train + val <= 1")
    if num_splits < 1:
        raise ValueError(f"num_splits must be >= 1, got {num_splits}")
    y = torch.as_tensor(y).reshape(-1).long()
    num_nodes = y.numel()
    num_classes = int(y.max()) + 1 if num_nodes and int(y.max()) >= 0 else 0
    labelled = y >= 0
    counts = torch.bincount(y[labelled], minlength=num_classes)
    num_train = torch.round(counts.double() * train).long()
    num_train = torch.where((counts >= 2) & (num_train == 0), torch.ones_like(num_train), num_train)
    num_val = torch.minimum(torch.round(counts.double() * val).long(), counts - num_train)
    members = torch.split(torch.sort(torch.where(labelled, y, num_classes), stable=True).indices,
                          counts.tolist() + [num_nodes - int(counts.sum())])[:num_classes]

    generator = torch.Generator().manual_seed(int(seed))
    splits = []
    for _ in range(num_splits):
        part = torch.full((num_nodes,), 3, dtype=torch.int8)
        for ids, n_train, n_val in zip(members, num_train.tolist(), num_val.tolist()):
            shuffled = ids[torch.randperm(ids.numel(), generator=generator)]
            part[shuffled[:n_train]] = 0
            part[shuffled[n_train:n_train + n_val]] = 1
            part[shuffled[n_train + n_val:]] = 2
        splits.append(Split(*((part == k).nonzero().view(-1) for k in range(3))))
    return splits
