"""Figures of the book and the notebooks. Each function returns a ``matplotlib`` Figure.

Figures are built with :class:`matplotlib.figure.Figure` rather than ``pyplot``, so no global
figure state is touched: a notebook displays the returned figure (its last expression, or
``display(fig)``), a script saves it with ``fig.savefig(path)``, and nothing is shown twice
or kept alive. Inputs are tensors, arrays, mappings or pandas frames computed by the
package (see :mod:`samlp_lite.analysis`); no function here trains anything.

The latency figures live in ``samlp_lite.plotting_bench`` and are re-exported here when
that module is installed.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .analysis import binned_means

__all__ = [
    "plot_ablation", "plot_sensitivity",
    "MODEL_COLORS", "plot_accuracy_bars", "plot_accuracy_vs_homophily", "plot_beta_densities",
    "plot_confidence", "plot_fetch_sizes", "plot_gate_mixture", "plot_gate_vs_dataset_homophily",
    "plot_gate_vs_homophily", "plot_homophily_bars", "plot_learning_curve", "plot_local_homophily",
    "plot_loss_curves", "plot_temperature", "plot_virtual_sample",
]

#: One colour per model name, shared by every figure so a model looks the same everywhere.
MODEL_COLORS: dict[str, str] = {
    "mlp": "#7f7f7f", "glnn": "#1f77b4", "linkx": "#9467bd", "sa-mlp-nomix": "#ff7f0e",
    "sa-mlp": "#d62728", "gcn": "#2ca02c", "sage": "#17becf", "gat": "#bcbd22", "appnp": "#8c564b",
    "teacher": "#2ca02c",
}
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


# --------------------------------------------------------------------------- chapter 1: data

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
            e.g. from :func:`~samlp_lite.analysis.local_homophily`.
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
            (e.g. from :func:`~samlp_lite.analysis.homophily_sweep`).
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


# ---------------------------------------------------------------------- chapter 2: teachers

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


# ------------------------------------------------------------------- chapter 3: the student

def plot_fetch_sizes(degree: torch.Tensor, receptive_field: torch.Tensor, hops: int = 2) -> Figure:
    """What serving one node must fetch: SA-MLP's neighbour ids versus a GNN's neighbourhood.

    Args:
        degree: ``[N]`` 1-hop degrees (SA-MLP reads that many ids).
        receptive_field: ``[N]`` nodes within ``hops`` hops (a ``hops``-layer GNN reads their
            features), e.g. from :func:`~samlp_lite.analysis.receptive_field_sizes`.
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


# ------------------------------------------------------------- chapter 4: distillation, mixing

def plot_beta_densities(a_values: Sequence[float], samples: Mapping[float, np.ndarray] | None = None) -> Figure:
    """Density of the mixing weight ``mu ~ Beta(a, a)`` for several ``a``.

    Args:
        a_values: Beta parameters to draw.
        samples: optional ``a -> draws`` (e.g. from ``samlp_lite.losses.draw_mixing``),
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


# ----------------------------------------------------------- chapter 7: interpretability

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


# ----------------------------------------------------------- chapter 9: ablations

def plot_ablation(frame, reference: str | None = None, default: str = "sa-mlp") -> Figure:
    """Mean accuracy (± std) of each variant as horizontal bars, the default variant highlighted.

    Args:
        frame: from :func:`samlp_lite.experiments.compare_models`: columns ``label``, ``mean``, ``std``.
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
        frames: key name -> frame from :func:`samlp_lite.experiments.compare_models` with an
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


# The latency figures live in plotting_bench; re-exported so every figure is one import away.
from .plotting_bench import (  # noqa: E402
    plot_gather_bytes,
    plot_latency_scaling,
    plot_latency_vs_batch,
    plot_speedup,
)

__all__ += ["plot_gather_bytes", "plot_latency_scaling", "plot_latency_vs_batch", "plot_speedup"]
