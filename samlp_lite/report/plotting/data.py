"""Figures of the data chapter: homophily of the graphs, accuracy against homophily, fetch sizes.

Also the serving-cost scatter of the student chapter (:func:`plot_fetch_sizes`), which is
drawn from graph statistics too. Re-exported by :mod:`samlp_lite.report.plotting`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from samlp_lite.report.plotting._style import _FALLBACK, _color, _grid, _numpy

__all__ = ["plot_homophily_bars", "plot_local_homophily", "plot_accuracy_vs_homophily", "plot_fetch_sizes"]


def plot_homophily_bars(statistics: Sequence[Mapping]) -> Figure:
    """Edge, node and class homophily of several graphs as grouped bars.

    Args:
        statistics: one :func:`~samlp_lite.data.graph_statistics` dict per graph.

    Returns:
        Figure: one axes, one group of three bars per graph.
    """
    kinds = ("edge_homophily", "node_homophily", "class_homophily")
    names = [s["name"] for s in statistics]
    fig = Figure(figsize=(1.4 * len(names) + 2.5, 3.2), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(kinds)
    x = np.arange(len(names))
    labels = {"edge_homophily": "edge", "node_homophily": "node", "class_homophily": "class-insensitive"}
    for k, kind in enumerate(kinds):
        ax.bar(x + (k - 1) * width, [s[kind] for s in statistics], width, label=labels[kind],
               color=_FALLBACK[k])
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1)
    ax.set_ylabel("homophily")
    ax.axhline(0.5, color="black", lw=0.6, ls=":")
    ax.legend(title="homophily", frameon=False, fontsize="small", loc="upper right")
    return fig


def plot_local_homophily(local: Mapping[str, torch.Tensor | np.ndarray], bins: int = 20) -> Figure:
    """Histogram of per-node local homophily, one panel per graph.

    Args:
        local: graph name -> ``[N]`` local homophily (NaN for isolated nodes, which are skipped),
            e.g. from :func:`~samlp_lite.report.analysis.local_homophily`.
        bins: histogram bins on ``[0, 1]`` (default 20).

    Returns:
        Figure: ``len(local)`` axes; each shows the share of nodes per bin and a dashed
        line at the mean (the node homophily).
    """
    fig, axes = _grid(len(local), sharey=False)
    for ax, (name, values) in zip(axes, local.items()):
        values = _numpy(values)
        values = values[np.isfinite(values)]
        weights = np.full(values.size, 1.0 / max(values.size, 1))
        ax.hist(values, bins=bins, range=(0, 1), weights=weights, color="#1f77b4", edgecolor="white")
        ax.axvline(values.mean() if values.size else np.nan, color="black", ls="--", lw=1,
                   label=f"mean {values.mean():.2f}" if values.size else "no edges")
        ax.set_title(name)
        ax.set_xlabel("local homophily")
        ax.set_ylabel("share of nodes")
        ax.legend(frameon=False, fontsize="small")
    return fig


def plot_accuracy_vs_homophily(frame, num_classes: int | None = None) -> Figure:
    """Test accuracy against edge homophily, one line per model.

    Args:
        frame: pandas ``DataFrame`` with columns ``edge_homophily``, ``model`` and ``test_acc``
            (e.g. from :func:`~samlp_lite.report.analysis.homophily_sweep`).
        num_classes: draws the chance level ``1 / C`` when given.

    Returns:
        Figure: one axes.
    """
    fig = Figure(figsize=(5.2, 3.4), layout="constrained")
    ax = fig.subplots()
    for index, (model, rows) in enumerate(frame.groupby("model", sort=False)):
        rows = rows.sort_values("edge_homophily")
        ax.plot(rows["edge_homophily"], rows["test_acc"], marker="o", label=model, color=_color(model, index))
    if num_classes:
        ax.axhline(1.0 / num_classes, color="black", ls=":", lw=1, label="chance")
    ax.set_xlabel("edge homophily")
    ax.set_ylabel("test accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(frameon=False)
    return fig


def plot_fetch_sizes(degree: torch.Tensor, receptive_field: torch.Tensor, hops: int = 2) -> Figure:
    """What serving one node must fetch: SA-MLP's neighbour ids versus a GNN's neighbourhood.

    Args:
        degree: ``[N]`` 1-hop degrees (SA-MLP reads that many ids).
        receptive_field: ``[N]`` nodes within ``hops`` hops (a ``hops``-layer GNN reads their
            features), e.g. from :func:`~samlp_lite.report.analysis.receptive_field_sizes`.
        hops: the GNN's depth, for the labels (default 2).

    Returns:
        Figure: one axes (log-log scatter, one point per node).
    """
    degree = _numpy(degree)
    receptive_field = _numpy(receptive_field)
    fig = Figure(figsize=(5.2, 3.6), layout="constrained")
    ax = fig.subplots()
    keep = degree > 0
    ax.scatter(degree[keep], receptive_field[keep], s=4, alpha=0.4, color="#2ca02c",
               label=f"{hops}-layer GNN: feature vectors of the {hops}-hop neighbourhood")
    top = max(float(degree.max()), 1.0)
    ax.plot([1, top], [1, top], color="#d62728", lw=2, label="SA-MLP: the node's own neighbour ids")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("degree")
    ax.set_ylabel("nodes fetched to serve one node")
    ax.legend(frameon=False, fontsize="small", loc="lower right")
    return fig
