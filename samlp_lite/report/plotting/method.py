"""Figures that explain SA-MLP's method: the gate's mixture, Beta mixing weights, virtual samples.

Re-exported by :mod:`samlp_lite.report.plotting`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from samlp_lite.report.plotting._style import _FALLBACK, _numpy

__all__ = ["plot_gate_mixture", "plot_beta_densities", "plot_virtual_sample"]


def plot_gate_mixture(z_structure: torch.Tensor, z_features: torch.Tensor, alpha: float) -> Figure:
    """How the gate blends the two heads for one node: ``z = alpha zA + (1 - alpha) zX``.

    Args:
        z_structure: ``[C]`` structure-head logits of the node.
        z_features: ``[C]`` feature-head logits.
        alpha: the node's gate value.

    Returns:
        Figure: one axes, three bars per class.
    """
    z_structure, z_features = _numpy(z_structure), _numpy(z_features)
    alpha = float(alpha)
    mixed = alpha * z_structure + (1 - alpha) * z_features
    classes = np.arange(z_structure.size)
    fig = Figure(figsize=(5.6, 3.2), layout="constrained")
    ax = fig.subplots()
    for k, (values, label, color) in enumerate([
            (z_structure, "structure head zA", "#9467bd"), (z_features, "feature head zX", "#7f7f7f"),
            (mixed, f"output z (alpha = {alpha:.2f})", "#d62728")]):
        ax.bar(classes + (k - 1) * 0.27, values, 0.27, label=label, color=color)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(classes)
    ax.set_xlabel("class")
    ax.set_ylabel("logit")
    ax.legend(frameon=False, fontsize="small")
    return fig


def plot_beta_densities(a_values: Sequence[float], samples: Mapping[float, np.ndarray] | None = None) -> Figure:
    """Density of the mixing weight ``mu ~ Beta(a, a)`` for several ``a``.

    Args:
        a_values: Beta parameters to draw.
        samples: optional ``a -> draws`` (e.g. from ``samlp_lite.train.losses.draw_mixing``),
            shown as histograms under the curves.

    Returns:
        Figure: one axes.
    """
    from scipy.stats import beta as beta_dist

    grid = np.linspace(0.001, 0.999, 400)
    fig = Figure(figsize=(5.2, 3.2), layout="constrained")
    ax = fig.subplots()
    for k, a in enumerate(a_values):
        color = _FALLBACK[k % len(_FALLBACK)]
        ax.plot(grid, beta_dist.pdf(grid, a, a), color=color, label=f"a = {a:g}")
        if samples is not None and a in samples:
            ax.hist(_numpy(samples[a]), bins=25, range=(0, 1), density=True, alpha=0.25, color=color)
    ax.set_ylim(0, 4)
    ax.set_xlabel("mu (weight of the node itself)")
    ax.set_ylabel("density")
    ax.legend(frameon=False)
    return fig


def plot_virtual_sample(row_i: torch.Tensor, row_j: torch.Tensor, probs_i: torch.Tensor,
                        probs_j: torch.Tensor, mus: Sequence[float],
                        labels: tuple[str, str] = ("node i", "node j")) -> Figure:
    """Virtual nodes between two real ones: mixed adjacency rows and interpolated targets.

    Args:
        row_i, row_j: ``[K]`` the two adjacency rows restricted to the union of their
            neighbours (dense, same columns).
        probs_i, probs_j: ``[C]`` their teacher soft labels.
        mus: mixing weights to show (``mu = 1`` is node i, ``mu = 0`` node j).
        labels: names of the two nodes.

    Returns:
        Figure: two axes, a heat map of ``mu a_i + (1 - mu) a_j`` (one row per ``mu``),
        and the targets ``mu p_i + (1 - mu) p_j``.
    """
    row_i, row_j = _numpy(row_i), _numpy(row_j)
    probs_i, probs_j = _numpy(probs_i), _numpy(probs_j)
    mus = [float(m) for m in mus]
    rows = np.stack([m * row_i + (1 - m) * row_j for m in mus])
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    heat_ax, target_ax = fig.subplots(1, 2, width_ratios=[1.6, 1])
    image = heat_ax.imshow(rows, aspect="auto", cmap="viridis", interpolation="nearest")
    heat_ax.set_yticks(range(len(mus)), [f"mu = {m:.2f}" for m in mus])
    heat_ax.set_xlabel(f"neighbours of {labels[0]} or {labels[1]} (columns of W_A)")
    heat_ax.set_title("virtual adjacency rows")
    fig.colorbar(image, ax=heat_ax, label="row entry")
    classes = np.arange(probs_i.size)
    for k, m in enumerate(mus):
        target_ax.plot(classes, m * probs_i + (1 - m) * probs_j, marker="o",
                       color=_FALLBACK[k % len(_FALLBACK)], label=f"mu = {m:.2f}")
    target_ax.set_xticks(classes)
    target_ax.set_xlabel("class")
    target_ax.set_ylabel("target probability")
    target_ax.set_title("interpolated teacher targets")
    target_ax.legend(frameon=False, fontsize="small")
    return fig
