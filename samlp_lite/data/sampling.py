"""Neighbour sampling for mini-batch GNN training and layer-wise full-neighbour inference.

PyG's ``NeighborLoader`` needs a compiled backend (``pyg-lib`` or ``torch-sparse``). Where
one is installed (e.g. on Colab: ``pip install pyg-lib -f https://data.pyg.org/whl/...``)
it is used; otherwise a vectorised pure-PyTorch sampler with the same semantics (uniform
sampling without replacement, up to ``fanout`` in-neighbours per node and hop) takes over.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch_geometric.typing
from torch import Tensor
from torch_geometric.data import Data
from tqdm import tqdm

from samlp_lite.data.adjacency import gather_csr_rows


def has_compiled_sampler() -> bool:
    """Whether PyG's ``NeighborLoader`` can run (``pyg-lib`` or ``torch-sparse`` installed)."""
    return bool(torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE)


@dataclass
class InNeighbors:
    """CSR of in-neighbours: ``col[rowptr[i]:rowptr[i+1]]`` are the sources of edges into ``i``."""

    rowptr: Tensor
    col: Tensor
    num_nodes: int

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_nodes: int) -> "InNeighbors":
        """Build from ``edge_index`` ``[2, E]`` (row 0 sources, row 1 targets)."""
        order = torch.argsort(edge_index[1] * num_nodes + edge_index[0])
        counts = torch.bincount(edge_index[1], minlength=num_nodes)
        rowptr = torch.zeros(num_nodes + 1, dtype=torch.long)
        rowptr[1:] = torch.cumsum(counts, 0)
        return cls(rowptr, edge_index[0, order].contiguous(), num_nodes)


