"""Published numbers to sit beside ours, and the paper's claims checked against our records.

The reference accuracies are ten-split means on the Geom-GCN splits as collected in the
GloGNN paper's tables. They are sanity checks, not targets.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from samlp_lite.data.registry import metric_key
from samlp_lite.records import mean_std, pick_record

GEOM_GCN_REFERENCE: dict[str, dict[str, float]] = {
    "mlp": {"cora": 75.69, "citeseer": 74.02, "pubmed": 87.16, "chameleon": 46.21, "squirrel": 28.77},
    "gcn": {"cora": 86.98, "citeseer": 76.50, "pubmed": 88.42, "chameleon": 64.82, "squirrel": 53.43},
    "gat": {"cora": 87.30, "citeseer": 76.55, "pubmed": 86.33, "chameleon": 60.26, "squirrel": 40.72},
    "sage": {"cora": 86.90, "citeseer": 76.04, "pubmed": 88.45, "chameleon": 58.73, "squirrel": 41.61},
    "linkx": {"cora": 84.64, "citeseer": 73.19, "pubmed": 87.86, "chameleon": 68.42, "squirrel": 61.81},
}
"""Test accuracy (percent) on the ten Geom-GCN 48/32/20 splits, from the GloGNN paper's tables."""


def reference_frame() -> pd.DataFrame:
    """The Geom-GCN reference table: rows models, columns datasets (percent)."""
    return pd.DataFrame(GEOM_GCN_REFERENCE).T


def side_by_side(records: Iterable[dict], models: Iterable[str] = ("mlp", "gcn", "sage", "gat", "linkx"),
                 setting: str = "transductive") -> pd.DataFrame:
    """Our ten-split means next to the published ones: columns ``ours``, ``published``, ``diff`` per (model, dataset)."""
    records = list(records)
    rows = []
    for model in models:
        for dataset, published in GEOM_GCN_REFERENCE.get(model, {}).items():
            record = pick_record(records, dataset=dataset, model=model, teacher=None, setting=setting)
            if record is None:
                continue
            mean, std = mean_std(record["test_acc"])
            rows.append({"model": model, "dataset": dataset, "ours": round(100 * mean, 2),
                         "std": round(100 * std, 2), "published": published,
                         "diff": round(100 * mean - published, 2), "splits": len(record["splits"])})
    return pd.DataFrame(rows, columns=["model", "dataset", "ours", "std", "published", "diff", "splits"])


def _mean(record: dict | None, key: str) -> float | None:
    if record is None or not record.get(key):
        return None
    return 100 * mean_std(record[key])[0]


SIGNIFICANCE = 0.05
"""Two-sided level of the paired t-test behind every "A beats B" verdict."""


def paired_comparison(a: dict, b: dict, key_a: str, key_b: str | None = None) -> dict[str, Any] | None:
    """Per-split paired difference ``a - b`` (points) of two records on their common splits.

    Returns ``None`` when fewer than two splits are shared. Otherwise ``mean`` and ``se`` (standard
    error) of the difference, ``n``, the paired t-test's ``p_t`` and the sign test's ``p_sign``
    (two-sided), ``wins`` (splits where ``a`` is ahead), and ``verdict``: ``better``, ``worse`` or
    ``no significant difference`` at :data:`SIGNIFICANCE` (t-test).
    """
    from scipy import stats

    key_b = key_b or key_a
    values_a = dict(zip(a.get("splits", []), a.get(key_a) or []))
    values_b = dict(zip(b.get("splits", []), b.get(key_b) or []))
    common = [s for s in values_a if s in values_b and values_a[s] is not None and values_b[s] is not None]
    if len(common) < 2:
        return None
    diff = np.array([100 * (values_a[s] - values_b[s]) for s in common])
    mean, se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))
    p_t = float(stats.ttest_rel([values_a[s] for s in common], [values_b[s] for s in common]).pvalue) if se > 0 else (
        0.0 if mean != 0 else 1.0)
    nonzero = diff[diff != 0]
    wins = int((diff > 0).sum())
    p_sign = float(stats.binomtest(int((nonzero > 0).sum()), len(nonzero)).pvalue) if len(nonzero) else 1.0
    verdict = ("better" if mean > 0 else "worse") if p_t < SIGNIFICANCE else "no significant difference"
    return {"mean": round(mean, 2), "se": round(se, 2), "n": len(common), "wins": wins, "p_t": round(p_t, 4),
            "p_sign": round(p_sign, 4), "verdict": verdict}


CLAIM_COLUMNS = ["claim", "dataset", "teacher", "sa-mlp", "compared with", "diff", "se", "n", "wins", "p_t",
                 "p_sign", "verdict"]


