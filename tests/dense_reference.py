"""Dense N x N adjacency references for tests of the sparse structure code (tiny graphs only)."""
import torch


def dense_adjacency(edge_index, num_nodes, adj_norm, self_loop):
    """Row i holds the sources of edges into i, optionally self-looped, then normalised (none/row/sym)."""
    adj = torch.zeros(num_nodes, num_nodes)
    adj[edge_index[1], edge_index[0]] = 1.0
    if self_loop:
        adj.fill_diagonal_(1.0)
    deg = adj.sum(1)
    if adj_norm == "row":
        return adj / deg.clamp(min=1).unsqueeze(1)
    if adj_norm == "sym":
        inv = deg.pow(-0.5)
        inv[torch.isinf(inv)] = 0
        return inv.unsqueeze(1) * adj * inv.unsqueeze(0)
    return adj
