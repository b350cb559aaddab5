"""Node features as the models consume them: dense, or sparse CSR for bag-of-words inputs."""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from samlp_lite.data.adjacency import gather_csr_rows

SPARSE_DENSITY_THRESHOLD = 0.1
SPARSE_LAYOUTS = (torch.sparse_coo, torch.sparse_csr)


def feature_density(x: Tensor) -> float:
    """Fraction of non-zero entries of a dense or sparse feature matrix ``[N, d]``."""
    total = max(x.shape[0] * x.shape[1], 1)
    if x.is_sparse or x.layout == torch.sparse_csr:
        return float(x._nnz()) / total
    return float(torch.count_nonzero(x)) / total


def use_sparse_features(x: Tensor, mode: str = "auto") -> bool:
    """Decide whether to feed ``x`` as sparse CSR: ``mode`` is ``auto``, ``true`` or ``false``."""
    if mode == "true":
        return True
    if mode == "false":
        return False
    return feature_density(x) < SPARSE_DENSITY_THRESHOLD


def to_model_features(x: Tensor, mode: str = "auto") -> Tensor:
    """Return ``x`` as sparse CSR when :func:`use_sparse_features` says so, else dense float."""
    if use_sparse_features(x, mode):
        if x.layout == torch.sparse_csr:
            return x
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return x.float().to_sparse_csr()
    return x.to_dense().float() if x.layout != torch.strided else x.float()


def feature_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout on a dense or sparse CSR feature matrix (only stored entries are dropped)."""
    if not training or p == 0.0:
        return x
    if x.layout == torch.sparse_csr:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(),
                                           F.dropout(x.values(), p, True), x.shape)
    return F.dropout(x, p, True)


def to_sparse_features(x: Tensor, layout: str = "csr") -> Tensor:
    """Convert a feature matrix ``[N, d]`` to a sparse float tensor.

    Args:
        x: dense or sparse ``[N, d]``.
        layout: ``csr`` (default; the fastest first layer on CPU) or ``coo``.

    Returns:
        The same values in the requested sparse layout.
    """
    if layout not in ("csr", "coo"):
        raise ValueError(f"layout must be 'csr' or 'coo', got {layout!r}")
    x = x.float()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        if layout == "coo":
            return x.to_sparse_coo().coalesce() if x.layout != torch.sparse_coo else x.coalesce()
        return x.to_sparse_csr()


def select_rows(x: Tensor, nodes: Tensor) -> Tensor:
    """Rows ``nodes`` (long ``[B]``) of a dense, COO or CSR ``[N, d]`` matrix, same layout."""
    if x.layout == torch.sparse_csr:
        positions, offsets = gather_csr_rows(x.crow_indices(), nodes)
        crow = torch.cat([offsets, offsets.new_tensor([positions.numel()])])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                crow, x.col_indices().index_select(0, positions), x.values().index_select(0, positions),
                size=(nodes.numel(), x.size(1)), check_invariants=False,
            )
    return x.index_select(0, nodes)
