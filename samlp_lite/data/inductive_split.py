"""The inductive (production) protocol's data split: hold out test nodes with all their edges."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import subgraph

from samlp_lite.data.graph import GraphData, Split


@dataclass(eq=False)
class InductiveSplit:
    """A graph with part of its test nodes held out (GLNN's inductive setting).

    Attributes:
        observed_nodes: original ids of observed nodes, sorted.
        held_out_nodes: original ids of held-out test nodes, sorted.
        old_to_new: ``[N]`` long, an observed node's new id, ``-1`` for held-out nodes.
        observed_data: ``Data(x, y, edge_index)`` on observed nodes only, ids ``0..n_obs-1``;
            it holds nothing about held-out nodes.
        split: train / val / observed-test nodes in new ids.
        held_out_edge_index: ``[2, E_h]``; row 0 indexes ``held_out_nodes``, row 1 is the new
            id of an observed neighbour. One entry per held-out--observed edge; edges between
            two held-out nodes are dropped.
    """

    observed_nodes: Tensor
    held_out_nodes: Tensor
    old_to_new: Tensor
    observed_data: Data
    split: Split
    held_out_edge_index: Tensor

    @property
    def num_observed(self) -> int:
        """Number of observed nodes."""
        return int(self.observed_nodes.numel())

    @property
    def num_held_out(self) -> int:
        """Number of held-out nodes."""
        return int(self.held_out_nodes.numel())

    @property
    def fingerprint(self) -> str:
        """A hash of the held-out node ids (16 hex digits): which nodes the teacher never saw."""
        return hashlib.sha256(self.held_out_nodes.cpu().long().contiguous().numpy().tobytes()).hexdigest()[:16]


def inductive_split(graph: GraphData, split_index: int = 0, rate: float = 0.2,
                    seed: int = 0) -> InductiveSplit:
    """Hold out a random ``rate`` fraction of one split's test nodes, with all their edges.

    Args:
        graph: a normalised graph.
        split_index: which of ``graph.splits`` (default 0).
        rate: fraction of that split's test nodes held out, rounded (default 0.2).
        seed: seed; the draw depends on ``(seed, split_index)`` (default 0).

    Returns:
        an ``InductiveSplit``; teachers and students train on ``observed_data`` only.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    split = graph.split(split_index)
    data = graph.data
    num_nodes = graph.num_nodes

    rng = np.random.default_rng([int(seed), int(split_index)])
    num_held = int(round(rate * split.test.numel()))
    chosen = torch.from_numpy(rng.permutation(split.test.numel())[:num_held]).long()
    held_out_nodes = torch.sort(split.test[chosen]).values

    held_mask = torch.zeros(num_nodes, dtype=torch.bool)
    held_mask[held_out_nodes] = True
    observed_nodes = (~held_mask).nonzero().view(-1)
    old_to_new = torch.full((num_nodes,), -1, dtype=torch.long)
    old_to_new[observed_nodes] = torch.arange(observed_nodes.numel())

    observed_edges, _ = subgraph(observed_nodes, data.edge_index, relabel_nodes=True, num_nodes=num_nodes)
    observed_data = Data(x=data.x[observed_nodes], y=data.y[observed_nodes], edge_index=observed_edges,
                         num_nodes=observed_nodes.numel())

    held_position = torch.full((num_nodes,), -1, dtype=torch.long)
    held_position[held_out_nodes] = torch.arange(held_out_nodes.numel())
    row, col = data.edge_index
    crossing = held_mask[row] & ~held_mask[col]
    held_out_edge_index = torch.stack([held_position[row[crossing]], old_to_new[col[crossing]]])

    test_observed = split.test[~held_mask[split.test]]
    new_split = Split(old_to_new[split.train], old_to_new[split.val], old_to_new[test_observed])
    return InductiveSplit(observed_nodes=observed_nodes, held_out_nodes=held_out_nodes,
                          old_to_new=old_to_new, observed_data=observed_data, split=new_split,
                          held_out_edge_index=held_out_edge_index)
