"""Figures of results: accuracy bars, the learned gate against homophily, ablations, sensitivity.

Re-exported by :mod:`samlp_lite.report.plotting`.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from samlp_lite.report.analysis import binned_means
from samlp_lite.report.plotting._style import _color, _grid, _numpy

__all__ = ["plot_accuracy_bars", "plot_gate_vs_homophily", "plot_gate_vs_dataset_homophily", "plot_ablation",
           "plot_sensitivity"]


def plot_accuracy_bars(frame, value: str = "test_acc") -> Figure:
    """Accuracy of several models on several datasets, as grouped bars.

    Args:
        frame: pandas ``DataFrame`` with columns ``dataset``, ``model`` and ``value``; an
            optional ``std`` column draws error bars. Models keep their order of appearance.
        value: the column to plot (default ``test_acc``).

    Returns:
        Figure: one axes, one group per dataset, one bar per model, labelled in percent.
    """
    datasets = list(dict.fromkeys(frame["dataset"]))
    models = list(dict.fromkeys(frame["model"]))
    fig = Figure(figsize=(min(0.75 * len(models) * len(datasets) + 2.0, 11.0), 3.6), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(models)
    for m, model in enumerate(models):
        rows = frame[frame["model"] == model].set_index("dataset")
        heights = [float(rows.loc[d, value]) if d in rows.index else np.nan for d in datasets]
        errors = ([float(rows.loc[d, "std"]) if d in rows.index else 0.0 for d in datasets]
                  if "std" in frame.columns else None)
        positions = np.arange(len(datasets)) + (m - (len(models) - 1) / 2) * width
        bars = ax.bar(positions, heights, width, yerr=errors, label=model, color=_color(model, m))
        ax.bar_label(bars, labels=[f"{100 * h:.1f}" if np.isfinite(h) else "" for h in heights],
                     fontsize="x-small", padding=2)
    ax.set_xticks(np.arange(len(datasets)), datasets)
    ax.set_ylabel(value.replace("_acc", " accuracy").replace("_", " "))
    ax.set_ylim(0, 1.08)
    ax.legend(frameon=False, fontsize="small", ncols=min(len(models), 6), loc="upper center",
              bbox_to_anchor=(0.5, -0.08))
    return fig


def plot_gate_vs_homophily(data: Mapping[str, tuple], bins: int = 10) -> Figure:
    """The gate ``alpha`` of every node against its local homophily, one panel per graph.

    Args:
        data: graph name -> ``(local_homophily [N], alpha [N])``; nodes with NaN homophily
            (isolated) are skipped.
        bins: homophily bins for the mean line (default 10).

    Returns:
        Figure: ``len(data)`` axes, each with a hexbin density of the nodes and the mean
        ``alpha`` per homophily bin.
    """
    fig, axes = _grid(len(data), sharey=True)
    for ax, (name, (local, alpha)) in zip(axes, data.items()):
        local, alpha = _numpy(local), _numpy(alpha)
        keep = np.isfinite(local) & np.isfinite(alpha)
        ax.hexbin(local[keep], alpha[keep], gridsize=20, extent=(0, 1, 0, 1), cmap="Blues", mincnt=1,
                  bins="log")
        centres, means, counts = binned_means(local[keep], alpha[keep], bins=bins)
        shown = counts >= 5
        ax.plot(centres[shown], means[shown], color="#d62728", marker="o", label="mean per bin")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(name)
        ax.set_xlabel("local homophily")
        ax.set_ylabel("gate alpha (weight of structure)")
        ax.legend(frameon=False, fontsize="small", loc="lower right")
    return fig


def plot_gate_vs_dataset_homophily(frame, homophily: str = "edge_homophily") -> Figure:
    """Mean gate ``alpha`` of each graph against the graph's homophily.

    Args:
        frame: pandas ``DataFrame`` with columns ``dataset``, ``homophily`` (the column named
            by the argument), ``mean_alpha`` and optionally ``std_alpha``, ``synthetic``
            (bool: drawn as open circles) and ``label`` (the point's annotation; default
            the dataset name).
        homophily: which homophily column to put on the x axis (default ``edge_homophily``).

    Returns:
        Figure: one axes, one labelled point per graph.
    """
    fig = Figure(figsize=(5.4, 3.6), layout="constrained")
    ax = fig.subplots()
    synthetic = frame["synthetic"].astype(bool) if "synthetic" in frame.columns else np.zeros(len(frame), bool)
    std = frame["std_alpha"] if "std_alpha" in frame.columns else None
    for is_synthetic, marker, face, label in ((False, "o", "#d62728", "real graphs"),
                                               (True, "o", "none", "CSBM graphs")):
        rows = frame[np.asarray(synthetic) == is_synthetic]
        if len(rows) == 0:
            continue
        ax.errorbar(rows[homophily], rows["mean_alpha"], yerr=None if std is None else std[rows.index],
                    fmt=marker, mfc=face, mec="#d62728", ecolor="#d62728", capsize=3, label=label)
        for _, row in rows.iterrows():
            text = row["label"] if "label" in frame.columns else row["dataset"]
            ax.annotate(str(text), (row[homophily], row["mean_alpha"]), textcoords="offset points",
                        xytext=(4, 4), fontsize="x-small")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(homophily.replace("_", " ") + " of the graph")
    ax.set_ylabel("mean gate alpha")
    ax.legend(frameon=False, fontsize="small")
    return fig


def plot_ablation(frame, reference: str | None = None, default: str = "sa-mlp") -> Figure:
    """Mean accuracy (± std) of each variant as horizontal bars, the default variant highlighted.

    Args:
        frame: from :func:`samlp_lite.runs.experiment.compare_models`: columns ``label``, ``mean``, ``std``.
        reference: a label drawn as a vertical dashed line instead of a bar (e.g. the teacher).
        default: the label drawn in a strong colour and as a dotted line (the unablated model).
    """
    rows = frame[frame["label"] != reference] if reference is not None else frame
    fig = Figure(figsize=(6.4, 0.38 * len(rows) + 1.2), layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(rows))[::-1]
    colours = [_color("sa-mlp", 0) if label == default else "#9aa5b1" for label in rows["label"]]
    ax.barh(positions, 100 * rows["mean"], xerr=100 * rows["std"], color=colours, capsize=2)
    ax.set_yticks(positions, rows["label"])
    for y, value in zip(positions, rows["mean"]):
        ax.annotate(f"{100 * value:.1f}", (100 * value, y), xytext=(4, -3), textcoords="offset points",
                    fontsize="x-small")
    if default in set(rows["label"]):
        ax.axvline(100 * float(rows.set_index("label").loc[default, "mean"]), color=_color("sa-mlp", 0),
                   linestyle=":", linewidth=1)
    if reference is not None and reference in set(frame["label"]):
        value = 100 * float(frame.set_index("label").loc[reference, "mean"])
        ax.axvline(value, color="black", linestyle="--", linewidth=1, label=f"{reference} (teacher)")
        ax.legend(frameon=False, fontsize="small", loc="lower right")
    low = 100 * float((rows["mean"] - rows["std"]).min())
    ax.set_xlim(max(0.0, low - 5), 100 * float((rows["mean"] + rows["std"]).max()) + 4)
    ax.set_xlabel("test accuracy (%)")
    return fig


def plot_sensitivity(frames: Mapping[str, object]) -> Figure:
    """Accuracy against the value of one config key per panel (mean ± std over splits).

    Args:
        frames: key name -> frame from :func:`samlp_lite.runs.experiment.compare_models` with an
            added ``value`` column holding the key's value of each row.
    """
    fig, axes = _grid(len(frames), width=3.2, height=2.8)
    for ax, (key, frame) in zip(axes, frames.items()):
        ax.errorbar(frame["value"], 100 * frame["mean"], yerr=100 * frame["std"], marker="o", capsize=3,
                    color=_color("sa-mlp", 0))
        ax.set_xlabel(key)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"SA-MLP, varying {key}", fontsize="medium")
    return fig
