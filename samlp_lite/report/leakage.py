"""How much of a result a leak could explain: row twins per split, the twin-lookup baseline,
and every model's accuracy on twin and non-twin test nodes (from the records).

A *row twin* of an evaluation node is a training node with the same non-empty adjacency row
(:mod:`samlp_lite.data.twins`). Copying a twin's label needs no learning; a structure-aware
student can do it, a feature-only one cannot. The tables here separate the two parts.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import pandas as pd

from samlp_lite.data import GraphData
from samlp_lite.data.twins import feature_hashes, find_twins, row_hashes, twin_lookup_accuracy
from samlp_lite.models.registry import label_of, model_spec
from samlp_lite.data.registry import metric_key
from samlp_lite.records import mean_std, pick_record


def twin_census(graph: GraphData, splits: Iterable[int] | None = None) -> pd.DataFrame:
    """One row per split: the share of test nodes with a training row twin, how often the twins'
    majority label is right (the twin-lookup baseline, on twin nodes), and the share with a
    training *feature* twin (identical non-zero feature rows), all as fractions."""
    rows_hash = row_hashes(graph.data.edge_index, graph.num_nodes)
    features_hash = feature_hashes(graph.data.x)
    rows = []
    for split in (splits if splits is not None else range(graph.num_splits)):
        s = graph.split(split)
        twins = find_twins(rows_hash, graph.data.y, s.train, s.test)
        feature_twins = find_twins(features_hash, graph.data.y, s.train, s.test)
        rows.append({"split": split, "twin_share": twins.share, "lookup_acc": twin_lookup_accuracy(twins, graph.data.y),
                     "feature_twin_share": feature_twins.share,
                     "both_share": float((twins.is_twin & feature_twins.is_twin).float().mean())})
    return pd.DataFrame(rows)


def census_summary(graphs: Sequence[GraphData]) -> pd.DataFrame:
    """:func:`twin_census` averaged over splits, one row per graph (fractions)."""
    frames = []
    for graph in graphs:
        census = twin_census(graph)
        frames.append({"dataset": graph.name, **census.drop(columns="split").mean(numeric_only=True).to_dict(),
                       "twin_share_min": census["twin_share"].min(), "twin_share_max": census["twin_share"].max()})
    return pd.DataFrame(frames).set_index("dataset")


def twin_table(records: Iterable[dict], datasets: Sequence[str], teacher: str = "sage",
               models: Sequence[str] = ("mlp", "glnn", "linkx", "sa-mlp-nomix", "sa-mlp"),
               setting: str = "transductive", lookup: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Mean test accuracy (percent) of each model on twin and non-twin test nodes, per dataset.

    Rows: (dataset, model) with the teacher first; columns ``twin``, ``no twin``, ``gap``
    (twin minus non-twin) and ``all``. Inductive tables (``setting="inductive"``) use the
    held-out nodes. Records without the twin fields are left out. ``lookup`` (percent per
    dataset, e.g. :func:`census_summary`'s ``lookup_acc`` times 100) adds a ``twin lookup`` row:
    the twin-lookup baseline, defined on twin nodes only.
    """
    records = list(records)
    prefix = "test" if setting == "transductive" else "ind"
    rows, index = [], []
    for dataset in datasets:
        for model in [teacher, *models]:
            owner = teacher if model != teacher and model_spec(model).uses_teacher else None
            record = pick_record(records, dataset=dataset, model=model, teacher=owner, setting=setting)
            if record is None or not record.get(f"{prefix}_acc_twin"):
                continue
            twin = _mean_of(record[f"{prefix}_acc_twin"])
            other = _mean_of(record[f"{prefix}_acc_no_twin"])
            rows.append({"twin": twin, "no twin": other, "gap": twin - other, "all": _mean_of(record[f"{prefix}_acc"])})
            index.append((dataset, label_of(model)))
        if lookup is not None and dataset in lookup and any(d == dataset for d, _ in index):
            rows.append({"twin": float(lookup[dataset]), "no twin": float("nan"), "gap": float("nan"),
                         "all": float("nan")})
            index.append((dataset, "twin lookup"))
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["dataset", "model"]) if index else None,
                        columns=["twin", "no twin", "gap", "all"])


def _mean_of(values: Sequence[float | None]) -> float:
    present = [v for v in values if v is not None]
    return 100 * mean_std(present)[0] if present else float("nan")


def lookup_vs_models(graph: GraphData, records: Iterable[dict], teacher: str = "sage") -> dict[str, float]:
    """On one dataset: the twin-lookup baseline's accuracy on twin test nodes next to SA-MLP's and
    GLNN's accuracy there (percent, mean over the records' splits)."""
    census = twin_census(graph)
    records = list(records)
    out = {"lookup (twin nodes)": 100 * census["lookup_acc"].mean()}
    for model in ("sa-mlp", "glnn"):
        record = pick_record(records, dataset=graph.name, model=model, teacher=teacher, setting="transductive")
        if record and record.get("test_acc_twin"):
            out[f"{label_of(model)} (twin nodes)"] = _mean_of(record["test_acc_twin"])
    return out


