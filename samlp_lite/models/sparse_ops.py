"""Sparse-times-dense products with a cheap backward pass: full-batch GNN layers on
undirected graphs, and the structure encoder's ``rows @ W_A``.

PyTorch differentiates ``A @ X`` (``A`` a sparse CSR matrix) by building ``A^T`` on every
backward pass, which on CPU costs tens of times the product itself. The graphs here are
undirected, so the adjacency a full-batch layer multiplies by (GCN-normalised, or 0/1 for
mean aggregation) is symmetric and ``A^T = A``: :func:`spmm` checks that once per matrix and
then reuses ``A`` in the backward pass. Anything else goes to PyG's ``spmm`` unchanged.

The structure encoder multiplies a batch of adjacency rows by ``W_A``. ``embedding_bag``'s
backward pass scatters one gradient row per stored entry; :func:`rows_times` instead
multiplies by the batch's transpose, which the batch builds once and keeps, so a full-batch
trainer (one batch, every epoch) pays for the transpose once.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.weak import WeakIdKeyDictionary
from torch_geometric.utils import spmm as pyg_spmm

from samlp_lite.data.adjacency import AdjacencyBatch

_SYMMETRIC: WeakIdKeyDictionary = WeakIdKeyDictionary()
_FAST = True


def fast_products_enabled() -> bool:
    """Whether :func:`spmm` and the structure encoder may take the fast products (default yes)."""
    return _FAST


@contextlib.contextmanager
def reference_products() -> Iterator[None]:
    """Inside this block the fast products are off: PyG's ``spmm`` and ``embedding_bag`` run.

    The results are the same up to rounding; the training-speed benchmark
    (:mod:`samlp_lite.runs.speed`) times both paths with it.
    """
    global _FAST
    previous, _FAST = _FAST, False
    try:
        yield
    finally:
        _FAST = previous


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
    if (reduce in ("sum", "add", "mean") and _FAST and torch.is_grad_enabled() and x.requires_grad
            and not adj.requires_grad and is_symmetric(adj)):
        out = _SymmetricSpMM.apply(adj, x)
        if reduce == "mean":
            ptr = adj.crow_indices()
            out = out / (ptr[1:] - ptr[:-1]).clamp(min=1).view(-1, 1).to(out.dtype)
        return out
    return pyg_spmm(adj, x, reduce=reduce)


class _RowsTimes(torch.autograd.Function):
    """``rows @ W`` whose gradient with respect to ``W`` is ``rows^T @ G`` (the cached transpose)."""

    @staticmethod
    def forward(ctx, rows: AdjacencyBatch, weight: Tensor) -> Tensor:  # noqa: D102
        ctx.rows, ctx.num_nodes = rows, weight.shape[0]
        return torch.sparse.mm(rows.to_sparse_csr(weight.shape[0]), weight)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor]:  # noqa: D102
        return None, torch.sparse.mm(ctx.rows.transposed_csr(ctx.num_nodes), grad.contiguous())


def rows_times(rows: AdjacencyBatch, weight: Tensor) -> Tensor:
    """``[B, h]`` product of a batch of weighted adjacency rows and ``weight`` ``[N, h]``.

    Equal to ``embedding_bag(rows.indices, weight, rows.offsets, mode="sum",
    per_sample_weights=rows.weights)``; the gradient with respect to ``weight`` comes from the
    batch's cached transpose. ``rows.weights`` must be set (not ``None``).
    """
    if rows.weights is None:
        raise ValueError("rows_times needs weighted rows (rows.weights is None)")
    return _RowsTimes.apply(rows, weight)