def check_claims(records: Iterable[dict], teachers: Iterable[str] = ("sage", "gcn")) -> pd.DataFrame:
    """The paper's claims, one row per (claim, dataset, teacher), tested on paired per-split differences.

    Claims: SA-MLP beats its teacher, GLNN and SA-MLP without mixing ("mixing helps"); on
    held-out nodes, online and isolated SA-MLP beat GLNN (also with the ``sa-mlp-stage2-finetune``
    ablation when its records exist). Each row gives both means (percent), the mean paired
    difference ``diff`` with its standard error, the number of splits, how many SA-MLP won, the
    paired t-test and sign-test p-values and the ``verdict`` (see :func:`paired_comparison`), in
    the dataset's metric (ROC AUC on Minesweeper and Tolokers). On Chameleon and Squirrel,
    SA-MLP's mean is also set against LINKX's published mean (no per-split numbers exist:
    ``verdict`` then only says above or below).
    """
    records = list(records)
    rows = []

    def add(claim: str, dataset: str, teacher: str, ours: dict | None, other: dict | None, key: str,
            other_key: str | None = None) -> None:
        if ours is None or other is None:
            return
        test = paired_comparison(ours, other, key, other_key)
        if test is None:
            return
        rows.append({"claim": claim, "dataset": dataset, "teacher": teacher, "sa-mlp": round(_mean(ours, key), 2),
                     "compared with": round(_mean(other, other_key or key), 2), "diff": test["mean"],
                     "se": test["se"], "n": test["n"], "wins": test["wins"], "p_t": test["p_t"],
                     "p_sign": test["p_sign"], "verdict": test["verdict"]})

    datasets = sorted({r["dataset"] for r in records if r.get("kind") == "accuracy"})
    for teacher in teachers:
        for dataset in datasets:
            pick = lambda model, t, setting="transductive": pick_record(  # noqa: E731
                records, dataset=dataset, model=model, teacher=t, setting=setting)
            ours = pick("sa-mlp", teacher)
            test, ind, isolated = (metric_key(dataset, k) for k in ("test_acc", "ind_acc", "ind_isolated_acc"))
            add("SA-MLP beats its teacher", dataset, teacher, ours, pick(teacher, None), test)
            add("SA-MLP beats GLNN", dataset, teacher, ours, pick("glnn", teacher), test)
            add("mixing helps", dataset, teacher, ours, pick("sa-mlp-nomix", teacher), test)
            if dataset in ("chameleon", "squirrel") and ours is not None and ours.get("test_acc"):
                mean, published = _mean(ours, "test_acc"), GEOM_GCN_REFERENCE["linkx"][dataset]
                rows.append({"claim": "SA-MLP reaches LINKX (published, unpaired)", "dataset": dataset,
                             "teacher": teacher, "sa-mlp": round(mean, 2), "compared with": published,
                             "diff": round(mean - published, 2), "n": len(ours["test_acc"]),
                             "verdict": "above" if mean >= published else "below"})
            inductive, glnn = pick("sa-mlp", teacher, "inductive"), pick("glnn", teacher, "inductive")
            add("held-out nodes: online SA-MLP beats GLNN", dataset, teacher, inductive, glnn, ind)
            add("held-out nodes: isolated SA-MLP beats GLNN", dataset, teacher, inductive, glnn, isolated, ind)
            add("held-out nodes: isolated SA-MLP (stage-2 fine-tune) beats GLNN", dataset, teacher,
                pick("sa-mlp-stage2-finetune", teacher, "inductive"), glnn, isolated, ind)
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


SHORTFALL_COLUMNS = ["dataset", "teacher", "sa-mlp", "glnn", "glnn over teacher", "total", "structure branch",
                     "structure p_t", "mixing", "mixing p_t", "cause"]


def glnn_shortfalls(records: Iterable[dict], teachers: Iterable[str] = ("sage", "gcn")) -> pd.DataFrame:
    """Where SA-MLP's transductive mean falls below GLNN's, which step costs it.

    SA-MLP differs from GLNN by two steps that the grid records separately: the structure branch
    (SA-MLP without mixing minus GLNN) and the mixing loss (SA-MLP minus SA-MLP without mixing).
    One row per (dataset, teacher) with SA-MLP below GLNN: both means, the ``total`` gap and each
    step's paired mean difference and t-test p-value (points); ``cause`` names the steps that are
    significantly negative (``no single step is significant`` when none is); ``glnn over teacher``
    is GLNN's mean minus the teacher's (how much the features alone already carry; ``NaN``
    without a teacher record).
    """
    records = list(records)
    rows = []
    for teacher in teachers:
        for dataset in sorted({r["dataset"] for r in records if r.get("kind") == "accuracy"}):
            pick = lambda model, owner=teacher: pick_record(  # noqa: E731
                records, dataset=dataset, model=model, teacher=owner, setting="transductive")
            ours, nomix, glnn = pick("sa-mlp"), pick("sa-mlp-nomix"), pick("glnn")
            if None in (ours, nomix, glnn):
                continue
            key = metric_key(dataset, "test_acc")
            total, structure, mixing = (paired_comparison(a, b, key) for a, b in
                                        ((ours, glnn), (nomix, glnn), (ours, nomix)))
            if None in (total, structure, mixing) or total["mean"] >= 0:
                continue
            causes = [name for name, test in (("the structure branch", structure), ("the mixing loss", mixing))
                      if test["verdict"] == "worse"]
            teacher_mean = _mean(pick(teacher, None), key)
            over = _mean(glnn, key) - teacher_mean if teacher_mean is not None else float("nan")
            rows.append({"dataset": dataset, "teacher": teacher, "sa-mlp": round(_mean(ours, key), 2),
                         "glnn": round(_mean(glnn, key), 2), "glnn over teacher": round(over, 2),
                         "total": total["mean"],
                         "structure branch": structure["mean"], "structure p_t": structure["p_t"],
                         "mixing": mixing["mean"], "mixing p_t": mixing["p_t"],
                         "cause": " and ".join(causes) or "no single step is significant"})
    return pd.DataFrame(rows, columns=SHORTFALL_COLUMNS)
