"""Defaults that do no harm on a new graph: which teacher, and how much to trust it.

A graph without a ``tuned:`` entry gets the package defaults, and with the default label
weight ``lam = 0`` a student learns only the teacher's soft labels. Where structure misleads
the teacher (common on small heterophilous graphs) every distilled student then inherits its
mistakes and ends below a plain MLP. :func:`advise` checks this on validation before any
student is distilled: it trains the MLP and the candidate teachers, keeps the best teacher,
and tries a few label weights for the student, including a labels-only, features-only
configuration that is an MLP in all but name, so the advised student is never chosen below
the MLP on validation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from samlp_lite.config import resolve_config
from samlp_lite.data import GraphData, load_dataset
from samlp_lite.train.distill import train_student_on_split
from samlp_lite.train.soft_labels import get_teacher_outputs

TRUSTED_LAMS = (0.0, 0.3)
"""Label weights tried when the best teacher beats the MLP on validation."""
DOUBTED_LAMS = (0.7, 1.0)
"""Label weights tried when the MLP beats every teacher: lean on the labels."""
MLP_LIKE = {"lam": 1.0, "use_structure": False, "beta": 0.0}
"""An SA-MLP trained on labels alone without its structure branch: the MLP in all but name."""


@dataclass
class Advice:
    """What :func:`advise` found on the validation nodes of one split.

    Attributes:
        teacher: the teacher to distil from.
        overrides: the student's config changes (``lam`` and, if needed, the MLP-like fallback).
        val: validation metric per candidate (``mlp``, each teacher, each student try).
        student_val, mlp_val: the advised student's and the MLP's validation metric.
    """

    teacher: str
    overrides: dict[str, Any]
    val: dict[str, float] = field(default_factory=dict)
    student_val: float = float("nan")
    mlp_val: float = float("nan")

    def command(self, dataset: str, student: str) -> str:
        """The ``samlp-lite distill`` line that applies the advice."""
        sets = " ".join(f"--set {k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in self.overrides.items())
        return f"samlp-lite distill --dataset {dataset} --student {student} --teacher {self.teacher} {sets}".strip()


def advise(dataset: str | GraphData, student: str = "sa-mlp", *, teachers: Iterable[str] = ("sage", "gcn"),
           split: int = 0, overrides: dict[str, Any] | None = None, progress: bool = False,
           echo: Callable[[str], None] = print) -> Advice:
    """Choose the teacher and the label weight for ``student`` on ``dataset`` by validation (one split).

    Args:
        dataset: a registry name, a graph file or a loaded graph.
        student: a distilled student (``glnn``, ``sa-mlp``...).
        teachers: candidate teachers.
        split: the split whose validation nodes decide.
        overrides: config changes applied to every run (e.g. a shorter schedule).
    """
    graph = dataset if isinstance(dataset, GraphData) else load_dataset(dataset)
    key = "val_roc_auc" if graph.metric == "roc_auc" else "val_acc"
    base = dict(overrides or {})
    val: dict[str, float] = {}
    mlp = train_student_on_split(graph, "mlp", split, resolve_config(graph.name, "mlp", base), None, progress=progress)
    val["mlp"] = mlp[key]
    outputs = {}
    for teacher in teachers:
        out = get_teacher_outputs(graph, teacher, split, resolve_config(graph.name, teacher, base), progress=progress)
        outputs[teacher], val[teacher] = out, out.metrics[key]
    teacher = max(outputs, key=lambda t: val[t])
    trusted = val[teacher] >= val["mlp"]
    echo(f"validation: MLP {100 * val['mlp']:.2f}, " + ", ".join(f"{t} {100 * val[t]:.2f}" for t in outputs)
         + f" -> teacher {teacher}, " + ("trusted" if trusted else "weaker than the MLP: lean on the labels"))
    tries = [{"lam": lam} for lam in (TRUSTED_LAMS if trusted else DOUBTED_LAMS)] + [MLP_LIKE]
    best, best_val = None, float("-inf")
    for change in tries:
        config = resolve_config(graph.name, student, {**base, **change}, teacher=teacher)
        result = train_student_on_split(graph, student, split, config, outputs[teacher], progress=progress)
        val[f"{student} {change}"] = result[key]
        if result[key] > best_val:
            best, best_val = change, result[key]
    advice = Advice(teacher=teacher, overrides=dict(best), val=val, student_val=best_val, mlp_val=val["mlp"])
    echo(f"advised: {advice.command(graph.name, student)} (validation {100 * best_val:.2f})")
    return advice
