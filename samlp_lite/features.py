"""Node features as the models consume them: dense, or sparse CSR for bag-of-words inputs."""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

SPARSE_DENSITY_THRESHOLD = 0.1


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


def select_rows(x: Tensor, index: Tensor) -> Tensor:
    """Rows ``index`` of a dense or sparse CSR matrix, keeping its layout."""
    if x.layout != torch.sparse_csr:
        return x[index]
    crow, col, values = x.crow_indices(), x.col_indices(), x.values()
    starts, ends = crow[index], crow[index + 1]
    lengths = ends - starts
    new_crow = torch.zeros(index.numel() + 1, dtype=crow.dtype, device=crow.device)
    new_crow[1:] = torch.cumsum(lengths, 0)
    row_of_entry = torch.repeat_interleave(torch.arange(index.numel(), device=crow.device), lengths)
    position = torch.arange(int(new_crow[-1]), device=crow.device) - new_crow[:-1][row_of_entry]
    source = starts[row_of_entry] + position
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(new_crow, col[source], values[source], (index.numel(), x.shape[1]))
