"""Graph containers (`Split`, `GraphData`) and the one normalisation every graph goes through."""
from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor
from torch_geometric.data import Data

METRICS = ("accuracy", "roc_auc")
"""The metrics a graph may be scored by."""


def _as_node_ids(ids: Tensor, what: str) -> Tensor:
    ids = torch.as_tensor(ids)
    if ids.dtype == torch.bool:
        raise TypeError(f"Split.{what} must hold node ids, not a boolean mask; use Split.from_masks")
    if ids.is_floating_point() or ids.is_complex():
        raise TypeError(f"Split.{what} must hold integer node ids, got dtype {ids.dtype}")
    ids = ids.reshape(-1).long()
    if ids.numel() > 1 and not bool((ids[1:] > ids[:-1]).all()):
        ids = torch.sort(ids).values
        if bool((ids[1:] == ids[:-1]).any()):
            raise ValueError(f"Split.{what} lists a node id more than once")
    if ids.numel() and int(ids[0]) < 0:
        raise ValueError(f"Split.{what} has negative node ids")
    return ids


@dataclass(eq=False)
class Split:
    """One train/validation/test split as node ids (``torch.long``, sorted, disjoint).

    Ids given unsorted are sorted on construction; duplicates or a node in two parts raise
    ``ValueError``.
    """

    train: Tensor
    val: Tensor
    test: Tensor

    def __post_init__(self) -> None:
        self.train = _as_node_ids(self.train, "train")
        self.val = _as_node_ids(self.val, "val")
        self.test = _as_node_ids(self.test, "test")
        every = torch.cat([self.train, self.val, self.test])
        if every.numel() and int(torch.bincount(every).max()) > 1:
            raise ValueError("Split parts overlap: a node is in more than one of train/val/test")

    @classmethod
    def from_masks(cls, train_mask: Tensor, val_mask: Tensor, test_mask: Tensor) -> "Split":
        """Build a split from three boolean (or 0/1) masks of shape ``[N]``."""
        return cls(*(torch.as_tensor(m).bool().reshape(-1).nonzero().view(-1)
                     for m in (train_mask, val_mask, test_mask)))

    def masks(self, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
        """The split as three boolean masks of shape ``[num_nodes]``."""
        out = []
        for ids in (self.train, self.val, self.test):
            mask = torch.zeros(num_nodes, dtype=torch.bool)
            mask[ids] = True
            out.append(mask)
        return out[0], out[1], out[2]

    def sizes(self) -> tuple[int, int, int]:
        """Numbers of train, validation and test nodes."""
        return self.train.numel(), self.val.numel(), self.test.numel()


def splits_from_masks(train_mask: Tensor, val_mask: Tensor, test_mask: Tensor) -> list[Split]:
    """Turn masks of shape ``[N]`` or ``[N, S]`` (bool or uint8) into a list of ``S`` splits."""
    masks = [torch.as_tensor(m).bool() for m in (train_mask, val_mask, test_mask)]
    if masks[0].dim() == 1:
        masks = [m.view(-1, 1) for m in masks]
    return [Split.from_masks(masks[0][:, s], masks[1][:, s], masks[2][:, s])
            for s in range(masks[0].size(1))]


@dataclass(eq=False)
class GraphData:
    """A node-classification graph, normalised, with its splits.

    Attributes:
        name: registry or file name, e.g. ``"cora"``.
        data: PyG ``Data`` with ``x`` (float32 ``[N, d]``, dense), ``y`` (long ``[N]``) and
            ``edge_index`` (long ``[2, E]``: undirected, coalesced, no self-loops).
        splits: the benchmark's splits, node ids in ``0..N-1``.
        num_classes: number of classes ``C``; labels lie in ``0..C-1``.
        description: one line naming the source and the preprocessing done.
        metric: the benchmark's metric, ``accuracy`` or ``roc_auc`` (binary, imbalanced graphs):
            it is reported and it selects epochs and hyperparameters.
    """

    name: str
    data: Data
    splits: list[Split]
    num_classes: int
    description: str = ""
    metric: str = "accuracy"

    @property
    def num_nodes(self) -> int:
        """Number of nodes ``N``."""
        return int(self.data.num_nodes)

    @property
    def num_features(self) -> int:
        """Feature dimension ``d``."""
        return int(self.data.x.size(1))

    @property
    def num_splits(self) -> int:
        """Number of splits."""
        return len(self.splits)

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the graph's content (features, labels, edges, splits), 16 hex digits.

        Two graphs with the same name but different content (an edited file, another file
        with the same stem) get different fingerprints, so caches keyed by it never mix them.
        """
        digest = hashlib.sha256()
        for tensor in (self.data.x, self.data.y, self.data.edge_index,
                       *(ids for s in self.splits for ids in (s.train, s.val, s.test))):
            dense = tensor.to_dense() if tensor.layout != torch.strided else tensor
            digest.update(str((dense.dtype, tuple(dense.shape))).encode())
            digest.update(dense.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def split(self, index: int) -> Split:
        """The split with this index (``0 <= index < num_splits``).

        Raises:
            IndexError: naming the valid range.
        """
        if isinstance(index, bool):
            raise TypeError(f"split index must be an int, got {index!r}")
        index = operator.index(index)
        if not 0 <= index < len(self.splits):
            raise IndexError(f"split {index} does not exist: graph {self.name!r} has "
                             f"{len(self.splits)} split(s), indices 0..{len(self.splits) - 1}")
        return self.splits[index]

    def __repr__(self) -> str:
        return (f"GraphData(name={self.name!r}, num_nodes={self.num_nodes}, "
                f"num_edges={self.data.edge_index.size(1)}, num_features={self.num_features}, "
                f"num_classes={self.num_classes}, num_splits={self.num_splits})")


def normalize_graph(x: Tensor, y: Tensor, edge_index: Tensor,
                    num_nodes: int | None = None) -> tuple[Data, str]:
    """Bring any graph into the one form every model here expects.

    Removes self-loops, merges duplicate edges and symmetrises (the result equals PyG's
    ``to_undirected(remove_self_loops(edge_index)[0])``: coalesced, sorted by row then column),
    makes ``y`` long 1-D and ``x`` dense float32. Edges are handled as ``row * N + col`` keys so
    that tens of millions of edges take one sort and no gathers.

    Args:
        x: node features ``[N, d]`` (dense or sparse, any real dtype).
        y: labels ``[N]`` or ``[N, 1]``.
        edge_index: ``[2, E]`` integer edges, directed or not.
        num_nodes: ``N``; default ``x.size(0)``.

    Returns:
        ``(data, note)``: the normalised ``Data(x, y, edge_index)`` and a short note on what
        changed, e.g. ``"directed edges symmetrised (36101 -> 62742 edge entries); 50 self-loops
        removed"``.
    """
    if x.is_sparse:
        x = x.to_dense()
    x = x.float().contiguous()
    num_nodes = int(x.size(0) if num_nodes is None else num_nodes)
    if num_nodes >= 2**31:
        raise ValueError(f"graphs with {num_nodes} >= 2**31 nodes are not supported")
    if x.size(0) != num_nodes:
        raise ValueError(f"x has {x.size(0)} rows but the graph has {num_nodes} nodes")
    y = y.reshape(-1).long()
    if y.numel() != num_nodes:
        raise ValueError(f"y has {y.numel()} entries but the graph has {num_nodes} nodes")
    edge_index = edge_index.long()
    num_input = edge_index.size(1)
    if num_input and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"edge_index has node ids outside 0..{num_nodes - 1}")

    row, col = edge_index[0], edge_index[1]
    not_loop = row != col
    num_loops = num_input - int(not_loop.sum())
    if num_loops:
        row, col = row[not_loop], col[not_loop]
    num_forward = row.numel()
    tagged = torch.empty(2 * num_forward, dtype=torch.long)
    torch.mul(row, num_nodes, out=tagged[:num_forward]).add_(col).mul_(2)
    torch.mul(col, num_nodes, out=tagged[num_forward:]).add_(row).mul_(2).add_(1)
    del row, col, not_loop
    tagged = torch.unique(tagged)
    num_duplicates = num_forward - tagged.numel() // 2
    tagged >>= 1
    is_new = torch.ones(tagged.numel(), dtype=torch.bool)
    torch.ne(tagged[1:], tagged[:-1], out=is_new[1:])
    both = tagged[is_new]
    del tagged, is_new
    row = both // num_nodes
    undirected = torch.stack([row, both.sub_(row * num_nodes)])

    notes = []
    if undirected.size(1) != num_input - num_loops - num_duplicates:
        notes.append(f"directed edges symmetrised ({num_input} -> {undirected.size(1)} edge entries)")
    if num_loops:
        notes.append(f"{num_loops} self-loop{'s' if num_loops != 1 else ''} removed")
    if num_duplicates:
        notes.append(f"{num_duplicates} duplicate edge{'s' if num_duplicates != 1 else ''} merged")
    note = "; ".join(notes) if notes else "already undirected, no self-loops or duplicates"
    return Data(x=x, y=y, edge_index=undirected, num_nodes=num_nodes), note


def make_graph(name: str, x: Tensor, y: Tensor, edge_index: Tensor, splits: list[Split], *,
               source: str, num_classes: int | None = None,
               num_nodes: int | None = None, metric: str = "accuracy") -> GraphData:
    """Normalise the raw tensors and wrap them, with a description, as ``GraphData``.

    Args:
        name: graph name.
        x, y, edge_index: raw tensors (see ``normalize_graph``).
        splits: splits in node ids of this graph.
        source: where the graph came from and how its splits were made (start of the description).
        num_classes: default ``y.max() + 1``.
        num_nodes: default ``x.size(0)``.
        metric: ``accuracy`` (default) or ``roc_auc`` (binary labels only).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    data, note = normalize_graph(x, y, edge_index, num_nodes)
    if num_classes is None:
        num_classes = int(data.y.max()) + 1 if data.y.numel() else 0
    for index, split in enumerate(splits):
        for part in (split.train, split.val, split.test):
            if part.numel() and (int(part.min()) < 0 or int(part.max()) >= data.num_nodes):
                raise ValueError(f"split {index} of {name!r} has node ids outside 0..{data.num_nodes - 1}")
    if metric == "roc_auc" and num_classes != 2:
        raise ValueError(f"{name!r}: ROC AUC needs binary labels, but the graph has {num_classes} classes")
    return GraphData(name=name, data=data, splits=splits, num_classes=int(num_classes),
                     description=f"{source}; {note}", metric=metric)
