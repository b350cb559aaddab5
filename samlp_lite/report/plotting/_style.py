"""Shared look of the figures: one colour per model, array conversion, a grid of axes."""
from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

from samlp_lite.models.registry import REGISTRY

#: One colour per model name, shared by every figure so a model looks the same everywhere.
MODEL_COLORS: dict[str, str] = {**{name: spec.color for name, spec in REGISTRY.items()}, "teacher": "#2ca02c"}
_FALLBACK = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _color(name: str, index: int = 0) -> str:
    return MODEL_COLORS.get(name, _FALLBACK[index % len(_FALLBACK)])


def _numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().float().numpy()
    return np.asarray(values, dtype=float)


def _grid(count: int, *, width: float = 3.6, height: float = 3.0, max_cols: int = 4,
          sharey: bool = False) -> tuple[Figure, list]:
    """A constrained-layout figure with ``count`` axes on a grid (extra cells removed)."""
    if count < 1:
        raise ValueError("nothing to plot: pass at least one dataset")
    cols = min(count, max_cols)
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=sharey).ravel().tolist()
    for ax in axes[count:]:
        fig.delaxes(ax)
    return fig, axes[:count]
