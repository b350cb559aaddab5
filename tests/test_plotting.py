"""Figures: every plotting function returns a Figure with the expected axes and artists."""
import importlib

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from samlp_lite.report import plotting


def render(fig: Figure) -> Figure:
    """Draw the figure to a buffer, so layout and drawing errors surface here."""
    assert isinstance(fig, Figure)
    fig.canvas.draw()
    return fig


def bars(ax) -> int:
    return sum(len(container) for container in ax.containers if hasattr(container, "patches"))


def stats(name, edge, node, cls):
    return {"name": name, "edge_homophily": edge, "node_homophily": node, "class_homophily": cls}


def test_homophily_bars_one_group_per_graph():
    fig = render(plotting.plot_homophily_bars([stats("a", 0.8, 0.7, 0.6), stats("b", 0.2, 0.3, 0.1)]))
    (ax,) = fig.axes
    assert bars(ax) == 6
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]


def test_local_homophily_one_panel_per_graph_and_skips_nan():
    local = {"a": torch.tensor([0.0, 0.5, 1.0, float("nan")]), "b": np.array([0.2, 0.4])}
    fig = render(plotting.plot_local_homophily(local, bins=5))
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert len(heights) == 5 and sum(heights) == pytest.approx(1.0)


def test_accuracy_vs_homophily_one_line_per_model_plus_chance():
    frame = pd.DataFrame({"edge_homophily": [0.1, 0.9, 0.1, 0.9], "model": ["mlp", "mlp", "sage", "sage"],
                          "test_acc": [0.5, 0.5, 0.4, 0.9]})
    fig = render(plotting.plot_accuracy_vs_homophily(frame, num_classes=5))
    (ax,) = fig.axes
    assert len(ax.lines) == 3
    assert ax.lines[-1].get_ydata()[0] == pytest.approx(0.2)


def history(n=6):
    return [{"epoch": e, "loss": 1.0 / e, "val_acc": min(0.1 * e, 0.4)} for e in range(1, n + 1)]


def test_learning_curve_marks_best_epoch():
    fig = render(plotting.plot_learning_curve(history(), title="t"))
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 1
    assert acc_ax.lines[-1].get_xdata()[0] == 4  # first epoch reaching the best 0.4


def test_learning_curve_rejects_cached_teacher_without_history():
    with pytest.raises(ValueError, match="use_cache=False"):
        plotting.plot_learning_curve([])


def test_confidence_with_and_without_labels():
    logits = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    fig = render(plotting.plot_confidence(logits, bins=5))
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == 5
    fig = render(plotting.plot_confidence(logits, torch.randint(0, 4, (30,)), bins=5))
    assert len(fig.axes[0].patches) == 10  # correct and wrong, stacked


def test_temperature_bars_per_tau_and_entropy_rises():
    logits = torch.randn(20, 3, generator=torch.Generator().manual_seed(1)) * 3
    fig = render(plotting.plot_temperature(logits, [0.5, 1, 4], node=2))
    bar_ax, entropy_ax = fig.axes
    assert bars(bar_ax) == 9
    entropies = entropy_ax.lines[0].get_ydata()
    assert list(entropies) == sorted(entropies)


def test_fetch_sizes_scatter_and_reference_line():
    fig = render(plotting.plot_fetch_sizes(torch.tensor([1, 2, 3, 0]), torch.tensor([3, 5, 9, 0])))
    (ax,) = fig.axes
    assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) == 3  # degree-0 dropped
    assert len(ax.lines) == 1


def test_gate_mixture_output_is_the_blend():
    z_a, z_x = torch.tensor([1.0, -1.0, 0.0]), torch.tensor([0.0, 2.0, 1.0])
    fig = render(plotting.plot_gate_mixture(z_a, z_x, 0.25))
    (ax,) = fig.axes
    output = [p.get_height() for p in ax.containers[2]]
    assert output == pytest.approx((0.25 * z_a + 0.75 * z_x).tolist())


def test_beta_densities_one_curve_per_a_with_optional_samples():
    fig = render(plotting.plot_beta_densities([0.5, 1.0], samples={1.0: np.random.default_rng(0).beta(1, 1, 50)}))
    (ax,) = fig.axes
    assert len(ax.lines) == 2
    assert len(ax.patches) == 25


