"""Latency figures from latency records (:mod:`samlp_lite.serve.bench`); each returns a Figure.

Records come from :func:`samlp_lite.serve.bench.run_bench` or, committed, from
:func:`samlp_lite.records.latency_records`.

Built on :class:`matplotlib.figure.Figure` (no ``pyplot`` state), like the other figures;
:mod:`samlp_lite.report.plotting` re-exports these functions.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from samlp_lite.report.plotting._style import MODEL_COLORS

__all__ = ["plot_latency_scaling", "plot_speedup", "plot_latency_vs_batch", "plot_gather_bytes"]
# plot_degree_sweep is imported from this module (samlp_lite.report.plotting.latency) until the package
# re-exports it.

_TEACHERS = ("sage", "gcn", "gat")


def _color(model: str) -> str:
    """The model's colour across the book; dark grey for a model without one."""
    return MODEL_COLORS.get(model, "#333333")


def _label(model: str, gather: str) -> str:
    return f"{model} ({gather})" if model in _TEACHERS else model


def _as_list(records: dict | Sequence[dict]) -> list[dict]:
    records = [records] if isinstance(records, dict) else list(records)
    bad = [r for r in records if not isinstance(r, dict) or r.get("kind") != "latency"]
    if bad or not records:
        raise ValueError("pass latency records (dicts with kind 'latency'), e.g. from "
                         "samlp_lite.records.latency_records('results')")
    return records


def _pick(record: dict, model: str, gather: str, batch_size: int | str) -> dict | None:
    for row in record["rows"]:
        if row["model"] != model or row["gather"] != gather:
            continue
        if (batch_size == "all" and row.get("all_nodes")) or (
                batch_size != "all" and not row.get("all_nodes") and row["batch_size"] == batch_size):
            return row
    return None


def _series(records: Sequence[dict]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r["model"], r["gather"]) for rec in records for r in rec["rows"]))


def _grouped_bars(ax, records: Sequence[dict], series: Sequence[tuple[str, str]], value) -> bool:
    """One group of bars per record, one bar per (model, gather) series; False if nothing was drawn."""
    width = 0.8 / max(len(series), 1)
    plotted = False
    for index, (model, gather) in enumerate(series):
        values = [value(record, model, gather) for record in records]
        if np.all(np.isnan(values)):
            continue
        positions = np.arange(len(records)) + (index - (len(series) - 1) / 2) * width
        ax.bar(positions, values, width, color=_color(model), label=_label(model, gather),
               hatch="//" if gather == "sampled" else None, edgecolor="white")
        plotted = True
    return plotted