def agreement_with_twins(graph: GraphData, split: int = 0) -> float:
    """How often a test node with a row twin shares the label of (the majority of) its training twins."""
    s = graph.split(split)
    twins = find_twins(row_hashes(graph.data.edge_index, graph.num_nodes), graph.data.y, s.train, s.test)
    if not bool(twins.is_twin.any()):
        return float("nan")
    return float((twins.lookup[twins.is_twin] == graph.data.y[twins.nodes[twins.is_twin]]).float().mean())



LEAKY = ("chameleon", "squirrel")
LEAK_FREE = ("chameleon-filtered", "squirrel-filtered", "minesweeper", "tolokers")


def heterophily_gain(records: Iterable[dict], teacher: str = "sage") -> pd.DataFrame:
    """SA-MLP against GLNN, paired per split, where a leak could and could not help.

    Rows: on Chameleon and Squirrel, the gain on all test nodes and on non-twin test nodes
    only; on the leak-free graphs, the gain on all test nodes (ROC AUC on the binary graphs).
    Columns: ``diff`` (points), ``se``, ``n``, ``p_t``, ``verdict`` (see
    :func:`samlp_lite.report.reference.paired_comparison`). Missing records give no row.
    """
    from samlp_lite.report.reference import paired_comparison

    records = list(records)
    rows, index = [], []

    def add(dataset: str, nodes: str, key: str) -> None:
        ours = pick_record(records, dataset=dataset, model="sa-mlp", teacher=teacher, setting="transductive")
        glnn = pick_record(records, dataset=dataset, model="glnn", teacher=teacher, setting="transductive")
        test = paired_comparison(ours, glnn, key) if ours and glnn and ours.get(key) and glnn.get(key) else None
        if test is not None:
            rows.append({k: test[k] for k in ("mean", "se", "n", "p_t", "verdict")})
            index.append((dataset, nodes))

    for dataset in LEAKY:
        add(dataset, "all test nodes", "test_acc")
        add(dataset, "non-twin test nodes", "test_acc_no_twin")
    for dataset in LEAK_FREE:
        add(dataset, "all test nodes", metric_key(dataset, "test_acc"))
    frame = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["dataset", "nodes"]) if index else None,
                         columns=["mean", "se", "n", "p_t", "verdict"])
    return frame.rename(columns={"mean": "diff"})


def gain_verdict(gain: pd.DataFrame) -> str:
    """One phrase for the book's conclusion, from :func:`heterophily_gain`.

    ``real`` when SA-MLP beats GLNN significantly both on non-twin nodes of the leaky graphs
    and on most leak-free graphs; ``an artefact of the leak`` when it does neither; ``partly
    real`` in between; ``not measured yet`` when the records lack the twin split or the
    leak-free graphs.
    """
    if gain.empty:
        return "not measured yet"
    levels = gain.index.get_level_values
    clean = gain[levels("nodes") == "non-twin test nodes"]
    free = gain[[d in LEAK_FREE for d in levels("dataset")]]
    if clean.empty or free.empty:
        return "not measured yet"
    clean_wins = (clean["verdict"] == "better").mean()
    free_wins = (free["verdict"] == "better").mean()
    if clean_wins == 1 and free_wins > 0.5:
        return "real"
    if clean_wins == 0 and free_wins == 0:
        return "an artefact of the leak"
    return "partly real"


def verdicts_by_teacher(gains: Mapping[str, pd.DataFrame]) -> str:
    """:func:`gain_verdict` for each teacher in one phrase, e.g. ``"real with the SAGE teacher and
    partly real with the GCN teacher"`` (one verdict alone when every teacher gives the same)."""
    verdicts = {teacher: gain_verdict(gain) for teacher, gain in gains.items()}
    if len(set(verdicts.values())) == 1:
        return next(iter(verdicts.values()))
    return " and ".join(f"{verdict} with the {label_of(teacher)} teacher" for teacher, verdict in verdicts.items())


def gain_summary(gain: pd.DataFrame) -> str:
    """:func:`heterophily_gain` in words, one clause per row, e.g. ``"chameleon, all test nodes:
    +6.12 points (better, p = 0.000)"``; "nothing measured yet" when empty."""
    if gain.empty:
        return "nothing measured yet"
    return "; ".join(f"{dataset}, {nodes}: {row['diff']:+.2f} points ({row['verdict']}, p = {row['p_t']:.3f})"
                     for (dataset, nodes), row in gain.iterrows())


def unmeasured_graphs(gain: pd.DataFrame) -> list[str]:
    """The graphs :func:`gain_verdict` still lacks: a leaky graph without its non-twin row, a
    leak-free graph without its row (its records are missing or carry no twin split yet)."""
    present = set(gain.index) if not gain.empty else set()
    missing = [d for d in LEAKY if (d, "non-twin test nodes") not in present]
    return missing + [d for d in LEAK_FREE if (d, "all test nodes") not in present]


def verdict_coverage(gain: pd.DataFrame) -> str:
    """A clause saying which graphs the verdict rests on, for the book's conclusion."""
    missing = unmeasured_graphs(gain)
    total = len(LEAKY) + len(LEAK_FREE)
    if not missing:
        return f"measured on all {total} graphs"
    return (f"measured on {total - len(missing)} of {total} graphs so far; still to run: "
            + ", ".join(missing))
