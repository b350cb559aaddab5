"""GAT's attention-weighted sum as sparse products: a full-batch GAT layer without per-edge messages.

PyG's ``GATConv`` gathers a ``[E, heads, channels]`` message tensor, scales it by the
attention weights and scatters it back: three passes over a tensor as large as the edges
times the layer width, and as many again in the backward pass. With every head's attention
matrix laid out as one block-diagonal sparse CSR matrix, the same sum is one sparse-dense
product; its gradient is the transposed product (for the features) and a sampled dense
product (for the attention weights), neither of which stores per-edge vectors.

:class:`FusedGATConv` keeps ``GATConv``'s parameters and its attention computation (linear
map, LeakyReLU scores, PyG's softmax, attention dropout drawn over the edges in PyG's order) and
only replaces that sum; it keeps the edges sorted by target, so the softmax runs over contiguous
segments.
It takes the fused path for an :class:`AttentionGraph` (what :class:`~samlp_lite.models.teachers.GATTeacher`
prepares for a full-batch graph) while :func:`~samlp_lite.models.sparse_ops.fast_products_enabled`
holds; anything else (an ``edge_index``, a ``(source, target)`` pair, edge features, attention
weights asked back) goes to ``GATConv`` unchanged. Both paths compute the same function:
the results agree up to floating-point rounding.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GATConv
from torch_geometric.nn.models import GAT
from torch_geometric.utils import add_self_loops, remove_self_loops, softmax
from torch_geometric.utils.sparse import index2ptr

from samlp_lite.models.sparse_ops import fast_products_enabled


@dataclass
class AttentionGraph:
    """A graph prepared once for :class:`FusedGATConv`.

    Attributes:
        edge_index: ``[2, E]`` edges with one self-loop per node (``GATConv`` removes any and adds
            one per node), sorted by target, then source: the sparse matrix's order.
        order: ``[E]`` positions in ``GATConv``'s own edge order (the edges without self-loops,
            then the loops) of the sorted edges, so that attention dropout draws the same mask.
        ptr: ``[N + 1]`` where each target's edges start in ``edge_index``.
        transpose: ``[E]`` the sorted edges re-sorted by source, then target.
        ptr_t: ``[N + 1]`` where each source's edges start in that order.
        raw_edge_index: the graph as given, for ``GATConv``'s own path.
        num_nodes: ``N``.
    """

    edge_index: Tensor
    order: Tensor
    ptr: Tensor
    transpose: Tensor
    ptr_t: Tensor
    raw_edge_index: Tensor
    num_nodes: int
    _blocks: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_nodes: int) -> "AttentionGraph":
        """Remove self-loops and add one per node, as ``GATConv`` does, and sort once."""
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"edge_index must have shape [2, E], got {list(edge_index.shape)}")
        if edge_index.numel() and int(edge_index.max()) >= num_nodes:
            raise ValueError(f"edge_index refers to node {int(edge_index.max())} but the graph has {num_nodes} nodes")
        looped, _ = add_self_loops(remove_self_loops(edge_index)[0], num_nodes=num_nodes)
        order = torch.argsort(looped[1] * num_nodes + looped[0])
        src, dst = looped[:, order]
        transpose = torch.argsort(src * num_nodes + dst)
        return cls(torch.stack([src, dst]), order, index2ptr(dst, num_nodes), transpose,
                   index2ptr(src[transpose], num_nodes), edge_index, num_nodes)

    @property
    def num_edges(self) -> int:
        """Edges, self-loops included."""
        return self.edge_index.size(1)

    def dropout_mask(self, heads: int, p: float, like: Tensor) -> Tensor:
        """``[E, heads]`` dropout mask (kept entries ``1 / (1 - p)``) in the sorted order, drawn
        over the edges in ``GATConv``'s order as ``F.dropout`` draws it on the CPU, so both
        layers drop the same attention weights."""
        mask = like.new_empty(self.num_edges, heads).bernoulli_(1 - p).div_(1 - p)
        return mask.index_select(0, self.order)

    def to(self, device: torch.device | str) -> "AttentionGraph":
        """The same graph on ``device``."""
        return AttentionGraph(self.edge_index.to(device), self.order.to(device), self.ptr.to(device),
                              self.transpose.to(device), self.ptr_t.to(device), self.raw_edge_index.to(device),
                              self.num_nodes)

    def blocks(self, heads: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """CSR indices of the ``heads``-block diagonal matrix and of its transpose (cached)."""
        if heads not in self._blocks:
            n, e = self.num_nodes, self.num_edges
            src, dst = self.edge_index

            def stack(ptr: Tensor, cols: Tensor) -> tuple[Tensor, Tensor]:
                crow = torch.cat([ptr[:-1] + h * e for h in range(heads)] + [ptr.new_tensor([heads * e])])
                return crow, torch.cat([cols + h * n for h in range(heads)])

            self._blocks[heads] = (*stack(self.ptr, src), *stack(self.ptr_t, dst[self.transpose]))
        return self._blocks[heads]


_MIN_SAMPLED_CHANNELS = 8
"""PyTorch's CPU ``sampled_addmm`` is several times slower below eight columns: narrower
operands are padded with zeros to this width."""


def _csr(crow: Tensor, col: Tensor, values: Tensor, size: int) -> Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crow, col, values, (size, size), check_invariants=False)


class _AttentionSum(torch.autograd.Function):
    """``out[i, h] = sum_e alpha[e, h] x[src_e, h]`` over the edges ``e`` into ``i``."""

    @staticmethod
    def forward(ctx, alpha: Tensor, x: Tensor, graph: AttentionGraph) -> Tensor:  # noqa: D102
        n, heads, channels = x.shape
        crow, col, _, _ = graph.blocks(heads)
        stacked = x.permute(1, 0, 2).reshape(heads * n, channels)
        out = _csr(crow, col, alpha.t().reshape(-1), heads * n) @ stacked
        ctx.graph = graph
        ctx.save_for_backward(alpha, stacked)
        return out.view(heads, n, channels).permute(1, 0, 2)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # noqa: D102
        alpha, stacked = ctx.saved_tensors
        graph = ctx.graph
        n, heads, channels = grad.shape
        crow, col, crow_t, col_t = graph.blocks(heads)
        grad_stacked = grad.permute(1, 0, 2).reshape(heads * n, channels)
        grad_alpha = grad_x = None
        if ctx.needs_input_grad[1]:
            values_t = alpha.index_select(0, graph.transpose).t().reshape(-1)
            grad_x = (_csr(crow_t, col_t, values_t, heads * n) @ grad_stacked).view(heads, n, channels)
            grad_x = grad_x.permute(1, 0, 2)
        if ctx.needs_input_grad[0]:
            if channels < _MIN_SAMPLED_CHANNELS:  # zero columns change no dot product
                pad = (0, _MIN_SAMPLED_CHANNELS - channels)
                grad_stacked, stacked = F.pad(grad_stacked, pad), F.pad(stacked, pad)
            pattern = _csr(crow, col, alpha.new_zeros(alpha.numel()), heads * n)
            sampled = torch.sparse.sampled_addmm(pattern, grad_stacked, stacked.t(), beta=0.0)
            grad_alpha = sampled.values().view(heads, -1).t()
        return grad_alpha, grad_x, None


def attention_sum(alpha: Tensor, x: Tensor, graph: AttentionGraph) -> Tensor:
    """``[N, heads, C]`` attention-weighted sums of ``x`` ``[N, heads, C]`` over ``graph``'s
    in-edges, with ``alpha`` ``[E, heads]`` in ``graph.edge_index``'s order."""
    if alpha.shape != (graph.num_edges, x.size(1)):
        raise ValueError(f"alpha has shape {list(alpha.shape)}, expected [{graph.num_edges}, {x.size(1)}]")
    return _AttentionSum.apply(alpha, x.contiguous(), graph)


