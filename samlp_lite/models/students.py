"""Student models: MLP (plain and GLNN), LINKX, and SA-MLP, behind one call signature.

Every student is called as ``model(x, adj)``: ``x`` holds the ``[B, d]`` features of the
batch nodes, dense or a torch sparse COO/CSR matrix, and ``adj`` is the
:class:`~samlp_lite.data.adjacency.AdjacencyBatch` of the same nodes (the MLP ignores it). The
result is ``[B, C]`` logits. The first layer of every feature path is an ``F.linear`` on
``x``, which runs as a sparse-dense matmul (with backward to the weight) when ``x`` is
sparse; CSR is the fastest layout on CPU (see :func:`samlp_lite.data.features.to_sparse_features`).
"""
from __future__ import annotations

import difflib
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.models import LINKX

from samlp_lite.data.adjacency import AdjacencyBatch
from samlp_lite.models.sparse_ops import fast_products_enabled, rows_times

NORMS = ("none", "batch", "layer")
COMBINES = ("gate", "sum", "concat")


def _check_features(x: Tensor, num_features: int, adj: AdjacencyBatch | None) -> None:
    if x.dim() != 2 or x.size(1) != num_features:
        raise ValueError(
            f"x must have shape [B, {num_features}], got {list(x.shape)}"
        )
    if adj is not None and adj.batch_size != x.size(0):
        raise ValueError(
            f"x has {x.size(0)} rows but adj has {adj.batch_size}; gather both for the "
            "same nodes"
        )


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ValueError(f"{name} must be one of {list(valid)}, got {value!r}")
    return value


class MLP(nn.Module):
    """GLNN-style MLP: ``(Linear -> norm -> ReLU -> dropout) * (L - 1) -> Linear``.

    Used for the ``mlp`` and ``glnn`` students and as the heads of SA-MLP.

    Args:
        num_features: input size d.
        num_classes: output size C.
        hidden: hidden size (default 128).
        num_layers: number of Linear layers L (default 2; 1 is a linear model).
        dropout: dropout after each hidden activation (default 0.0).
        norm: ``none``, ``batch`` or ``layer`` after each hidden Linear (default ``none``).
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        hidden: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
        norm: str = "none",
    ) -> None:
        super().__init__()
        _check_choice("norm", norm, NORMS)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_features = num_features
        sizes = [num_features] + [hidden] * (num_layers - 1) + [num_classes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(_make_norm(norm, hidden) for _ in range(num_layers - 1))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, adj: AdjacencyBatch | None = None) -> Tensor:
        """Logits ``[B, C]`` from features ``x`` ``[B, d]`` (dense or sparse); ``adj`` unused."""
        _check_features(x, self.num_features, None)
        h = x
        for layer, norm in zip(self.layers[:-1], self.norms):
            h = self.dropout(F.relu(norm(layer(h))))
        return self.layers[-1](h)


def _make_norm(norm: str, size: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm1d(size)
    if norm == "layer":
        return nn.LayerNorm(size)
    return nn.Identity()


class LINKXStudent(nn.Module):
    """LINKX (Lim et al., NeurIPS 2021) fed with adjacency rows, so it mini-batches.

    Wraps ``torch_geometric.nn.models.LINKX`` unchanged: the batch's rows become a sparse
    CSR ``[B, N]`` matrix that LINKX's ``SparseLinear`` multiplies with its ``[N, h]``
    edge weight, which for all nodes is exactly LINKX's full-graph forward.

    Args:
        num_nodes: N.
        num_features: d.
        num_classes: C.
        hidden: hidden size (default 128).
        num_layers: layers of LINKX's final MLP (default 1).
        num_edge_layers: layers of the adjacency MLP (default 1).
        num_node_layers: layers of the feature MLP (default 1).
        dropout: dropout of the final MLP (default 0.0).
    """

    def __init__(
        self,
        num_nodes: int,
        num_features: int,
        num_classes: int,
        hidden: int = 128,
        num_layers: int = 1,
        num_edge_layers: int = 1,
        num_node_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_nodes = num_nodes
        self.num_features = num_features
        self.linkx = LINKX(
            num_nodes, num_features, hidden, num_classes, num_layers=num_layers,
            num_edge_layers=num_edge_layers, num_node_layers=num_node_layers,
            dropout=dropout,
        )

    def forward(self, x: Tensor, adj: AdjacencyBatch) -> Tensor:
        """Logits ``[B, C]`` from features ``[B, d]`` and the same nodes' adjacency rows."""
        _check_features(x, self.num_features, adj)
        return self.linkx(x, adj.to_sparse_csr(self.num_nodes))


