"""Sparse-times-dense products for full-batch GNN layers, with a cheap backward pass on
undirected graphs.

PyTorch differentiates ``A @ X`` (``A`` a sparse CSR matrix) by building ``A^T`` on every
backward pass, which on CPU costs tens of times the product itself. The graphs here are
undirected, so the adjacency a full-batch layer multiplies by (GCN-normalised, or 0/1 for
mean aggregation) is symmetric and ``A^T = A``: :func:`spmm` checks that once per matrix and
then reuses ``A`` in the backward pass. Anything else goes to PyG's ``spmm`` unchanged.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.weak import WeakIdKeyDictionary
from torch_geometric.utils import spmm as pyg_spmm

_SYMMETRIC: WeakIdKeyDictionary = WeakIdKeyDictionary()


def is_symmetric(adj: Tensor) -> bool:
    """Whether the sparse CSR matrix ``adj`` equals its transpose (same pattern, same values).

    The answer is cached per tensor object for as long as the tensor lives; a matrix whose
    column indices are not sorted within rows reads as not symmetric (the safe answer).
    """
    if not isinstance(adj, Tensor) or adj.layout != torch.sparse_csr or adj.shape[0] != adj.shape[1]:
        return False
    cached = _SYMMETRIC.get(adj)
    if cached is None:
        transposed = adj.t().to_sparse_csr()
        cached = bool(torch.equal(adj.crow_indices(), transposed.crow_indices())
                      and torch.equal(adj.col_indices(), transposed.col_indices())
                      and torch.allclose(adj.values(), transposed.values(), rtol=1e-6, atol=0.0))
        _SYMMETRIC[adj] = cached
    return cached


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ X`` whose gradient with respect to ``X`` is ``A @ G`` (valid for symmetric ``A``)."""

    @staticmethod
    def forward(ctx, adj: Tensor, x: Tensor) -> Tensor:  # noqa: D102
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor]:  # noqa: D102
        return None, torch.sparse.mm(ctx.adj, grad)


def spmm(adj: Tensor, x: Tensor, reduce: str = "sum") -> Tensor:
    """``adj @ x`` with ``reduce`` ``sum`` (or ``add``) or ``mean``, like PyG's ``spmm``.

    When a gradient is needed and ``adj`` is a symmetric CSR matrix, the backward pass reuses
    ``adj`` instead of building its transpose; otherwise this is PyG's ``spmm``.
    """
    if (reduce in ("sum", "add", "mean") and torch.is_grad_enabled() and x.requires_grad
            and not adj.requires_grad and is_symmetric(adj)):
        out = _SymmetricSpMM.apply(adj, x)
        if reduce == "mean":
            ptr = adj.crow_indices()
            out = out / (ptr[1:] - ptr[:-1]).clamp(min=1).view(-1, 1).to(out.dtype)
        return out
    return pyg_spmm(adj, x, reduce=reduce)
