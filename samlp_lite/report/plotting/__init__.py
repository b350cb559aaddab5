"""Figures of the book and the notebooks. Each function returns a ``matplotlib`` Figure.

Figures are built with :class:`matplotlib.figure.Figure` rather than ``pyplot``, so no global
figure state is touched: a notebook displays the returned figure (its last expression, or
``display(fig)``), a script saves it with ``fig.savefig(path)``, and nothing is shown twice
or kept alive. Inputs are tensors, arrays, mappings or pandas frames computed by the
package (see :mod:`samlp_lite.report.analysis`); no function here trains anything.

The functions live in submodules by topic, all re-exported here, so every figure is one
import away (``from samlp_lite.report.plotting import plot_...``): ``data`` (homophily, fetch
sizes), ``training`` (learning and loss curves, soft labels), ``method`` (gate mixture,
Beta mixing, virtual samples), ``results`` (accuracy bars, gate, ablations, sensitivity)
and ``latency`` (serving latency records of :mod:`samlp_lite.serve.bench`).
"""
from __future__ import annotations

from samlp_lite.report.plotting import _style
from samlp_lite.report.plotting.data import (
    plot_accuracy_vs_homophily,
    plot_fetch_sizes,
    plot_homophily_bars,
    plot_local_homophily,
)
from samlp_lite.report.plotting.latency import (
    plot_gather_bytes,
    plot_latency_scaling,
    plot_latency_vs_batch,
    plot_speedup,
)
from samlp_lite.report.plotting.method import (
    plot_beta_densities,
    plot_gate_mixture,
    plot_virtual_sample,
)
from samlp_lite.report.plotting.results import (
    plot_ablation,
    plot_accuracy_bars,
    plot_gate_vs_dataset_homophily,
    plot_gate_vs_homophily,
    plot_sensitivity,
)
from samlp_lite.report.plotting.training import (
    plot_confidence,
    plot_learning_curve,
    plot_loss_curves,
    plot_temperature,
)

__all__ = [
    "plot_ablation", "plot_sensitivity",
    "MODEL_COLORS", "plot_accuracy_bars", "plot_accuracy_vs_homophily", "plot_beta_densities",
    "plot_confidence", "plot_fetch_sizes", "plot_gate_mixture", "plot_gate_vs_dataset_homophily",
    "plot_gate_vs_homophily", "plot_homophily_bars", "plot_learning_curve", "plot_local_homophily",
    "plot_loss_curves", "plot_temperature", "plot_virtual_sample",
    "plot_gather_bytes", "plot_latency_scaling", "plot_latency_vs_batch", "plot_speedup",
]

# Bound here (the same dict, not a copy) so the API page documents it with this comment.
#: One colour per model name, shared by every figure so a model looks the same everywhere.
MODEL_COLORS: dict[str, str] = _style.MODEL_COLORS
