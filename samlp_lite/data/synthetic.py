"""Contextual stochastic block model (CSBM) graphs for tests, smoke runs and scaling benchmarks."""
from __future__ import annotations

import torch

from samlp_lite.data.graph import GraphData, make_graph
from samlp_lite.data.splits import random_splits


def make_csbm(num_nodes: int = 1000, num_classes: int = 3, avg_degree: float = 10.0,
              num_features: int = 64, homophily: float = 0.8, feature_signal: float = 1.0,
              num_splits: int = 10, seed: int = 0, name: str = "csbm") -> GraphData:
    """A seeded contextual stochastic block model (Deshpande et al., 2018), fully vectorised.

    Labels are uniform over classes. ``num_nodes * avg_degree / 2`` undirected edges are drawn:
    each picks a uniform source node, then with probability ``homophily`` a uniform node of
    the same class, else a uniform node of another (uniformly chosen) class; self-loops and
    repeated pairs are then dropped, so the edge homophily is ``homophily`` up to sampling
    noise. Features are ``feature_signal * mu[y] + noise``: ``mu[c]`` a random unit vector per
    class, noise standard Gaussian per dimension. Splits: class-stratified 48/32/20.

    Args:
        num_nodes: ``N`` (default 1000).
        num_classes: ``C >= 2`` (default 3).
        avg_degree: expected degree, i.e. edge entries per node (default 10).
        num_features: ``d`` (default 64).
        homophily: target edge homophily in ``[0, 1]`` (default 0.8).
        feature_signal: norm of the class means, relative to unit noise (default 1.0).
        num_splits: number of random splits (default 10).
        seed: seed for labels, edges, features and splits (default 0).
        name: graph name (default ``"csbm"``).

    Returns:
        a normalised ``GraphData``; 2M nodes with degree 20 and 128 features take seconds.
    """
    if num_nodes < 2 or num_classes < 2 or num_classes > num_nodes:
        raise ValueError(f"need 2 <= num_classes <= num_nodes, got num_nodes={num_nodes}, "
                         f"num_classes={num_classes}")
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"homophily must be in [0, 1], got {homophily}")
    if avg_degree < 0 or num_features < 1:
        raise ValueError(f"avg_degree must be >= 0 and num_features >= 1, got {avg_degree}, {num_features}")
    generator = torch.Generator().manual_seed(int(seed))

    y = torch.arange(num_nodes) % num_classes
    y = y[torch.randperm(num_nodes, generator=generator)]
    nodes_by_class = torch.sort(y, stable=True).indices
    counts = torch.bincount(y, minlength=num_classes)
    class_start = torch.cumsum(counts, 0) - counts

    num_pairs = int(round(num_nodes * avg_degree / 2))
    source = torch.randint(num_nodes, (num_pairs,), generator=generator)
    source_class = y.to(torch.int8 if num_classes <= 127 else torch.int32)[source].long()
    same = torch.rand(num_pairs, generator=generator) < homophily
    shift = torch.randint(1, num_classes, (num_pairs,), generator=generator)
    target_class = torch.where(same, source_class, (source_class + shift) % num_classes)
    del same, shift, source_class
    offset = (torch.randint(0, 2**31, (num_pairs,), generator=generator) * counts[target_class]) >> 31
    target = nodes_by_class[class_start[target_class] + offset]
    del target_class, offset
    edge_index = torch.stack([source, target])
    del source, target

    means = torch.randn(num_classes, num_features, generator=generator)
    means = means / means.norm(dim=1, keepdim=True).clamp_min(1e-12)
    means.mul_(float(feature_signal))
    x = torch.randn(num_nodes, num_features, generator=generator)
    for start in range(0, num_nodes, 1 << 18):
        x[start:start + (1 << 18)] += means[y[start:start + (1 << 18)]]

    splits = random_splits(y, num_splits=num_splits, seed=int(seed))
    source = (f"synthetic CSBM (N={num_nodes}, C={num_classes}, avg_degree={avg_degree}, "
              f"d={num_features}, homophily={homophily}, feature_signal={feature_signal}, seed={seed}); "
              f"{num_splits} class-stratified 48/32/20 random splits")
    return make_graph(name, x, y, edge_index, splits, source=source, num_classes=num_classes,
                      num_nodes=num_nodes)
