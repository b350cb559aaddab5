"""Summaries of result records (:mod:`samlp_lite.records`): the accuracy tables of the book and ``samlp-lite results``.

Records are the JSON files under ``results/``. :func:`load_records` reads them,
:func:`accuracy_table` lays one setting and teacher out as the paper does (rows: datasets;
columns: teacher, MLP, GLNN, LINKX, SA-MLP w/o mixing, SA-MLP; cells: mean ± std in percent),
:func:`summary_frame` gives the same numbers in long form for CSV, and :func:`to_markdown`
renders a table. :func:`per_split_table` and :func:`per_split_figure` show one record.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from samlp_lite.data.registry import metric_key
from samlp_lite.models.registry import is_teacher, label_of, model_spec, names, teachers
from samlp_lite.records import (  # noqa: F401 (re-exported)
    ACCURACY_METRICS,
    SMOKE_DIR,
    latency_records,
    load_records,
    mean_std,
    pick_record,
)

TABLE_MODELS = tuple(names(in_tables=True))
"""Student columns of the main tables, in the paper's order."""
INDUCTIVE_ROWS = {"tran": "tran_acc", "ind": "ind_acc", "prod": "prod_acc", "ind, isolated": "ind_isolated_acc"}
"""Rows of an inductive table, from evaluation name to record key (``ind, isolated`` is SA-MLP's latent predictor)."""
MISSING = "–"


def latency_table(records: Iterable[dict]) -> pd.DataFrame:
    """One row per measured (graph, model, gather, batch size) of latency records, in milliseconds.

    Columns: ``graph``, ``num_nodes``, ``device``, ``threads``, ``batch`` (the batch size as
    text, ``"all"`` for all-node inference), then the row's own keys (``model``, ``gather``,
    ``batch_size``, ``median_ms``, ``p10_ms``, ``p90_ms``, ``peak_mem_bytes``, ``num_params``,
    ...; see :mod:`samlp_lite.serve.bench`).
    """
    rows = [{"graph": r.get("graph"), "num_nodes": r.get("num_nodes"), "device": r.get("device"),
             "threads": r.get("threads"), "batch": "all" if row.get("all_nodes") else str(row.get("batch_size")),
             **row}
            for r in records if r.get("kind") == "latency" for row in r.get("rows", [])]
    return pd.DataFrame(rows)


def speed_table(records: Iterable[dict]) -> pd.DataFrame:
    """Training speed records (``samlp-lite speed``) as one row per dataset and model.

    Columns: ``dataset``, ``model`` (display name), ``fast s/epoch``, ``reference s/epoch``,
    ``speed-up`` (reference / fast) and ``max |diff|`` (how far the two runs' logits end apart).
    """
    rows = [{"dataset": r.get("dataset"), "model": label_of(row["model"]),
             "fast s/epoch": row["fast_s_per_epoch"], "reference s/epoch": row["reference_s_per_epoch"],
             "speed-up": row["speedup"], "max |diff|": row["max_abs_diff"]}
            for r in records if r.get("kind") == "training_speed" for row in r.get("rows", [])]
    return pd.DataFrame(rows, columns=["dataset", "model", "fast s/epoch", "reference s/epoch", "speed-up",
                                       "max |diff|"])


def _batch_order(label: str) -> tuple[bool, int]:
    return (label == "all", int(label) if label.isdigit() else 0)


def latency_pivot(records: Sequence[dict], value: str = "median_ms") -> pd.DataFrame:
    """One latency-row key per (graph, model, gather) and batch, e.g. the median milliseconds.

    Args:
        records: latency records (a graph measured twice keeps its first record's values).
        value: a row key such as ``"median_ms"``, ``"peak_mem_bytes"`` or ``"bytes_per_node"``.

    Returns:
        A DataFrame indexed by ``graph, model, gather`` in the records' order, with one column
        per batch (``"1"``, ``"256"``, ..., ``"all"``, smallest first); cells that were not
        measured are NaN.
    """
    table = latency_table(records)
    if table.empty:
        return table
    keys = ["graph", "model", "gather"]
    wide = table.pivot_table(index=keys, columns="batch", values=value, aggfunc="first")
    order = list(dict.fromkeys(zip(*(table[k] for k in keys))))
    return wide.reindex(index=pd.MultiIndex.from_tuples(order, names=keys),
                        columns=sorted(wide.columns, key=_batch_order))


RATIO_NAMES = {"sa_mlp_over_mlp": "SA-MLP / MLP", "sage_full_over_sa_mlp": "SAGE (full) / SA-MLP"}
"""The two headline latency ratios and their display names."""