DECODER_MODULES = ("structure_head", "feature_head", "head", "gate")
"""Names of SA-MLP's modules that run after the encoders (heads and gate)."""


class SAMLPOutput(NamedTuple):
    """Everything :meth:`SAMLP.decode` computes; absent parts are ``None``."""

    logits: Tensor
    """``[B, C]`` output logits."""
    alpha: Tensor | None
    """``[B]`` gate value (weight of the structure head), ``combine="gate"`` only."""
    z_structure: Tensor | None
    """``[B, C]`` structure-head logits."""
    z_features: Tensor | None
    """``[B, C]`` feature-head logits."""
    h_structure: Tensor | None
    """``[B, h]`` structure embedding after dropout and ReLU."""
    h_features: Tensor | None
    """``[B, h]`` feature embedding after dropout and ReLU."""


class SAMLP(nn.Module):
    """SA-MLP student (Chen et al., TMLR 2024; the book's method chapter, "The student").

    ``hA = relu(dropout(W_A a + b_A))`` with ``W_A a`` an ``EmbeddingBag`` sum over the
    neighbour ids (never a dense N x N), ``hX = relu(dropout(W_X x + b_X))``, heads
    ``zA = f_A(hA)``, ``zX = f_X(hX)``, gate ``alpha = sigmoid(w^T [hA; hX] + b)`` and
    logits ``alpha * zA + (1 - alpha) * zX``.

    Args:
        num_nodes: N, columns of ``W_A``.
        num_features: d.
        num_classes: C.
        hidden: h (default 128).
        head_layers: Linear layers per head (default 1: ``Linear(h, C)``).
        dropout: dropout on both embeddings and inside the heads (default 0.0).
        norm: ``none``, ``batch`` or ``layer`` between head layers (default ``none``; no
            effect with one head layer).
        combine: ``gate`` (default), ``sum`` (``zA + zX``) or ``concat`` (one head on
            ``[hA; hX]``); ablations.
        use_structure: keep the structure branch (default True); ablation.
        use_features: keep the feature branch (default True); ablation. With one branch
            dropped the logits are that branch's head and ``combine`` reads ``"single"``.
        sparse_gradients: give ``W_A`` sparse gradients (default False): a step then touches
            only the rows of the batch's neighbours, not all N; pair it with a sparse-capable
            optimiser (:func:`samlp_lite.train.distill.make_optimizer` picks
            :class:`~samlp_lite.train.distill.RowSparseAdam`, ``torch.optim.SparseAdam``'s update,
            for it). See :meth:`use_sparse_gradients`.
    """

    def __init__(
        self,
        num_nodes: int,
        num_features: int,
        num_classes: int,
        hidden: int = 128,
        head_layers: int = 1,
        dropout: float = 0.0,
        norm: str = "none",
        combine: str = "gate",
        use_structure: bool = True,
        use_features: bool = True,
        sparse_gradients: bool = False,
    ) -> None:
        super().__init__()
        _check_choice("combine", combine, COMBINES)
        _check_choice("norm", norm, NORMS)
        if not (use_structure or use_features):
            raise ValueError("SAMLP needs use_structure or use_features (or both)")
        self.num_nodes, self.num_features, self.hidden = num_nodes, num_features, hidden
        self.use_structure, self.use_features = bool(use_structure), bool(use_features)
        self.combine = combine if (use_structure and use_features) else "single"
        self.dropout = nn.Dropout(dropout)
        head = dict(hidden=hidden, num_layers=head_layers, dropout=dropout, norm=norm)
        if self.use_structure:
            self.structure_encoder = nn.EmbeddingBag(num_nodes, hidden, mode="sum", sparse=bool(sparse_gradients))
            self.structure_bias = nn.Parameter(torch.empty(hidden))
        if self.use_features:
            self.feature_encoder = nn.Linear(num_features, hidden)
        if self.combine == "concat":
            self.head = MLP(2 * hidden, num_classes, **head)
        else:
            if self.use_structure:
                self.structure_head = MLP(hidden, num_classes, **head)
            if self.use_features:
                self.feature_head = MLP(hidden, num_classes, **head)
        if self.combine == "gate":
            self.gate = nn.Linear(2 * hidden, 1)
        self.reset_structure_encoder()

    def reset_structure_encoder(self) -> None:
        """Initialise ``W_A, b_A`` as ``nn.Linear(N, h)`` would (uniform, bound 1/sqrt(N))."""
        if self.use_structure:
            bound = self.num_nodes ** -0.5
            nn.init.uniform_(self.structure_encoder.weight, -bound, bound)
            nn.init.uniform_(self.structure_bias, -bound, bound)

    @property
    def sparse_gradients(self) -> bool:
        """Whether ``W_A`` gets sparse gradients (only the rows a batch reads)."""
        return bool(self.use_structure and self.structure_encoder.sparse)

    def use_sparse_gradients(self, enabled: bool = True) -> "SAMLP":
        """Switch ``W_A``'s gradients to sparse (or back); returns the model.

        A dense gradient of ``W_A`` is ``N x h`` whatever the batch, and Adam then updates all
        N rows every step; a sparse one holds only the rows of the batch's neighbour ids.
        Build the optimiser after switching (:func:`samlp_lite.train.distill.make_optimizer`).
        """
        if self.use_structure:
            self.structure_encoder.sparse = bool(enabled)
        return self

    def structure_preactivation(self, adj: AdjacencyBatch) -> Tensor:
        """``W_A a_i + b_A`` for the batch rows, ``[B, h]``."""
        if not self.use_structure:
            raise ValueError("this SAMLP was built with use_structure=False")
        if adj is None:
            raise ValueError("adj (an AdjacencyBatch) is required by the structure branch")
        weight = self.structure_encoder.weight
        if (fast_products_enabled() and torch.is_grad_enabled() and weight.requires_grad
                and not self.structure_encoder.sparse and weight.device.type == "cpu" and adj.weights is not None):
            out = rows_times(adj, weight)
        else:
            out = self.structure_encoder(adj.indices, adj.offsets, per_sample_weights=adj.weights)
        return out + self.structure_bias

    def feature_preactivation(self, x: Tensor) -> Tensor:
        """``W_X x_i + b_X`` for dense or sparse ``x`` ``[B, d]``, ``[B, h]``."""
        if not self.use_features:
            raise ValueError("this SAMLP was built with use_features=False")
        if x is None:
            raise ValueError("x is required by the feature branch")
        _check_features(x, self.num_features, None)
        return self.feature_encoder(x)

    def decode(
        self,
        structure_pre: Tensor | None,
        feature_pre: Tensor | None,
        return_parts: bool = False,
        heads: dict[str, nn.Module] | None = None,
    ) -> Tensor | SAMLPOutput:
        """Logits from the two pre-activations (each ``[B, h]``; ``None`` for a dropped branch).

        Any ``[B, h]`` tensor may stand in for ``structure_pre``, e.g. a mixed one or a
        latent predictor's ``g(x)``. ``heads`` may replace any of the modules named in
        :data:`~samlp_lite.models.students.DECODER_MODULES` (the inductive stage 2 fine-tunes copies of them).

        Returns:
            ``[B, C]`` logits, or an :class:`SAMLPOutput` when ``return_parts``.
        """
        h_s = self._embed(structure_pre, self.use_structure, "structure_pre")
        h_f = self._embed(feature_pre, self.use_features, "feature_pre")
        alpha = z_s = z_f = None
        if self.combine == "concat":
            logits = self._part("head", heads)(torch.cat([h_s, h_f], dim=-1))
        else:
            z_s = self._part("structure_head", heads)(h_s) if h_s is not None else None
            z_f = self._part("feature_head", heads)(h_f) if h_f is not None else None
            if self.combine == "gate":
                alpha = torch.sigmoid(self._part("gate", heads)(torch.cat([h_s, h_f], dim=-1))).squeeze(-1)
                logits = alpha.unsqueeze(-1) * z_s + (1 - alpha.unsqueeze(-1)) * z_f
            elif self.combine == "sum":
                logits = z_s + z_f
            else:
                logits = z_s if z_s is not None else z_f
        if return_parts:
            return SAMLPOutput(logits, alpha, z_s, z_f, h_s, h_f)
        return logits

    def decoder_modules(self) -> dict[str, nn.Module]:
        """The heads and gate of this model (the part :meth:`decode` runs after the encoders)."""
        return {name: getattr(self, name) for name in DECODER_MODULES if hasattr(self, name)}

    def _part(self, name: str, heads: dict[str, nn.Module] | None) -> nn.Module:
        return heads[name] if heads is not None and name in heads else getattr(self, name)

    def _embed(self, pre: Tensor | None, used: bool, name: str) -> Tensor | None:
        if not used:
            return None
        if pre is None:
            raise ValueError(f"{name} is required: this SAMLP uses that branch")
        if pre.dim() != 2 or pre.size(1) != self.hidden:
            raise ValueError(f"{name} must have shape [B, {self.hidden}], got {list(pre.shape)}")
        return F.relu(self.dropout(pre))

    def forward(
        self, x: Tensor | None, adj: AdjacencyBatch | None, return_parts: bool = False
    ) -> Tensor | SAMLPOutput:
        """Logits ``[B, C]`` (or :class:`SAMLPOutput`) from features and adjacency rows."""
        if x is not None and adj is not None:
            _check_features(x, self.num_features, adj)
        structure_pre = self.structure_preactivation(adj) if self.use_structure else None
        feature_pre = self.feature_preactivation(x) if self.use_features else None
        return self.decode(structure_pre, feature_pre, return_parts=return_parts)