def sample_in_edges(graph: InNeighbors, targets: Tensor, fanout: int,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Up to ``fanout`` uniformly drawn in-neighbours of each target (all when ``fanout < 0``).

    Returns:
        ``(sources, target_position, entry)``: global source ids, the index into ``targets``
        of each sampled edge's target, and the edge's position in ``graph.col``.
    """
    positions, offsets = gather_csr_rows(graph.rowptr, targets)
    counts = graph.rowptr[targets + 1] - graph.rowptr[targets]
    row = torch.repeat_interleave(torch.arange(targets.numel()), counts, output_size=positions.numel())
    if fanout >= 0 and positions.numel():
        keys = torch.rand(positions.numel(), generator=generator)
        order = torch.argsort(row.double() + keys.double())
        rank = torch.arange(positions.numel()) - offsets[row[order]]
        keep = order[rank < fanout]
        positions, row = positions[keep], row[keep]
    return graph.col[positions], row, positions


def sample_subgraph(graph: InNeighbors, seeds: Tensor, fanouts: list[int],
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Multi-hop sampled subgraph around ``seeds``, seeds first in the node list.

    Returns:
        ``(n_id, edge_index, entry)``: global ids of the subgraph's nodes, its local ``[2, E]``
        edges (source, target), and each edge's position in ``graph.col``.
    """
    local = torch.full((graph.num_nodes,), -1, dtype=torch.long)
    n_id = seeds.clone()
    local[n_id] = torch.arange(n_id.numel())
    frontier = n_id
    sources, targets, entries = [], [], []
    for fanout in fanouts:
        src, pos, entry = sample_in_edges(graph, frontier, fanout, generator)
        entries.append(entry)
        new = torch.unique(src[local[src] < 0])
        local[new] = torch.arange(n_id.numel(), n_id.numel() + new.numel())
        n_id = torch.cat([n_id, new])
        sources.append(local[src])
        targets.append(local[frontier[pos]])
        frontier = new
    if not sources:
        return n_id, torch.empty(2, 0, dtype=torch.long), torch.empty(0, dtype=torch.long)
    return n_id, torch.stack([torch.cat(sources), torch.cat(targets)]), torch.cat(entries)


def neighbor_batches(data: Data, input_nodes: Tensor, fanouts: list[int], batch_size: int, *,
                     shuffle: bool = True, seed: int = 0, epoch: int = 0,
                     graph: InNeighbors | None = None) -> Iterator[Data]:
    """Mini-batches of sampled subgraphs: ``Data(x, y, edge_index, n_id, batch_size)``.

    Uses PyG's ``NeighborLoader`` when a compiled backend exists, else :func:`sample_subgraph`.
    Seed nodes come first, so ``model(batch.x, batch.edge_index)[:batch.batch_size]``
    predicts them.
    """
    if has_compiled_sampler():
        from torch_geometric.loader import NeighborLoader

        torch.manual_seed(seed * 100003 + epoch)
        yield from NeighborLoader(data, num_neighbors=list(fanouts), input_nodes=input_nodes,
                                  batch_size=batch_size, shuffle=shuffle)
        return
    generator = torch.Generator().manual_seed(seed * 100003 + epoch)
    graph = graph or InNeighbors.from_edge_index(data.edge_index, data.num_nodes)
    order = input_nodes[torch.randperm(input_nodes.numel(), generator=generator)] if shuffle else input_nodes
    for start in range(0, order.numel(), batch_size):
        seeds = order[start:start + batch_size]
        n_id, edge_index, _ = sample_subgraph(graph, seeds, list(fanouts), generator)
        yield Data(x=data.x[n_id], y=data.y[n_id] if data.y is not None else None, edge_index=edge_index,
                   n_id=n_id, batch_size=seeds.numel(), num_nodes=n_id.numel())


@torch.no_grad()
def layerwise_inference(gnn, x: Tensor, edge_index: Tensor, batch_size: int, *,
                        edge_weight: Tensor | None = None, device: torch.device | None = None,
                        progress: bool = False) -> Tensor:
    """Full-neighbour predictions of a PyG ``BasicGNN`` for all nodes, one layer at a time.

    Each layer runs over chunks of ``batch_size`` target nodes with their complete 1-hop
    in-neighbourhood, so memory holds one layer of embeddings, never a k-hop tree. With
    ``edge_weight`` (e.g. GCN normalisation of the whole graph) each chunk's edges carry
    their weights, so the result equals the full-graph forward pass exactly.
    """
    num_nodes = x.shape[0]
    graph = InNeighbors.from_edge_index(edge_index, num_nodes)
    if edge_weight is not None:
        order = torch.argsort(edge_index[1] * num_nodes + edge_index[0])
        edge_weight = edge_weight[order]
    bar = tqdm(total=gnn.num_layers * -(-num_nodes // batch_size), desc="inference", disable=not progress,
               leave=False)
    for layer in range(gnn.num_layers):
        outputs = []
        for start in range(0, num_nodes, batch_size):
            targets = torch.arange(start, min(start + batch_size, num_nodes))
            n_id, sub_edges, entry = sample_subgraph(graph, targets, [-1])
            weight = edge_weight[entry].to(device) if edge_weight is not None else None
            outputs.append(_layer_step(gnn, layer, x[n_id].to(device), sub_edges.to(device), weight,
                                       targets.numel()).cpu())
            bar.update(1)
        x = torch.cat(outputs)
    bar.close()
    return x


def _layer_step(gnn, layer: int, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None,
                num_targets: int) -> Tensor:
    conv = gnn.convs[layer]
    x = (conv(x, edge_index, edge_weight=edge_weight) if edge_weight is not None else conv(x, edge_index))[:num_targets]
    return between_layers(gnn, layer, x)


def between_layers(gnn, layer: int, out: Tensor) -> Tensor:
    """What a PyG ``BasicGNN`` applies after conv ``layer`` (activation and norm; nothing after the last)."""
    if layer == gnn.num_layers - 1:
        return out
    if gnn.act is not None and gnn.act_first:
        out = gnn.act(out)
    out = gnn.norms[layer](out)
    if gnn.act is not None and not gnn.act_first:
        out = gnn.act(out)
    return out
