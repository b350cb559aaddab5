"""What a server reads and how it gathers it: the stored graph and its two kinds of gather.

A server answers "logits for these target nodes" from the stored graph, a CSR adjacency plus
a feature matrix (:class:`GraphStore`). Two gathers read it:

- a GNN teacher reads the k-hop in-neighbourhood of the targets and the features of every
  node in it (:class:`NeighborhoodGatherer`, which returns a :class:`Subgraph`);
- a structure-aware student (SA-MLP, LINKX) reads the targets' adjacency rows, 1-hop
  neighbour ids only (:func:`gather_rows`).

Both are serving paths: ``index_select`` rather than advanced indexing (several times faster
on the CPU for these 1-D gathers), no per-call validation, nothing allocated per call that
grows with the graph. Tests assert each returns what the package's training-time code does
(:func:`samlp_lite.data.sampling.sample_subgraph`, :meth:`samlp_lite.data.adjacency.AdjacencyRows.gather`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from samlp_lite.data import GraphData
from samlp_lite.data.adjacency import AdjacencyBatch, AdjacencyRows, gather_csr_rows
from samlp_lite.data.sampling import InNeighbors

# --------------------------------------------------------------------------- the stored graph

@dataclass
class GraphStore:
    """The stored graph every server reads: features and in-neighbour CSR, on one device.

    Attributes:
        name: graph name.
        features: dense float32 ``[N, d]``.
        adjacency: :class:`~samlp_lite.data.adjacency.AdjacencyRows` the structure-aware students read.
        in_neighbors: the sampler's CSR (shares ``rowptr``/``col`` with ``adjacency`` when the
            rows carry no self-loops, which is the default).
        num_edges: edge entries of the graph (both directions of an undirected edge).
    """

    name: str
    features: Tensor
    adjacency: AdjacencyRows
    in_neighbors: InNeighbors
    num_edges: int

    @classmethod
    def from_graph(cls, graph: GraphData, *, adj_norm: str = "none", self_loop: bool = False,
                   device: torch.device | str = "cpu") -> "GraphStore":
        """Build the store of ``graph`` (adjacency rows with ``adj_norm``/``self_loop``)."""
        data = graph.data
        adjacency = AdjacencyRows.from_edge_index(data.edge_index, graph.num_nodes, adj_norm=adj_norm,
                                                  self_loop=self_loop)
        if self_loop:
            in_neighbors = InNeighbors.from_edge_index(data.edge_index, graph.num_nodes)
        else:  # the same CSR (rows sorted, duplicates merged): share it
            in_neighbors = InNeighbors(adjacency.rowptr, adjacency.col, graph.num_nodes)
        device = torch.device(device)
        in_neighbors = InNeighbors(in_neighbors.rowptr.to(device), in_neighbors.col.to(device),
                                   graph.num_nodes)
        features = data.x.to_dense() if data.x.layout != torch.strided else data.x
        return cls(graph.name, features.float().contiguous().to(device), adjacency.to(device),
                   in_neighbors, int(data.edge_index.size(1)))

    @classmethod
    def from_csr(cls, name: str, rowptr: Tensor, col: Tensor, features: Tensor, *, adj_norm: str = "none",
                 device: torch.device | str = "cpu") -> "GraphStore":
        """The store of a graph already in CSR form (e.g. memory-mapped from disk), without an ``edge_index``.

        Args:
            name: graph name.
            rowptr: long ``[N + 1]``.
            col: long ``[nnz]`` neighbour ids, rows sorted, no duplicates (an undirected graph
                stores both directions); shared with the store, not copied on the CPU.
            features: float ``[N, d]``.
            adj_norm: ``none`` (default: 0/1 rows, no weight array is stored), ``row`` or ``sym``;
                no self-loops are added.
            device: where the store lives.
        """
        from samlp_lite.data.adjacency import _normalise, check_adj_norm

        check_adj_norm(adj_norm)
        device = torch.device(device)
        num_nodes = int(rowptr.numel() - 1)
        rowptr, col = rowptr.long().to(device), col.long().to(device)
        degree = (rowptr[1:] - rowptr[:-1]).float()
        if adj_norm == "none":  # a stride-0 view: gathers read ones without storing nnz of them
            weight = torch.ones(1, device=device).expand(col.numel())
        else:
            row = torch.repeat_interleave(torch.arange(num_nodes, device=device), rowptr[1:] - rowptr[:-1],
                                          output_size=col.numel())
            weight = _normalise(torch.ones(col.numel(), device=device), degree[row], degree[col], adj_norm)
        adjacency = AdjacencyRows(rowptr, col, weight, degree, num_nodes, adj_norm, False)
        return cls(name, features.float().contiguous().to(device), adjacency,
                   InNeighbors(rowptr, col, num_nodes), int(col.numel()))

    @property
    def num_nodes(self) -> int:
        """N."""
        return self.adjacency.num_nodes

    @property
    def device(self) -> torch.device:
        """Where the store lives."""
        return self.features.device

    @property
    def in_degree(self) -> Tensor:
        """Float ``[N]`` in-degree (CSR row lengths)."""
        rowptr = self.in_neighbors.rowptr
        return (rowptr[1:] - rowptr[:-1]).float()


# --------------------------------------------------------------------------- adjacency rows

def gather_rows(adjacency: AdjacencyRows, nodes: Tensor, with_weights: bool = True) -> AdjacencyBatch:
    """:meth:`~samlp_lite.data.adjacency.AdjacencyRows.gather` without input checks, with ``index_select`` throughout.

    Same rows as the package gather (a test asserts it); on CPU ``index_select`` is several
    times faster than advanced indexing for these 1-D gathers. With ``with_weights=False``
    (the rows are 0/1, ``adj_norm="none"``) ``weights`` is ``None`` so ``embedding_bag`` skips
    the multiply.
    """
    positions, offsets = gather_csr_rows(adjacency.rowptr, nodes)
    weights = adjacency.weight.index_select(0, positions) if with_weights else None
    return AdjacencyBatch(adjacency.col.index_select(0, positions), offsets, weights)


# --------------------------------------------------------------------------- k-hop gathering

@dataclass
class Subgraph:
    """A gathered k-hop neighbourhood, targets first, nodes and edges grouped by hop.

    Attributes:
        n_id: long ``[n]`` global ids (targets, then each hop's new nodes).
        edge_index: long ``[2, E]`` local (source, target) edges, hop after hop.
        entry: long ``[E]`` position of each edge in the CSR ``col`` (``-1`` for added self-loops).
        nodes_per_hop: ``[B, new nodes of hop 1, ...]`` (PyG's ``num_sampled_nodes_per_hop``).
        edges_per_hop: edges of each hop (``num_sampled_edges_per_hop``).
    """

    n_id: Tensor
    edge_index: Tensor
    entry: Tensor
    nodes_per_hop: list[int]
    edges_per_hop: list[int]


class NeighborhoodGatherer:
    """k-hop in-neighbourhoods with :func:`samlp_lite.data.sampling.sample_subgraph`'s output, faster.

    Same nodes in the same order, same edges, same random draws for a given generator (tests
    assert this). Two differences make it a serving path: the global-to-local relabel table
    is allocated once and only the touched entries are reset after a call (``sample_subgraph``
    fills an ``N``-long table per call, which alone costs milliseconds on a 2M-node graph), and
    everything runs on the store's device. It also reports per-hop counts for PyG's trimming
    and can add one self-loop per target of each hop (GCN). Not thread-safe.

    Args:
        graph: the in-neighbour CSR.
    """

    def __init__(self, graph: InNeighbors) -> None:
        self.graph = graph
        self.device = graph.rowptr.device
        self._local = torch.full((graph.num_nodes,), -1, dtype=torch.long, device=self.device)

    def in_edges(self, targets: Tensor, fanout: int, generator: torch.Generator | None = None
                 ) -> tuple[Tensor, Tensor, Tensor]:
        """``(sources, target_position, entry)`` of up to ``fanout`` in-edges per target (all if < 0)."""
        rowptr = self.graph.rowptr
        positions, offsets = gather_csr_rows(rowptr, targets)
        counts = rowptr.index_select(0, targets + 1) - rowptr.index_select(0, targets)
        total = positions.numel()
        row = torch.repeat_interleave(torch.arange(targets.numel(), device=self.device), counts,
                                      output_size=total)
        if fanout >= 0 and total:
            # The package sampler's draw: a uniform key per edge, rank within its row, keep < fanout.
            keys = torch.rand(total, generator=generator, device=self.device)
            order = torch.argsort(row.double() + keys.double())
            rank = torch.arange(total, device=self.device) - offsets.index_select(0, row.index_select(0, order))
            keep = order[rank < fanout]
            positions, row = positions.index_select(0, keep), row.index_select(0, keep)
        return self.graph.col.index_select(0, positions), row, positions

    def __call__(self, targets: Tensor, fanouts: Sequence[int], generator: torch.Generator | None = None,
                 self_loops: bool = False) -> Subgraph:
        """Gather the neighbourhood of distinct ``targets`` over ``len(fanouts)`` hops."""
        local = self._local
        count = targets.numel()
        local.index_copy_(0, targets, torch.arange(count, device=self.device))
        parts_n, parts_src, parts_dst, parts_entry = [targets], [], [], []
        nodes_per_hop, edges_per_hop = [count], []
        frontier, frontier_start = targets, 0
        try:
            for fanout in fanouts:
                src, row, entry = self.in_edges(frontier, fanout, generator)
                src_local = local.index_select(0, src)
                new = torch.unique(src[src_local < 0])
                local.index_copy_(0, new, torch.arange(count, count + new.numel(), device=self.device))
                src_local = local.index_select(0, src)
                dst_local = row + frontier_start
                if self_loops:
                    loop = torch.arange(frontier_start, frontier_start + frontier.numel(), device=self.device)
                    src_local, dst_local = torch.cat([src_local, loop]), torch.cat([dst_local, loop])
                    entry = torch.cat([entry, torch.full_like(loop, -1)])
                parts_n.append(new)
                parts_src.append(src_local)
                parts_dst.append(dst_local)
                parts_entry.append(entry)
                nodes_per_hop.append(new.numel())
                edges_per_hop.append(src_local.numel())
                frontier, frontier_start, count = new, count, count + new.numel()
            n_id = torch.cat(parts_n)
        finally:
            local.index_fill_(0, torch.cat(parts_n), -1)
        if not parts_src:
            empty = torch.empty(0, dtype=torch.long, device=self.device)
            return Subgraph(n_id, torch.empty(2, 0, dtype=torch.long, device=self.device), empty,
                            nodes_per_hop, edges_per_hop)
        edge_index = torch.stack([torch.cat(parts_src), torch.cat(parts_dst)])
        return Subgraph(n_id, edge_index, torch.cat(parts_entry), nodes_per_hop, edges_per_hop)

