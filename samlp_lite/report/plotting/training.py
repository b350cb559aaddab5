"""Figures of training runs and soft labels: learning and loss curves, confidence, temperature.

Re-exported by :mod:`samlp_lite.report.plotting`.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from samlp_lite.report.plotting._style import _FALLBACK, _color, _numpy

__all__ = ["plot_learning_curve", "plot_confidence", "plot_temperature", "plot_loss_curves"]


def plot_learning_curve(history: Sequence[Mapping], title: str | None = None) -> Figure:
    """Training loss and validation accuracy per epoch, best epoch marked.

    Args:
        history: ``FitResult.history`` (dicts with ``epoch``, ``loss``, ``val_acc``).
        title: figure title.

    Returns:
        Figure: two axes (loss, validation accuracy).
    """
    if not history:
        raise ValueError("empty history: a teacher read from the cache has no learning curve; "
                         "train it with use_cache=False to record one")
    epochs = [h["epoch"] for h in history]
    val = [h["val_acc"] for h in history]
    best = int(np.argmax(val))
    fig = Figure(figsize=(8, 3), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [h["loss"] for h in history], color="#1f77b4")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training loss")
    acc_ax.plot(epochs, val, color="#d62728")
    acc_ax.axvline(epochs[best], color="black", ls="--", lw=1, label=f"best epoch {epochs[best]}")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("validation accuracy")
    acc_ax.legend(frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_confidence(logits: torch.Tensor, y: torch.Tensor | None = None, tau: float = 1.0,
                    bins: int = 20) -> Figure:
    """Histogram of the soft labels' confidence ``max_c softmax(logits / tau)``.

    Args:
        logits: ``[N, C]`` teacher logits.
        y: ``[N]`` labels; when given, correct and wrong predictions get separate histograms.
        tau: temperature (default 1).
        bins: bins on ``[1/C, 1]`` (default 20).

    Returns:
        Figure: one axes.
    """
    probs = torch.softmax(logits.float() / tau, dim=-1)
    confidence = _numpy(probs.max(dim=-1).values)
    low = 1.0 / logits.size(1)
    fig = Figure(figsize=(5.2, 3.2), layout="constrained")
    ax = fig.subplots()
    if y is None:
        ax.hist(confidence, bins=bins, range=(low, 1), color="#1f77b4", edgecolor="white")
    else:
        correct = _numpy(probs.argmax(dim=-1) == y.to(probs.device)).astype(bool)
        ax.hist([confidence[correct], confidence[~correct]], bins=bins, range=(low, 1), stacked=True,
                color=["#2ca02c", "#d62728"], edgecolor="white",
                label=[f"argmax correct ({correct.mean():.0%})", "argmax wrong"])
        ax.legend(frameon=False)
    ax.set_xlabel(f"confidence max softmax(t / {tau:g})")
    ax.set_ylabel("nodes")
    return fig


def plot_temperature(logits: torch.Tensor, taus: Sequence[float], node: int = 0) -> Figure:
    """How the temperature softens soft labels.

    Args:
        logits: ``[N, C]`` teacher logits.
        taus: temperatures to compare.
        node: node whose soft label is drawn in the left panel (default 0).

    Returns:
        Figure: two axes, the soft label of ``node`` at each ``tau`` (grouped bars), and
        the mean normalised entropy ``H(p) / log C`` over all nodes against ``tau``.
    """
    taus = [float(t) for t in taus]
    num_classes = logits.size(1)
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    bar_ax, entropy_ax = fig.subplots(1, 2)
    width = 0.8 / len(taus)
    classes = np.arange(num_classes)
    entropies = []
    for k, tau in enumerate(taus):
        probs = torch.softmax(logits.float() / tau, dim=-1)
        bar_ax.bar(classes + (k - (len(taus) - 1) / 2) * width, _numpy(probs[node]), width,
                   label=f"tau = {tau:g}", color=_FALLBACK[k % len(_FALLBACK)])
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1) / math.log(num_classes)
        entropies.append(float(entropy.mean()))
    bar_ax.set_xticks(classes)
    bar_ax.set_xlabel("class")
    bar_ax.set_ylabel(f"soft label of node {node}")
    bar_ax.legend(frameon=False, fontsize="small")
    entropy_ax.plot(taus, entropies, marker="o", color="#1f77b4")
    entropy_ax.set_xscale("log", base=2)
    entropy_ax.set_xticks(taus, [f"{t:g}" for t in taus])
    entropy_ax.minorticks_off()
    entropy_ax.set_xlabel("temperature tau")
    entropy_ax.set_ylabel("mean entropy / log C")
    entropy_ax.set_ylim(0, 1.02)
    return fig


def plot_loss_curves(histories: Mapping[str, Sequence[Mapping]], title: str | None = None) -> Figure:
    """Training loss and validation accuracy of several runs.

    Args:
        histories: run name (e.g. a student) -> ``FitResult.history``.
        title: figure title.

    Returns:
        Figure: two axes (loss, validation accuracy), one line per run.
    """
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for index, (name, history) in enumerate(histories.items()):
        epochs = [h["epoch"] for h in history]
        color = _color(name, index)
        loss_ax.plot(epochs, [h["loss"] for h in history], label=name, color=color)
        acc_ax.plot(epochs, [h["val_acc"] for h in history], label=name, color=color)
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training loss")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("validation accuracy")
    acc_ax.legend(frameon=False, fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
