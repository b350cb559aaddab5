"""The :class:`Server` base class of :mod:`samlp_lite.serve.students`: ``gather`` then ``forward``.

Its own module so that :mod:`samlp_lite.serve.students` (students, :func:`~samlp_lite.serve.students.build_servers`)
and :mod:`samlp_lite.serve.teachers` (GNN teachers) both build on it without importing each other.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from samlp_lite.data.adjacency import AdjacencyBatch
from samlp_lite.models.students import count_parameters
from samlp_lite.serve.store import GraphStore


class Server:
    """Logits for target nodes from a :class:`~samlp_lite.serve.store.GraphStore`: ``gather`` then ``forward``.

    Attributes:
        model_name, gather_name: the row labels (``sa-mlp`` / ``adjacency-rows`` ...).
        impl: how it computes a batch (``fused``, ``module``, ``per-hop``).
        num_params: parameter count of the served model.
    """

    model_name = ""
    gather_name = ""
    impl = ""

    @property
    def impl_all(self) -> str:
        """How all-node inference computes (same as :attr:`impl` unless a subclass says otherwise)."""
        return self.impl

    def __init__(self, model: nn.Module, store: GraphStore) -> None:
        self.model, self.store = model.eval(), store
        self.num_params = count_parameters(model)

    def gather(self, targets: Tensor) -> tuple:
        """The inputs the model needs for ``targets`` (long ``[B]`` on the store's device)."""
        raise NotImplementedError

    def forward(self, *inputs: Any) -> Tensor:
        """Logits ``[B, C]`` from :meth:`gather`'s inputs."""
        raise NotImplementedError

    def gather_all(self) -> tuple:
        """Inputs for every node; students read the stored arrays in place (no copy)."""
        return self.gather(torch.arange(self.store.num_nodes, device=self.store.device))

    def __call__(self, targets: Tensor | None) -> Tensor:
        """Logits for ``targets`` (``None``: every node), gather included."""
        with torch.inference_mode():
            return self.forward(*(self.gather_all() if targets is None else self.gather(targets)))

    def input_bytes(self, targets: Tensor | None) -> int:
        """Bytes of the tensors :meth:`gather` hands to the model (not timed)."""
        with torch.inference_mode():
            inputs = self.gather_all() if targets is None else self.gather(targets)
        return _nbytes(inputs)


def _nbytes(value: Any) -> int:
    if isinstance(value, Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, AdjacencyBatch):
        return _nbytes((value.indices, value.offsets, value.weights))
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return 0