def plot_latency_scaling(records: dict | Sequence[dict], *, batch_size: int | str = 256,
                         synthetic_only: bool = True, models: Sequence[str] | None = None) -> Figure:
    """Median latency per batch against graph size, one line per model (and gather), log-log.

    Args:
        records: latency records of several graphs.
        batch_size: which rows to plot (an int or ``"all"``; default 256).
        synthetic_only: only the ``csbm-*`` graphs (default True), whose sizes form a ladder.
        models: restrict to these model names (default every model in the records).

    Returns:
        The figure; the band around each line spans the p10 to p90 latency.
    """
    records = _as_list(records)
    if synthetic_only:
        records = [r for r in records if r.get("synthetic")] or records
    records = sorted(records, key=lambda r: r["num_nodes"])
    fig = Figure(figsize=(7.6, 4.4), layout="constrained")
    ax = fig.subplots()
    for model, gather in _series(records):
        if models is not None and model not in models:
            continue
        points = [(r["num_nodes"], _pick(r, model, gather, batch_size)) for r in records]
        points = [(n, row) for n, row in points if row is not None]
        if not points:
            continue
        nodes = np.array([n for n, _ in points], dtype=float)
        median = np.array([row["median_ms"] for _, row in points])
        low = np.array([row["p10_ms"] for _, row in points])
        high = np.array([row["p90_ms"] for _, row in points])
        style = "--" if gather == "sampled" else "-"
        ax.plot(nodes, median, style, marker="o", color=_color(model), label=_label(model, gather))
        ax.fill_between(nodes, low, high, color=_color(model), alpha=0.15, linewidth=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("nodes in the graph")
    size = "all nodes" if batch_size == "all" else f"{batch_size} target nodes"
    ax.set_ylabel(f"latency per batch of {size} (ms)")
    ax.set_title(f"Serving latency vs graph size ({_device_note(records)})", fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(frameon=False, fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def plot_speedup(records: dict | Sequence[dict], *, batch_size: int | str = 256,
                 reference: tuple[str, str] = ("sage", "full")) -> Figure:
    """Speed-up over a teacher: ``reference latency / model latency`` per graph, as bars (log scale).

    Args:
        records: one record or several (one group of bars per graph).
        batch_size: rows to compare (default 256; ``"all"`` for all-node inference).
        reference: ``(model, gather)`` of the baseline (default GraphSAGE, full neighbourhood).
    """
    records = sorted(_as_list(records), key=lambda r: r["num_nodes"])
    series = [s for s in _series(records) if s != tuple(reference)]
    fig = Figure(figsize=(max(6.4, 1.1 * len(records) + 3), 4.4), layout="constrained")
    ax = fig.subplots()
    def speedup(record: dict, model: str, gather: str) -> float:
        base, row = _pick(record, *reference, batch_size), _pick(record, model, gather, batch_size)
        return base["median_ms"] / row["median_ms"] if base and row else np.nan

    if not _grouped_bars(ax, records, series, speedup):
        raise ValueError(f"no rows for batch size {batch_size!r} with the reference {reference}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(records)), [r["graph"] for r in records], rotation=20)
    size = "all nodes" if batch_size == "all" else f"batch {batch_size}"
    ax.set_ylabel(f"speed-up over {_label(*reference)}")
    ax.set_title(f"Speed-up over the teacher, {size} ({_device_note(records)})", fontsize="medium")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    ax.legend(frameon=False, fontsize="small", ncol=2)
    return fig


def plot_latency_vs_batch(record: dict, *, per_node: bool = True) -> Figure:
    """Latency per target node (or per batch) against batch size for one graph, log-log."""
    record = _as_list(record)[0]
    fig = Figure(figsize=(7.6, 4.4), layout="constrained")
    ax = fig.subplots()
    for model, gather in _series([record]):
        rows = sorted((r for r in record["rows"] if r["model"] == model and r["gather"] == gather),
                      key=lambda r: r["batch_size"])
        sizes = np.array([r["batch_size"] for r in rows], dtype=float)
        values = np.array([r["median_ms"] for r in rows]) * (1e3 / sizes if per_node else 1.0)
        ax.plot(sizes, values, "--" if gather == "sampled" else "-", marker="o", color=_color(model),
                label=_label(model, gather))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size (target nodes; the last point is all nodes)")
    ax.set_ylabel("microseconds per target node" if per_node else "ms per batch")
    ax.set_title(f"{record['graph']}: cost per node vs batch size ({_device_note([record])})",
                 fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(frameon=False, fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def plot_gather_bytes(records: dict | Sequence[dict], *, batch_size: int | str = 256) -> Figure:
    """Bytes a server gathers per target node, per model (and gather) and graph, as bars (log scale).

    The bytes are those of the tensors handed to the model (the row key ``bytes_per_node``):
    a GNN teacher's k-hop features and edges, an MLP's feature row, SA-MLP's feature row plus
    its adjacency row's neighbour ids.

    Args:
        records: one record or several (one group of bars per graph, smallest graph first).
        batch_size: rows to plot (default 256; ``"all"`` for all-node inference).
    """
    records = sorted(_as_list(records), key=lambda r: r["num_nodes"])
    series = _series(records)
    fig = Figure(figsize=(max(6.4, 1.1 * len(records) + 3), 4.4), layout="constrained")
    ax = fig.subplots()
    def gathered(record: dict, model: str, gather: str) -> float:
        row = _pick(record, model, gather, batch_size)
        return row["bytes_per_node"] if row and row.get("bytes_per_node") else np.nan

    if not _grouped_bars(ax, records, series, gathered):
        raise ValueError(f"no rows with bytes_per_node for batch size {batch_size!r}")
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(records)), [r["graph"] for r in records], rotation=20)
    size = "all nodes" if batch_size == "all" else f"batch {batch_size}"
    ax.set_ylabel("bytes gathered per target node")
    ax.set_title(f"What serving reads from the store, {size}", fontsize="medium")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    ax.legend(frameon=False, fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def _sweep_records(sweep: dict | Sequence[dict]) -> list[dict]:
    if isinstance(sweep, dict) and sweep.get("kind") == "latency-sweep":
        records = sweep["records"]
    else:
        records = _as_list(sweep)
    return sorted(records, key=_degree_of)


def _degree_of(record: dict) -> float:
    if record.get("requested_degree") is not None:
        return float(record["requested_degree"])
    if record.get("avg_degree") is not None:
        return float(record["avg_degree"])
    return record["num_edges"] / record["num_nodes"]


def plot_degree_sweep(sweep: dict | Sequence[dict], *, batch_size: int = 256) -> Figure:
    """SA-MLP/MLP and SAGE(full)/SA-MLP against the average degree, at one graph size.

    Left: SA-MLP over the MLP (and over its floor, MLP plus the structure lookup; both from the
    interleaved timing of :func:`samlp_lite.serve.bench.floor_check` when the records have it) on linear
    axes, with the least-squares line ``a + b * degree`` through SA-MLP/MLP: SA-MLP reads one
    table row per neighbour, so its extra cost over the MLP grows in proportion to the degree.
    Right: SAGE with every neighbour over SA-MLP, log-log, with the slopes 1 and 2 for
    reference: a two-layer GNN reads about ``degree^2`` feature rows per target, SA-MLP about
    ``degree`` table rows, so the ratio grows faster than linearly while SA-MLP's fixed costs
    (features, heads) still weigh, and about linearly once its lookup dominates.

    Args:
        sweep: a ``latency-sweep`` record (:func:`samlp_lite.serve.bench.read_sweep`) or latency
            records of the same graph size at several degrees.
        batch_size: target nodes per request (default 256).
    """
    records = _sweep_records(sweep)
    degrees, over_mlp, over_floor, sage_over = [], [], [], []
    for record in records:
        sa = _pick(record, "sa-mlp", "adjacency-rows", batch_size)
        mlp = _pick(record, "mlp", "features", batch_size)
        lookup = _pick(record, "structure-lookup", "adjacency-rows", batch_size)
        sage = _pick(record, "sage", "full", batch_size)
        if sa is None or mlp is None:
            continue
        degrees.append(_degree_of(record))
        turns = next((e for e in record.get("floor", []) if e["batch_size"] == batch_size), None)
        if turns:  # the three servers timed in turn (serve.bench.floor_check): the student ratios from there
            over_mlp.append(turns["sa_mlp_ms"] / turns["mlp_ms"])
            over_floor.append(turns["sa_mlp_over_floor"])
        else:
            over_mlp.append(sa["median_ms"] / mlp["median_ms"])
            over_floor.append(sa["median_ms"] / (mlp["median_ms"] + lookup["median_ms"]) if lookup else np.nan)
        sage_over.append(sage["median_ms"] / sa["median_ms"] if sage else np.nan)
    if len(degrees) < 2:
        raise ValueError(f"need SA-MLP and MLP rows at batch size {batch_size} for at least two degrees")
    degrees_a = np.array(degrees, dtype=float)
    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(degrees_a, over_mlp, "o", color=_color("sa-mlp"), label="SA-MLP / MLP")
    slope, intercept = np.polyfit(degrees_a, np.array(over_mlp), 1)
    grid = np.linspace(0, degrees_a.max() * 1.05, 50)
    left.plot(grid, intercept + slope * grid, "--", color=_color("sa-mlp"), alpha=0.7,
              label=f"fit {intercept:.2f} + {slope:.3f} x degree")
    if not np.all(np.isnan(over_floor)):
        left.plot(degrees_a, over_floor, "s", color="#333333", label="SA-MLP / (MLP + structure lookup)")
    left.axhline(1.0, color="black", linewidth=0.8)
    left.set_xlim(0, degrees_a.max() * 1.05)
    left.set_ylim(0, None)
    left.set_xlabel("average degree")
    left.set_ylabel("latency ratio")
    left.set_title(f"SA-MLP over the MLP, batch {batch_size}", fontsize="medium")
    left.grid(True, alpha=0.3)
    left.legend(frameon=False, fontsize="small")
    sage_a = np.array(sage_over)
    ok = ~np.isnan(sage_a)
    if ok.any():
        right.plot(degrees_a[ok], sage_a[ok], "o-", color=_color("sage"), label="SAGE (full) / SA-MLP")
        anchor_d, anchor_r = degrees_a[ok][0], sage_a[ok][0]
        span = np.array([degrees_a[ok].min(), degrees_a[ok].max()])
        for power, style in ((1, ":"), (2, "-.")):
            right.plot(span, anchor_r * (span / anchor_d) ** power, style, color="#777777",
                       label=f"proportional to degree^{power}")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("average degree")
    right.set_ylabel("latency ratio")
    right.set_title(f"The GNN teacher over SA-MLP, batch {batch_size}", fontsize="medium")
    right.grid(True, which="both", alpha=0.3)
    right.legend(frameon=False, fontsize="small")
    nodes = records[0]["num_nodes"]
    fig.suptitle(f"Average-degree sweep at {nodes:,} nodes ({_device_note(records)})", fontsize="medium")
    return fig


def _device_note(records: Sequence[dict[str, Any]]) -> str:
    devices = sorted({f"{r['device']}, {r['threads']} thread{'s' if r['threads'] != 1 else ''}" for r in records})
    return "; ".join(devices)