def latency_ratio_table(ratios: pd.DataFrame) -> pd.DataFrame:
    """The headline ratios of :func:`latency_ratios` as a table: one row per graph (smallest
    first), one column per ratio and batch (``1``, ``256``, ``4096``, ``all``), display names."""
    table = ratios.pivot_table(index=["graph", "num_nodes"], columns="batch", values=list(RATIO_NAMES))
    table = table.reindex(columns=sorted(table.columns.get_level_values("batch").unique(), key=_batch_order),
                          level="batch").sort_index(level="num_nodes")
    return table.rename(columns=RATIO_NAMES)


def latency_ratios(records: Iterable[dict]) -> pd.DataFrame:
    """Speed ratios of latency records: one row per graph and batch size.

    Columns: ``graph``, ``num_nodes``, ``batch`` (``"1"``, ``"256"``, ... or ``"all"``),
    ``batch_size``, then the ratios of median latencies from
    :func:`samlp_lite.serve.bench.summarize`: ``sa_mlp_over_mlp`` (SA-MLP / MLP) and
    ``<teacher>_<gather>_over_sa_mlp`` (e.g. ``sage_full_over_sa_mlp``) where both were measured.
    """
    from samlp_lite.serve.bench import summarize

    rows = []
    for record in records:
        if record.get("kind") != "latency":
            continue
        all_sizes = {row["batch_size"] for row in record.get("rows", []) if row.get("all_nodes")}
        for entry in summarize(record.get("rows", [])):
            batch = "all" if entry["batch_size"] in all_sizes else str(entry["batch_size"])
            rows.append({"graph": record.get("graph"), "num_nodes": record.get("num_nodes"), "batch": batch,
                         **entry})
    return pd.DataFrame(rows)


def format_mean_std(values: Sequence[float]) -> str:
    """Accuracies as fractions -> ``"81.23 ± 1.05"`` (percent, two decimals); ``–`` when empty."""
    if not values:
        return MISSING
    mean, std = mean_std(values)
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def _dataset_order(names: Iterable[str]) -> list[str]:
    from samlp_lite.data import list_datasets

    known = list_datasets()
    names = set(names)
    return [n for n in known if n in names] + sorted(names - set(known))


def teachers_in(records: Iterable[dict], setting: str) -> list[str]:
    """Teachers that appear in ``setting`` (as a model or as the teacher of a student), in a fixed order."""
    found = {r.get("teacher") for r in records if r.get("setting") == setting} | {
        r.get("model") for r in records if r.get("setting") == setting}
    return [t for t in teachers() if t in found]


def accuracy_table(records: Iterable[dict], setting: str = "transductive", teacher: str | None = "sage",
                   metric: str | None = None, *, models: Sequence[str] = TABLE_MODELS) -> pd.DataFrame:
    """The paper's table for one setting and teacher, as ``"mean ± std"`` strings (percent).

    Args:
        records: accuracy records (from :func:`load_records`).
        setting: ``transductive`` or ``inductive``.
        teacher: the teacher column and the teacher of GLNN and SA-MLP (MLP and LINKX have none);
            ``None`` for a table of the students without a teacher only.
        metric: a record key such as ``"test_acc"`` or ``"prod_acc"``. Default: ``test_acc``
            for transductive; for inductive every row of :data:`INDUCTIVE_ROWS` (``tran``,
            ``ind``, ``prod`` and SA-MLP's ``ind, isolated``) per dataset; on the binary graphs
            whose metric is ROC AUC the same in ROC AUC, the dataset labelled ``(ROC AUC)``.
        models: student columns after the teacher's.

    Returns:
        A DataFrame indexed by dataset (inductive without ``metric``: by dataset and
        evaluation), with columns ``[teacher label, *model labels]``; missing cells read ``–``.
        Only datasets with at least one record in ``setting`` appear.
    """
    records = [r for r in records if r.get("kind") == "accuracy" and r.get("setting") == setting]
    if teacher is None:
        models = [m for m in models if not _uses_teacher(m)]
    columns = ([(teacher, None)] if teacher else []) + [(m, teacher if _uses_teacher(m) else None) for m in models]
    if metric is not None:
        evals = {None: metric}
    elif setting == "transductive":
        evals = {None: "test_acc"}
    else:
        evals = dict(INDUCTIVE_ROWS)
    rows, index = [], []
    for dataset in _dataset_order(r["dataset"] for r in records):
        chosen = [pick_record(records, dataset=dataset, model=m, teacher=t, setting=setting) for m, t in columns]
        own = metric is None
        label = _dataset_label(dataset) if own else dataset
        for name, key in evals.items():
            key = metric_key(dataset, key) if own else key
            cells = [format_mean_std(r.get(key, [])) if r else MISSING for r in chosen]
            if name == "ind, isolated" and all(c == MISSING for c in cells):
                continue
            rows.append(cells)
            index.append(label if name is None else (label, name))
    labels = [label_of(m) for m, _ in columns]
    if evals.keys() == {None}:
        return pd.DataFrame(rows, index=pd.Index(index, name="dataset"), columns=labels)
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["dataset", "eval"]) if index
                        else pd.MultiIndex.from_tuples([], names=["dataset", "eval"]), columns=labels)