STUDENT_OPTIONS: dict[str, tuple[str, ...]] = {
    "mlp": ("hidden", "num_layers", "dropout", "norm"),
    "linkx": ("hidden", "num_layers", "num_edge_layers", "num_node_layers", "dropout"),
    "sa-mlp": ("hidden", "head_layers", "dropout", "norm", "combine", "use_structure", "use_features"),
}
"""The options of each student architecture (GLNN is an ``mlp``; every SA-MLP variant an ``sa-mlp``)."""


def _closest(value: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(value, valid, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def build_student(
    name: str, *, num_features: int, num_classes: int, num_nodes: int, **options: Any
) -> nn.Module:
    """Build a student architecture (model names map to one through :mod:`samlp_lite.models.registry`).

    Args:
        name: ``mlp``, ``linkx`` or ``sa-mlp``.
        num_features: d.
        num_classes: C.
        num_nodes: N (columns of the adjacency; unused by the MLPs).
        **options: model options; the valid ones per name are ``STUDENT_OPTIONS[name]``.

    Returns:
        The model, called as ``model(x, adj)``.
    """
    if name not in STUDENT_OPTIONS:
        valid = sorted(STUDENT_OPTIONS)
        raise ValueError(f"unknown student architecture {name!r}{_closest(name, valid)}; valid: {valid}")
    unknown = [key for key in options if key not in STUDENT_OPTIONS[name]]
    if unknown:
        valid = list(STUDENT_OPTIONS[name])
        raise ValueError(
            f"unknown option {unknown[0]!r} for student {name!r}"
            f"{_closest(unknown[0], valid)}; valid: {valid}"
        )
    if name == "mlp":
        return MLP(num_features, num_classes, **options)
    if name == "linkx":
        return LINKXStudent(num_nodes, num_features, num_classes, **options)
    return SAMLP(num_nodes, num_features, num_classes, **options)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter entries of ``model`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
