"""Summary statistics of a graph, as shown by ``samlp-lite data info`` and in the book."""
from __future__ import annotations

import torch
from torch_geometric.utils import degree, homophily

from samlp_lite.data.graph import GraphData

STATISTICS_KEYS = ("name", "num_nodes", "num_edges", "num_features", "num_classes", "num_splits",
                   "edge_homophily", "node_homophily", "class_homophily", "isolated_nodes",
                   "duplicate_feature_rows", "avg_degree")


def duplicate_rows(x: torch.Tensor, chunk_rows: int = 1 << 16) -> int:
    """Number of rows of ``x`` equal to an earlier row (``N`` minus the number of distinct rows).

    Rows are hashed exactly (integer arithmetic on the float32 bit patterns, ``-0.0`` read as
    ``0.0``); only rows whose hash repeats are compared in full.
    """
    num_rows = x.size(0)
    if num_rows < 2:
        return 0
    x = x.reshape(num_rows, -1).float()
    weights = torch.randint(1, 2**62, (x.size(1),), generator=torch.Generator().manual_seed(0))
    hashes = torch.empty(num_rows, dtype=torch.long)
    for start in range(0, num_rows, chunk_rows):
        block = x[start:start + chunk_rows] + 0.0
        hashes[start:start + chunk_rows] = (block.view(torch.int32).long() * weights).sum(dim=1)
    _, inverse, counts = torch.unique(hashes, return_inverse=True, return_counts=True)
    candidates = (counts[inverse] > 1).nonzero().view(-1)
    if candidates.numel() == 0:
        return 0
    rows = x[candidates] + 0.0
    return int(rows.size(0) - torch.unique(rows, dim=0).size(0))


def graph_statistics(graph: GraphData) -> dict:
    """Size, homophily and data-quality numbers of a graph.

    Homophilies come from ``torch_geometric.utils.homophily``: edge (fraction of edge entries
    joining equal labels), node (mean over nodes with at least one neighbour of the fraction of
    same-label neighbours, Pei et al. 2020; PyG counts isolated nodes as 0, which is undone
    here) and class-insensitive edge homophily (Lim et al. 2021).

    Args:
        graph: a normalised graph.

    Returns:
        dict with keys ``name, num_nodes, num_edges`` (entries of the undirected
        ``edge_index``, i.e. twice the undirected edges, as PyG counts), ``num_features,
        num_classes, num_splits, edge_homophily, node_homophily, class_homophily,
        isolated_nodes, duplicate_feature_rows, avg_degree`` (``num_edges / num_nodes``);
        plain Python numbers, ready for JSON.
    """
    data = graph.data
    num_nodes = graph.num_nodes
    edge_index, y = data.edge_index, data.y
    num_edges = int(edge_index.size(1))
    deg = degree(edge_index[0], num_nodes=num_nodes)
    isolated = int((deg == 0).sum())
    if num_edges:
        edge_h = float(homophily(edge_index, y, method="edge"))
        node_h = float(homophily(edge_index, y, method="node")) * num_nodes / (num_nodes - isolated)
        class_h = float(homophily(edge_index, y, method="edge_insensitive"))
    else:
        edge_h = node_h = class_h = float("nan")
    return {
        "name": graph.name,
        "num_nodes": num_nodes,
        "num_edges": num_edges,
        "num_features": graph.num_features,
        "num_classes": graph.num_classes,
        "num_splits": graph.num_splits,
        "edge_homophily": edge_h,
        "node_homophily": node_h,
        "class_homophily": class_h,
        "isolated_nodes": isolated,
        "duplicate_feature_rows": duplicate_rows(data.x),
        "avg_degree": num_edges / num_nodes if num_nodes else 0.0,
    }
