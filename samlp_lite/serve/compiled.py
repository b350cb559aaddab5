"""Compiled serving for small batches, where kernel launches dominate: ``torch.compile`` and CUDA graphs.

A student's forward at 256 targets is a handful of small kernels; on a GPU the time to launch
them is comparable to the work. Two remedies are measured against eager PyTorch:

- ``compile``: ``torch.compile`` with dynamic shapes (fuses the element-wise tail into fewer kernels);
- ``cudagraphs``: ``torch.compile(mode="reduce-overhead")``, which records the kernels once per
  input shape and replays them with one launch. A CUDA graph needs fixed shapes, but a batch's
  neighbour list varies in length, so adjacency rows are padded to the next power of two
  (:func:`pad_rows`: padding entries point at row 0 with weight 0 and join the last bag, so the
  ``sum`` embedding-bag is unchanged) and only a few shapes are ever recorded.

``padded`` runs the padded inputs eagerly: the cost of padding alone.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from samlp_lite.data.adjacency import AdjacencyBatch
from samlp_lite.serve.base import Server
from samlp_lite.serve.measure import TimingPolicy, synchronize, time_calls
from samlp_lite.serve.store import GraphStore

COMPILE_MODES = ("eager", "padded", "compile", "cudagraphs")
"""How :class:`CompiledServer` runs a server's forward (see the module docstring)."""
MIN_BUCKET = 256
"""The smallest padded neighbour-list length."""


def check_compile_modes(modes: Sequence[str]) -> list[str]:
    """Return ``modes`` if each is one of :data:`COMPILE_MODES`; else raise ValueError."""
    modes = list(modes)
    unknown = [mode for mode in modes if mode not in COMPILE_MODES]
    if unknown:
        raise ValueError(f"unknown compile mode(s) {unknown}; choose from {list(COMPILE_MODES)}")
    return modes


def bucket_size(length: int, minimum: int = MIN_BUCKET) -> int:
    """The next power of two at least ``length`` (and at least ``minimum``)."""
    return max(minimum, 1 << max(length - 1, 0).bit_length())


def pad_rows(rows: AdjacencyBatch, minimum: int = MIN_BUCKET) -> AdjacencyBatch:
    """``rows`` with ``indices`` (and weights) padded to :func:`bucket_size`; same ``sum`` embedding-bag.

    Padding entries read row 0 with weight 0 and belong to the last bag, so
    ``embedding_bag(..., mode="sum", per_sample_weights=weights)`` is unchanged. Unweighted rows
    get explicit unit weights.
    """
    length = int(rows.indices.numel())
    size = bucket_size(length, minimum)
    weights = rows.weights if rows.weights is not None else torch.ones(length, device=rows.indices.device)
    return AdjacencyBatch(F.pad(rows.indices, (0, size - length)), rows.offsets, F.pad(weights, (0, size - length)))


class CompiledServer(Server):
    """A student server whose forward runs in one of :data:`COMPILE_MODES`.

    The inner server gathers as usual; ``padded`` and ``cudagraphs`` pad its adjacency rows
    (:func:`pad_rows`). ``compile`` and ``cudagraphs`` compile the inner server's forward.
    """

    def __init__(self, inner: Server, mode: str) -> None:
        check_compile_modes([mode])
        super().__init__(inner.model, inner.store)
        self.inner, self.mode = inner, mode
        self.model_name, self.gather_name = inner.model_name, inner.gather_name
        self.impl = f"{inner.impl}+{mode}"
        self._pad = mode in ("padded", "cudagraphs")
        if mode == "compile":
            self._forward = torch.compile(inner.forward, dynamic=True)
        elif mode == "cudagraphs":
            self._forward = torch.compile(inner.forward, mode="reduce-overhead", dynamic=False)
        else:
            self._forward = inner.forward

    def gather(self, targets: Tensor) -> tuple:  # noqa: D102
        inputs = self.inner.gather(targets)
        if not self._pad:
            return inputs
        return tuple(pad_rows(item) if isinstance(item, AdjacencyBatch) else item for item in inputs)

    def forward(self, *inputs: Any) -> Tensor:  # noqa: D102
        out = self._forward(*inputs)
        return out.clone() if self.mode == "cudagraphs" else out  # a replayed graph reuses its output buffer


def compile_check(store: GraphStore, num_classes: int, batch_sizes: Sequence[int], modes: Sequence[str],
                  policy: TimingPolicy, *, models: Sequence[str] = ("mlp", "sa-mlp"), seed: int = 0,
                  overrides_for: Callable[[str], dict] = lambda name: {}) -> list[dict[str, Any]]:
    """Median latency of each student in each compile mode at each batch size, with the first call's time.

    Every mode of a model shares one set of weights and sees the same random targets; calls are
    timed as every other cell of the benchmark (:func:`~samlp_lite.serve.measure.time_calls`).
    A mode that fails (e.g. no compiler for ``torch.compile`` here) gets a row with ``error``.
    """
    from samlp_lite.serve.bench import target_batches
    from samlp_lite.serve.students import build_servers

    check_compile_modes(modes)
    rows = []
    for model_name in models:
        inner = build_servers(model_name, store, num_classes, seed=seed, overrides=overrides_for(model_name))[0]
        reference: dict[int, Tensor] = {}
        for mode in modes:
            server = CompiledServer(inner, mode)
            for size in batch_sizes:
                batches = target_batches(store.num_nodes, size, policy.warmup + policy.repeats, seed + 3)
                row: dict[str, Any] = {"model": model_name, "mode": mode, "batch_size": size}
                try:
                    synchronize(store.device)
                    t0 = time.perf_counter()
                    first = server(batches[0].to(store.device)).cpu()
                    row["first_call_s"] = round(time.perf_counter() - t0, 3)
                    if mode == "eager":
                        reference[size] = first
                    elif size in reference:
                        row["max_abs_diff_vs_eager"] = float((first - reference[size]).abs().max())
                    seconds = time_calls(server, batches[1:], store.device, policy)
                    row["median_ms"] = round(1e3 * statistics.median(seconds), 4)
                    row["repeats"] = len(seconds)
                except Exception as error:  # a mode this machine cannot run is reported, not fatal
                    row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
                rows.append(row)
        del inner
    return rows