class FusedGATConv(GATConv):
    """PyG's ``GATConv`` whose full-batch attention sum is one sparse product (see the module)."""

    def forward(self, x, edge_index, edge_attr=None, size=None, return_attention_weights=None):  # noqa: D102
        if not isinstance(edge_index, AttentionGraph):
            return super().forward(x, edge_index, edge_attr, size, return_attention_weights)
        if (not fast_products_enabled() or not isinstance(x, Tensor) or edge_attr is not None or size is not None
                or return_attention_weights is not None or not self.add_self_loops):
            return super().forward(x, edge_index.raw_edge_index, edge_attr, size, return_attention_weights)
        heads, channels = self.heads, self.out_channels
        residual = self.res(x) if self.res is not None else None
        if self.lin is not None:
            x_src = x_dst = self.lin(x).view(-1, heads, channels)
        else:
            x_src = self.lin_src(x).view(-1, heads, channels)
            x_dst = self.lin_dst(x).view(-1, heads, channels)
        src, dst = edge_index.edge_index
        alpha = ((x_src * self.att_src).sum(-1).index_select(0, src)
                 + (x_dst * self.att_dst).sum(-1).index_select(0, dst))
        alpha = F.leaky_relu(alpha, self.negative_slope)
        alpha = softmax(alpha, dst, edge_index.ptr, edge_index.num_nodes)
        if self.training and self.dropout > 0:
            alpha = alpha * edge_index.dropout_mask(alpha.size(1), self.dropout, alpha)
        out = attention_sum(alpha, x_src, edge_index)
        out = out.reshape(-1, heads * channels) if self.concat else out.mean(dim=1)
        if residual is not None:
            out = out + residual
        if self.bias is not None:
            out = out + self.bias
        return out


class FusedGAT(GAT):
    """PyG's ``GAT`` built from :class:`FusedGATConv` layers (same parameters, same state dict)."""

    def init_conv(self, in_channels, out_channels, **kwargs):  # noqa: D102
        if kwargs.get("v2", False):  # GATv2 keeps PyG's layer
            return super().init_conv(in_channels, out_channels, **kwargs)
        kwargs.pop("v2", None)
        heads, concat = kwargs.pop("heads", 1), kwargs.pop("concat", True)
        if getattr(self, "_is_conv_to_out", False):  # the output layer averages its heads, as in PyG
            concat = False
        if concat and out_channels % heads:
            raise ValueError(f"GAT needs out_channels ({out_channels}) divisible by heads ({heads})")
        return FusedGATConv(in_channels, out_channels // heads if concat else out_channels, heads=heads,
                            concat=concat, dropout=self.dropout.p, **kwargs)