def test_virtual_sample_rows_and_targets():
    fig = render(plotting.plot_virtual_sample(torch.tensor([1.0, 1.0, 0.0]), torch.tensor([0.0, 1.0, 1.0]),
                                              torch.tensor([0.9, 0.1]), torch.tensor([0.2, 0.8]), [1.0, 0.5, 0.0]))
    heat_ax, target_ax = fig.axes[:2]  # the third axes is the colour bar
    image = heat_ax.images[0].get_array()
    assert image.shape == (3, 3)
    assert np.allclose(image[1], [0.5, 1.0, 0.5])
    assert len(target_ax.lines) == 3


def test_loss_curves_one_line_per_run_in_each_panel():
    fig = render(plotting.plot_loss_curves({"glnn": history(), "sa-mlp": history(4)}))
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == len(acc_ax.lines) == 2
    assert loss_ax.lines[1].get_color() == plotting.MODEL_COLORS["sa-mlp"]


def test_accuracy_bars_groups_and_missing_cells():
    frame = pd.DataFrame({"dataset": ["a", "a", "b"], "model": ["mlp", "sa-mlp", "mlp"],
                          "test_acc": [0.5, 0.7, 0.6]})
    fig = render(plotting.plot_accuracy_bars(frame))
    (ax,) = fig.axes
    assert bars(ax) == 4  # 2 datasets x 2 models, one of them NaN
    labels = [t.get_text() for t in ax.texts]
    assert "70.0" in labels and "60.0" in labels


def test_gate_vs_homophily_hexbin_and_binned_mean():
    rng = np.random.default_rng(0)
    local = rng.uniform(0, 1, 200)
    data = {"a": (local, local), "b": (torch.tensor(local), torch.tensor(1 - local))}
    fig = render(plotting.plot_gate_vs_homophily(data, bins=4))
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert any(isinstance(c, PolyCollection) for c in ax.collections)
        assert len(ax.lines) == 1 and len(ax.lines[0].get_xdata()) == 4
    assert np.all(np.diff(fig.axes[0].lines[0].get_ydata()) > 0)


def test_gate_vs_dataset_homophily_real_and_synthetic_points():
    frame = pd.DataFrame({"dataset": ["cora", "csbm-h0.2"], "edge_homophily": [0.8, 0.2],
                          "mean_alpha": [0.4, 0.6], "std_alpha": [0.1, 0.1], "synthetic": [False, True]})
    fig = render(plotting.plot_gate_vs_dataset_homophily(frame))
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == ["cora", "csbm-h0.2"]
    assert len(ax.get_legend().get_texts()) == 2
    fig = render(plotting.plot_gate_vs_dataset_homophily(frame.assign(label=["Cora", "h = 0.2"])))
    assert [t.get_text() for t in fig.axes[0].texts] == ["Cora", "h = 0.2"]


def test_grid_rejects_nothing_to_plot():
    with pytest.raises(ValueError, match="at least one"):
        plotting.plot_local_homophily({})


def test_all_names_exist_and_submodule_figures_are_reexported():
    for name in plotting.__all__:
        assert hasattr(plotting, name), name
    for module in ("data", "training", "method", "results", "latency"):
        submodule = importlib.import_module(f"samlp_lite.report.plotting.{module}")
        for name in submodule.__all__:
            assert name in plotting.__all__, name
            assert getattr(plotting, name) is getattr(submodule, name)


def test_ablation_and_sensitivity_figures():
    import pandas as pd

    from samlp_lite.report.plotting import plot_ablation, plot_sensitivity

    frame = pd.DataFrame({"label": ["sage", "sa-mlp", "sa-mlp-sum"], "mean": [0.6, 0.7, 0.65],
                          "std": [0.01, 0.02, 0.01]})
    fig = plot_ablation(frame, reference="sage")
    (ax,) = fig.axes
    labels = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    assert len(ax.patches) == 2 and set(labels) == {"sa-mlp", "sa-mlp-sum"}
    assert labels["sa-mlp"] > labels["sa-mlp-sum"]  # first row on top
    sweep = {"beta": frame.assign(value=[0.0, 0.5, 1.0]), "tau": frame.assign(value=[1, 2, 3])}
    assert len(plot_sensitivity(sweep).axes) == 2
