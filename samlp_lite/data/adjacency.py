"""Sparse adjacency rows for structure-aware students, without ever building a dense N x N.

An SA-MLP reads node i's adjacency row ``a_i`` (the book's method chapter, "The student"). ``AdjacencyRows``
stores the whole (optionally self-looped, normalised) adjacency in CSR form;
``AdjacencyRows.gather`` cuts out the rows of a batch of target nodes as an
``AdjacencyBatch``, which is exactly the ``(input, offsets, per_sample_weights)`` triple
that ``torch.nn.functional.embedding_bag`` wants, so ``W_A a_i`` costs O(deg_i * h).

Direction convention (PyG's ``source_to_target`` flow): row i holds the sources ``j`` of
the edges ``j -> i`` in ``edge_index``. For an undirected graph stored with both
directions, row i is simply the neighbour list of i. This is also the row LINKX's
``SparseLinear`` aggregates, so the two students see the same adjacency.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from torch import Tensor

ADJ_NORMS = ("none", "row", "sym")


@dataclass
class AdjacencyBatch:
    """Adjacency rows of a batch of B target nodes, ready for ``embedding_bag``.

    Attributes:
        indices: long ``[nnz]``, neighbour ids (global node ids), row after row.
        offsets: long ``[B]``, start of each row in ``indices``; an empty row repeats the
            next offset.
        weights: float ``[nnz]``, the normalised adjacency value of each entry.
    """

    indices: Tensor
    offsets: Tensor
    weights: Tensor
    _transposes: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def batch_size(self) -> int:
        """Number of rows B."""
        return int(self.offsets.numel())

    @property
    def nnz(self) -> int:
        """Number of stored entries over all rows."""
        return int(self.indices.numel())

    def to(self, device: torch.device | str) -> "AdjacencyBatch":
        """Return a copy on ``device`` (a no-op for tensors already there)."""
        return AdjacencyBatch(
            self.indices.to(device), self.offsets.to(device), self.weights.to(device)
        )

    def row_of_entry(self) -> Tensor:
        """Batch-local row of every entry, long ``[nnz]``."""
        counts = self.row_lengths()
        return torch.repeat_interleave(
            torch.arange(self.batch_size, device=self.offsets.device), counts,
            output_size=self.nnz,
        )

    def row_lengths(self) -> Tensor:
        """Number of entries in each row, long ``[B]``."""
        ends = torch.cat([self.offsets[1:], self.offsets.new_tensor([self.nnz])])
        return ends - self.offsets

    def to_sparse_csr(self, num_nodes: int) -> Tensor:
        """The rows as a torch sparse CSR matrix of shape ``[B, num_nodes]``."""
        crow = torch.cat([self.offsets, self.offsets.new_tensor([self.nnz])])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                crow, self.indices, self.weights, size=(self.batch_size, num_nodes),
                check_invariants=False,
            )

    def transposed_csr(self, num_nodes: int) -> Tensor:
        """The rows' transpose as a sparse CSR matrix ``[num_nodes, B]``, built once per batch.

        A full-batch trainer reuses one batch every epoch, so the backward pass of
        ``rows @ W`` reads this cached transpose instead of sorting the entries again.
        """
        cached = self._transposes.get(num_nodes)
        if cached is None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                cached = self.to_sparse_csr(num_nodes).t().to_sparse_csr()
            self._transposes[num_nodes] = cached
        return cached

    def to_dense(self, num_nodes: int) -> Tensor:
        """Dense ``[B, num_nodes]`` rows; for tests and tiny graphs only."""
        dense = self.weights.new_zeros(self.batch_size, num_nodes)
        dense.index_put_((self.row_of_entry(), self.indices), self.weights, accumulate=True)
        return dense


def check_adj_norm(adj_norm: str) -> str:
    """Return ``adj_norm`` if it is one of ``none``, ``row``, ``sym``; else raise ValueError."""
    if adj_norm not in ADJ_NORMS:
        raise ValueError(f"adj_norm must be one of {list(ADJ_NORMS)}, got {adj_norm!r}")
    return adj_norm


def gather_csr_rows(rowptr: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor]:
    """Positions of the CSR entries of ``nodes``' rows, vectorised.

    Args:
        rowptr: long ``[N + 1]`` CSR row pointer.
        nodes: long ``[B]`` row ids (repeats allowed).

    Returns:
        ``(positions, offsets)``: long ``[nnz_B]`` indices into the CSR value arrays, row
        after row, and long ``[B]`` start of each row in ``positions``.
    """
    starts = rowptr.index_select(0, nodes)
    counts = rowptr.index_select(0, nodes + 1) - starts
    offsets = torch.cumsum(counts, 0) - counts
    total = int(counts.sum()) if counts.numel() else 0
    positions = torch.repeat_interleave(starts - offsets, counts, output_size=total)
    positions += torch.arange(total, device=rowptr.device)
    return positions, offsets


def _inv_sqrt(degree: Tensor) -> Tensor:
    out = degree.pow(-0.5)
    return out.masked_fill(torch.isinf(out), 0.0)


class AdjacencyRows:
    """CSR store of the adjacency rows the structure encoder reads.

    Build it with :meth:`from_edge_index`. Duplicate edges are merged (the adjacency is
    0/1 before normalisation). ``adj_norm`` is ``none`` (raw 0/1), ``row``
    (``D^-1 A``: entries of row i are ``1 / deg_i``) or ``sym`` (``D^-1/2 A D^-1/2``:
    ``1 / sqrt(deg_i deg_j)``, with ``deg`` the row lengths, as in ``gcn_norm``); with
    ``self_loop=True`` every node gets exactly one self-loop before normalising.

    Attributes:
        num_nodes: N, the number of rows and columns.
        rowptr: long ``[N + 1]``.
        col: long ``[nnz]`` column (neighbour) ids, sorted within each row.
        weight: float ``[nnz]`` normalised values.
        degree: float ``[N]`` row lengths after the self-loop, before normalising.
        adj_norm, self_loop: the options the rows were built with.
    """

    def __init__(
        self,
        rowptr: Tensor,
        col: Tensor,
        weight: Tensor,
        degree: Tensor,
        num_nodes: int,
        adj_norm: str = "none",
        self_loop: bool = False,
    ) -> None:
        self.rowptr = rowptr
        self.col = col
        self.weight = weight
        self.degree = degree
        self.num_nodes = int(num_nodes)
        self.adj_norm = check_adj_norm(adj_norm)
        self.self_loop = bool(self_loop)

    @classmethod
    def from_edge_index(
        cls,
        edge_index: Tensor,
        num_nodes: int,
        adj_norm: str = "none",
        self_loop: bool = False,
    ) -> "AdjacencyRows":
        """Build the rows from a PyG ``edge_index``.

        Args:
            edge_index: long ``[2, E]``; row i collects the sources of edges into i.
            num_nodes: N.
            adj_norm: ``none``, ``row`` or ``sym`` (default ``none``).
            self_loop: add one self-loop per node before normalising (default False).
                Self-loops already in ``edge_index`` are kept either way.

        Returns:
            The CSR store.
        """
        check_adj_norm(adj_norm)
        num_nodes = int(num_nodes)
        if num_nodes <= 0:
            raise ValueError(f"num_nodes must be positive, got {num_nodes}")
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(
                f"edge_index must have shape [2, E], got {list(edge_index.shape)}"
            )
        edge_index = edge_index.long()
        if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
            raise ValueError(
                f"edge_index holds ids outside [0, {num_nodes}); pass the right num_nodes"
            )
        device = edge_index.device
        target, source = edge_index[1], edge_index[0]
        if self_loop:
            loops = torch.arange(num_nodes, device=device)
            target = torch.cat([target, loops])
            source = torch.cat([source, loops])
        key = torch.unique(target * num_nodes + source)
        row = torch.div(key, num_nodes, rounding_mode="floor")
        col = key - row * num_nodes
        counts = torch.bincount(row, minlength=num_nodes)
        rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=device)
        rowptr[1:] = torch.cumsum(counts, 0)
        degree = counts.to(torch.float32)
        weight = _normalise(torch.ones_like(row, dtype=torch.float32), degree[row],
                            degree[col], adj_norm)
        return cls(rowptr, col, weight, degree, num_nodes, adj_norm, self_loop)

    @property
    def num_entries(self) -> int:
        """Stored entries (edges after merging, plus self-loops)."""
        return int(self.col.numel())

    def gather(self, nodes: Tensor) -> AdjacencyBatch:
        """Rows of ``nodes`` (long ``[B]``, repeats allowed) as an :class:`AdjacencyBatch`."""
        nodes = torch.as_tensor(nodes, device=self.rowptr.device)
        if nodes.dim() != 1 or nodes.dtype.is_floating_point or nodes.dtype == torch.bool:
            raise ValueError("nodes must be a 1-D tensor of integer node ids")
        nodes = nodes.long()
        if nodes.numel() and (nodes.min() < 0 or nodes.max() >= self.num_nodes):
            raise ValueError(f"nodes must lie in [0, {self.num_nodes})")
        positions, offsets = gather_csr_rows(self.rowptr, nodes)
        return AdjacencyBatch(self.col.index_select(0, positions), offsets, self.weight.index_select(0, positions))

    def all(self) -> AdjacencyBatch:
        """Rows of every node, in order; shares memory with the store (no copy)."""
        return AdjacencyBatch(self.col, self.rowptr[:-1], self.weight)

    def rows_for_new_nodes(
        self, new_node: Tensor, neighbor: Tensor, num_new: int
    ) -> AdjacencyBatch:
        """Rows of nodes that are not in the graph (inductive / online serving).

        The same convention as the stored rows, with two differences a new node forces:
        it has no column of its own in ``W_A``, so its self-loop entry (when
        ``self_loop``) is dropped but still counted in its degree, keeping the row on the
        scale of the training rows; and the stored graph is not updated, so under
        ``sym`` a neighbour j keeps its stored degree ``deg_j`` (the new edge is not
        added to it). Duplicate (new node, neighbour) pairs are merged.

        Args:
            new_node: long ``[M]`` batch-local id in ``[0, num_new)`` of each pair.
            neighbor: long ``[M]`` observed node id in ``[0, N)`` of each pair.
            num_new: number of new nodes B (rows returned, some possibly empty).

        Returns:
            An :class:`AdjacencyBatch` of ``num_new`` rows.
        """
        new_node = torch.as_tensor(new_node, device=self.rowptr.device).long().view(-1)
        neighbor = torch.as_tensor(neighbor, device=self.rowptr.device).long().view(-1)
        if new_node.numel() != neighbor.numel():
            raise ValueError(
                f"new_node and neighbor must have the same length, got {new_node.numel()} "
                f"and {neighbor.numel()}"
            )
        if neighbor.numel() and (neighbor.min() < 0 or neighbor.max() >= self.num_nodes):
            raise ValueError(f"neighbor ids must lie in [0, {self.num_nodes})")
        if new_node.numel() and (new_node.min() < 0 or new_node.max() >= num_new):
            raise ValueError(f"new_node ids must lie in [0, {num_new})")
        key = torch.unique(new_node * self.num_nodes + neighbor)
        row = torch.div(key, self.num_nodes, rounding_mode="floor")
        col = key - row * self.num_nodes
        counts = torch.bincount(row, minlength=num_new)
        offsets = torch.cumsum(counts, 0) - counts
        degree = counts.to(torch.float32) + float(self.self_loop)
        weight = _normalise(torch.ones_like(col, dtype=torch.float32), degree[row],
                            self.degree[col], self.adj_norm)
        return AdjacencyBatch(col, offsets, weight)

    def row_for_new_node(self, neighbors: Tensor) -> AdjacencyBatch:
        """Row of one node not in the graph, from its observed neighbour ids ``[k]``.

        See :meth:`rows_for_new_nodes` for how ``self_loop`` and ``sym`` are handled.
        """
        neighbors = torch.as_tensor(neighbors, device=self.rowptr.device).long().view(-1)
        return self.rows_for_new_nodes(torch.zeros_like(neighbors), neighbors, 1)

    def to(self, device: torch.device | str) -> "AdjacencyRows":
        """Return a copy on ``device``."""
        return AdjacencyRows(
            self.rowptr.to(device), self.col.to(device), self.weight.to(device),
            self.degree.to(device), self.num_nodes, self.adj_norm, self.self_loop,
        )

    def __repr__(self) -> str:
        return (
            f"AdjacencyRows(num_nodes={self.num_nodes}, entries={self.num_entries}, "
            f"adj_norm={self.adj_norm!r}, self_loop={self.self_loop})"
        )


def _normalise(ones: Tensor, degree_row: Tensor, degree_col: Tensor, adj_norm: str) -> Tensor:
    if adj_norm == "row":
        return ones / degree_row.clamp(min=1.0)
    if adj_norm == "sym":
        return _inv_sqrt(degree_row) * _inv_sqrt(degree_col)
    return ones