def _dataset_label(dataset: str) -> str:
    """The dataset's name in tables that use its own metric: ``(ROC AUC)`` added on the binary graphs."""
    return f"{dataset} (ROC AUC)" if metric_key(dataset, "test_acc") != "test_acc" else dataset


def _uses_teacher(model: str) -> bool:
    return not is_teacher(model) and model_spec(model).uses_teacher


def summary_frame(records: Iterable[dict]) -> pd.DataFrame:
    """Every accuracy record's metrics in long form: one row per record and metric.

    Columns: ``dataset, setting, teacher, model, metric, mean, std`` (percent), ``num_splits``,
    ``smoke``, ``commit``, ``path``. This is what ``samlp-lite results --csv`` writes.
    """
    rows = []
    for r in records:
        if r.get("kind") != "accuracy":
            continue
        for metric in ACCURACY_METRICS:
            if metric in r:
                mean, std = mean_std(r[metric])
                rows.append({"dataset": r.get("dataset"), "setting": r.get("setting"), "teacher": r.get("teacher"),
                             "model": r.get("model"), "metric": metric, "mean": round(100 * mean, 4),
                             "std": round(100 * std, 4), "num_splits": len(r.get("splits", [])),
                             "smoke": bool((r.get("provenance") or {}).get("smoke")),
                             "commit": (r.get("provenance") or {}).get("commit"), "path": r.get("_path")})
    columns = ["dataset", "setting", "teacher", "model", "metric", "mean", "std", "num_splits", "smoke", "commit",
               "path"]
    return pd.DataFrame(rows, columns=columns)


def to_markdown(df: pd.DataFrame, *, index: bool = True) -> str:
    """A DataFrame as a GitHub/MyST pipe table (index levels first when ``index``)."""
    header = [str(c) for c in df.columns]
    body = [[str(v) for v in row] for row in df.itertuples(index=False)]
    if index:
        names = [n or "" for n in df.index.names]
        keys = [k if isinstance(k, tuple) else (k,) for k in df.index]
        header = names + header
        body = [[str(k) for k in key] + row for key, row in zip(keys, body)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = [":---"] * (len(df.index.names) if index else 0) + ["---:"] * len(df.columns)
    return "\n".join([line(header), "|" + "|".join(align) + "|", *(line(row) for row in body)])


def splits_note(records: Iterable[dict], setting: str, teacher: str | None,
                models: Sequence[str] = TABLE_MODELS) -> str:
    """How many splits the cells of :func:`accuracy_table` average over, e.g. ``"10 splits"`` or ``"2-10 splits"``."""
    wanted = {(teacher, None)} | {(m, teacher if _uses_teacher(m) else None) for m in models}
    counts = {len(r.get("splits", [])) for r in records
              if r.get("kind") == "accuracy" and r.get("setting") == setting and (r.get("model"), r.get("teacher")) in wanted}
    if not counts:
        return "no records"
    lo, hi = min(counts), max(counts)
    return f"{lo} split{'s' if hi > 1 else ''}" if lo == hi else f"{lo}-{hi} splits"


def results_markdown(records: Sequence[dict], settings: Sequence[str] = ("transductive", "inductive"),
                     teachers: Sequence[str] | None = None) -> str:
    """Every table (per setting, then per teacher) with a heading and a caption, as one Markdown text."""
    parts = []
    for setting in settings:
        # records of teacher-free students only (MLP, LINKX) still get a table, without teacher columns
        for teacher in teachers or teachers_in(records, setting) or [None]:
            table = accuracy_table(records, setting, teacher)
            if table.empty:
                continue
            what = "test accuracy" if setting == "transductive" else (
                "accuracy on observed (tran) and held-out (ind) test nodes and their weighted mean (prod)")
            who = f"teacher {label_of(teacher)}" if teacher else "no teacher"
            parts.append(f"### {setting.capitalize()}, {who}\n\n"
                         f"{to_markdown(table)}\n\nMean ± std of {what}, in percent, over "
                         f"{splits_note(records, setting, teacher)}.")
    return "\n\n".join(parts) + ("\n" if parts else "")


def per_split_table(record: dict) -> pd.DataFrame:
    """One record's accuracies per split (percent), with a final ``mean ± std`` row."""
    keys = [k for k in ACCURACY_METRICS if k in record]
    frame = pd.DataFrame({k: [round(100 * float(v), 2) for v in record[k]] for k in keys},
                         index=pd.Index(record["splits"], name="split"))
    summary = pd.DataFrame([[format_mean_std(record[k]) for k in keys]], columns=keys, index=["mean ± std"])
    return pd.concat([frame.astype(object), summary])


def per_split_figure(record: dict) -> Any:
    """Bar plot of one record's test accuracies per split (inductive: tran, ind, prod side by side).

    Returns:
        A matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    keys = ["test_acc"] if "test_acc" in record else [k for k in ("tran_acc", "ind_acc", "prod_acc") if k in record]
    splits = record["splits"]
    fig, ax = plt.subplots(figsize=(max(3.5, 0.5 * len(splits) * len(keys) + 1.5), 2.8))
    width = 0.8 / len(keys)
    for i, key in enumerate(keys):
        ax.bar([s + (i - (len(keys) - 1) / 2) * width for s in range(len(splits))],
               [100 * v for v in record[key]], width, label=key)
    ax.set_xticks(range(len(splits)), [str(s) for s in splits])
    ax.set_xlabel("split")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    teacher = f", teacher {record['teacher']}" if record.get("teacher") else ""
    ax.set_title(f"{record['model']} on {record['dataset']} ({record['setting']}{teacher})", fontsize=10)
    if len(keys) > 1:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def table_frame(records: Iterable[dict], setting: str = "transductive", teacher: str = "sage",
                metric: str | None = None, models: Sequence[str] = TABLE_MODELS) -> pd.DataFrame:
    """The cells of :func:`accuracy_table` in long form for plotting: ``dataset, model, <metric>, std`` (fractions);
    without ``metric``, ROC AUC on the binary graphs (their label says so), as in the table."""
    records = [r for r in records if r.get("kind") == "accuracy" and r.get("setting") == setting]
    own = metric is None
    metric = metric or ("test_acc" if setting == "transductive" else "prod_acc")
    rows = []
    for dataset in _dataset_order(r["dataset"] for r in records):
        key, label = (metric_key(dataset, metric), _dataset_label(dataset)) if own else (metric, dataset)
        for model in [teacher, *models]:
            owner = teacher if model != teacher and _uses_teacher(model) else None
            record = pick_record(records, dataset=dataset, model=model, teacher=owner, setting=setting)
            if record is not None and record.get(key):
                mean, std = mean_std(record[key])
                rows.append({"dataset": label, "model": label_of(model), metric: mean, "std": std})
    return pd.DataFrame(rows, columns=["dataset", "model", metric, "std"])


def mean_accuracy(records: Iterable[dict], setting: str = "transductive", teacher: str | None = "sage",
                  metric: str | None = None, *, models: Sequence[str] = TABLE_MODELS,
                  datasets: Sequence[str] | None = None) -> pd.DataFrame:
    """The means behind :func:`accuracy_table` as numbers (fractions), for prose and checks.

    Args:
        records: accuracy records.
        setting: ``transductive`` or ``inductive``.
        teacher: the teacher row and the teacher of the students that learn from one.
        metric: record key (default ``test_acc`` transductive, ``prod_acc`` inductive).
        models: student rows after the teacher's (registry names).
        datasets: columns to keep, in this order (default: every dataset with a record).

    Returns:
        A DataFrame indexed by registry model name (the teacher first), one column per
        dataset; NaN where no record exists.
    """
    records = [r for r in records if r.get("kind") == "accuracy" and r.get("setting") == setting]
    metric = metric or ("test_acc" if setting == "transductive" else "prod_acc")
    rows = ([teacher] if teacher else []) + [m for m in models if teacher or not _uses_teacher(m)]
    columns = list(datasets) if datasets is not None else _dataset_order(r["dataset"] for r in records)
    frame = pd.DataFrame(float("nan"), index=pd.Index(rows, name="model"), columns=columns, dtype=float)
    for model in rows:
        owner = teacher if model != teacher and _uses_teacher(model) else None
        for dataset in columns:
            record = pick_record(records, dataset=dataset, model=model, teacher=owner, setting=setting)
            if record is not None and record.get(metric):
                frame.loc[model, dataset] = mean_std(record[metric])[0]
    return frame


def percent_style(frame: pd.DataFrame, columns: Sequence[Any] | None = None, *, decimals: int = 1,
                  signed: bool = False, index: bool = True, na_rep: str = MISSING) -> Any:
    """A pandas ``Styler`` that shows fractions as percentages.

    Args:
        frame: the table (fractions, e.g. 0.8123).
        columns: the columns to format (default all).
        decimals: places after the point (``81.2%`` for 1).
        signed: prefix ``+`` on gains (``+1.5%``).
        index: ``False`` hides the index (for a frame whose index is a bare 0..n-1).
        na_rep: what a missing value shows.
    """
    spec = f"{{:{'+' if signed else ''}.{decimals}%}}"
    styler = frame.style.format(spec, subset=list(columns) if columns is not None else None, na_rep=na_rep)
    # numeric index values read 0.5, not 0.500000; headers such as "h_i < 0.5" are escaped
    styler = styler.format_index(lambda value: f"{value:g}" if isinstance(value, float) else str(value), axis=0,
                                 escape="html")
    styler = styler.format_index(escape="html", axis=1)
    return styler if index else styler.hide(axis="index")


def load_tuning_records(root: str | Path = "results") -> list[dict]:
    """The hyperparameter-search records (``kind: tuning``) under ``root``, any depth, sorted by path.

    Written by ``samlp-lite tune`` (:mod:`samlp_lite.runs.tuning`): per candidate its
    ``overrides`` and mean ``val_acc`` and ``test_acc`` over the searched splits. Each record
    gets a ``"_path"``; smoke records (under ``smoke/``) are skipped.
    """
    from samlp_lite.records import read_json

    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.rglob("*.json")):
        if path.name.startswith(".") or path.name.endswith(".partial.json") or SMOKE_DIR in path.relative_to(root).parts:
            continue
        record = read_json(path)
        if isinstance(record, dict) and record.get("kind") == "tuning":
            found.append({**record, "_path": str(path)})
    return found


def tuning_coverage(tuning: Iterable[dict]) -> pd.DataFrame:
    """How many configurations each model tried on each graph, from the protocol's tuning records.

    Rows ``(model, teacher)`` (teacher ``-`` for models without one), columns datasets, cells the
    number of candidates in the record (``NaN``: no record). SA-MLP's record also gives the row of
    SA-MLP without mixing, its paired twin (the candidates that were also run with ``beta = 0``).
    Records of earlier searches (without a ``protocol``) are left out.
    """
    cells: dict[tuple[str, str], dict[str, int]] = {}
    for record in tuning:
        if "protocol" not in record or "dataset" not in record:
            continue
        teacher = record.get("teacher") or "-"
        candidates = record.get("candidates", [])
        cells.setdefault((record["model"], teacher), {})[record["dataset"]] = len(candidates)
        if record["model"] == "sa-mlp":
            cells.setdefault(("sa-mlp-nomix", teacher), {})[record["dataset"]] = sum("nomix" in c for c in candidates)
    if not cells:
        return pd.DataFrame()
    order = {name: i for i, name in enumerate([*teachers(), *names("student", in_tables=True)])}
    rows = sorted(cells, key=lambda key: (order.get(key[0], len(order)), key[0], key[1]))
    table = pd.DataFrame([cells[key] for key in rows],
                         index=pd.MultiIndex.from_tuples(rows, names=["model", "teacher"]))
    return table.reindex(columns=_dataset_order(table.columns))


def sensitivity_table(tuning: Iterable[dict], key: str, *, model: str = "sa-mlp", teacher: str | None = "sage",
                      metric: str = "val_acc") -> pd.DataFrame:
    """How one searched config key moves accuracy, from tuning records: one row per value, one column per dataset.

    Only records of ``model`` (and ``teacher``) whose candidates try more than one value of
    ``key`` count; a cell is the best ``metric`` among the candidates with that value (the
    other searched keys at their best), as a fraction. Missing cells are NaN.
    """
    cells: dict[str, dict[Any, float]] = {}
    for record in tuning:
        if record.get("model") != model or (teacher is not None and record.get("teacher") != teacher):
            continue
        candidates = [c for c in record.get("candidates", []) if key in c.get("overrides", {})]
        if len({repr(c["overrides"][key]) for c in candidates}) < 2:
            continue
        column = cells.setdefault(record["dataset"], {})
        for candidate in candidates:
            value, score = candidate["overrides"][key], candidate.get(metric)
            if score is not None and (value not in column or score > column[value]):
                column[value] = float(score)
    if not cells:
        return pd.DataFrame(index=pd.Index([], name=key))
    table = pd.DataFrame(cells)
    table = table.reindex(columns=_dataset_order(table.columns))
    try:
        table = table.sort_index()
    except TypeError:
        pass
    return table.rename_axis(key)
