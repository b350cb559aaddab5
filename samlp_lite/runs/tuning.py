"""Small grid searches on validation accuracy (the chosen values go to ``tuned:`` in the YAML)."""
from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from samlp_lite.config import resolve_config
from samlp_lite.data import GraphData, load_dataset
from samlp_lite.models.registry import model_spec, students
from samlp_lite.models.teachers import TEACHERS
from samlp_lite.records import (
    check_output_path,
    provenance,
    record_path,
    write_json_atomic,
    write_text_atomic,
)
from samlp_lite.runs.experiment import parse_splits
from samlp_lite.runtime import pick_device
from samlp_lite.train.soft_labels import get_teacher_outputs

SEARCH_SPACES_PATH = Path(__file__).resolve().parent.parent / "config" / "tuning.yaml"
TEACHER_MIN_GAIN = 0.005
"""A teacher candidate replaces the configured values only when its mean validation accuracy is
higher by more than this (half a point): every student learns from the teacher's soft labels, so
a change within split-to-split noise would cost a re-run of every student for nothing."""
TEACHERS_FOLDER = "teachers"


def search_space(kind: str, path: str | Path = SEARCH_SPACES_PATH) -> dict[str, list]:
    """The grid for a model name, or for ``teacher`` / ``student``, from ``tuning.yaml``.

    A model name without its own entry falls back to ``teacher`` (GNNs) or ``student``.
    """
    spaces = yaml.safe_load(Path(path).read_text()) or {}
    if kind not in spaces and kind not in ("teacher", "student"):
        kind = "teacher" if kind in TEACHERS else "student"
    if kind not in spaces:
        raise ValueError(f"no search space {kind!r} in {path}; it has {sorted(spaces)}")
    return {key: list(values) for key, values in spaces[kind].items()}


def grid(space: Mapping[str, Iterable[Any]]) -> list[dict[str, Any]]:
    """Every combination of the values in ``space`` as a list of override dicts."""
    keys = list(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]


def tune(dataset: str | GraphData, model: str, *, teacher: str = "sage", splits: str | Iterable[int] = "0-2",
         space: Mapping[str, Iterable[Any]] | None = None, json_path: str | Path | None = None,
         min_gain: float | None = None, progress: bool = True,
         echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Grid-search a teacher or a student on a few splits by mean validation accuracy.

    Teachers use the ``teacher`` search space, students the ``student`` one (students read the
    soft labels of ``teacher`` with its resolved config). Trained teacher candidates land in
    the soft-label cache. The currently configured values are always a candidate (the
    baseline); the best candidate wins only when it beats the baseline's validation accuracy by
    more than ``min_gain`` (default: ``TEACHER_MIN_GAIN`` for teachers, 0 for students). Returns
    (and writes) a ``"kind": "tuning"`` record with every candidate, the baseline, the top
    candidate and the chosen one (``best``), whose overrides belong under ``tuned:``.
    """
    from samlp_lite.models.registry import architecture_of, uses_teacher
    from samlp_lite.train.distill import train_student_on_split

    is_teacher = model in TEACHERS
    if not is_teacher:
        architecture_of(model)
    check_output_path(record_path(json_path), "tuning record")
    graph = dataset if isinstance(dataset, GraphData) else load_dataset(dataset, progress=progress)
    chosen = parse_splits(splits, graph.num_splits)
    candidates = grid(space or search_space(model))
    configured = resolve_config(graph.name, model)
    baseline = {key: getattr(configured, key) for key in candidates[0]}
    if baseline not in candidates:
        candidates.insert(0, baseline)
    if min_gain is None:
        min_gain = TEACHER_MIN_GAIN if is_teacher else 0.0
    teacher_config = resolve_config(graph.name, teacher)
    teacher_outputs = {}
    if not is_teacher and uses_teacher(model):
        teacher_outputs = {split: get_teacher_outputs(graph, teacher, split, teacher_config, progress=progress)
                           for split in chosen}
    start = time.perf_counter()
    rows = []
    for i, overrides in enumerate(candidates, 1):
        config = resolve_config(graph.name, model, overrides)
        vals, tests = [], []
        for split in chosen:
            if is_teacher:
                metrics = get_teacher_outputs(graph, model, split, config, progress=False).metrics
            else:
                metrics = train_student_on_split(graph, model, split, config, teacher_outputs.get(split),
                                                 progress=False)
            vals.append(metrics["val_acc"])
            tests.append(metrics["test_acc"])
        rows.append({"overrides": overrides, "val_acc": statistics.fmean(vals), "test_acc": statistics.fmean(tests)})
        if progress:
            echo(f"[{i}/{len(candidates)}] {model} {graph.name} {overrides}: "
                 f"val {100 * rows[-1]['val_acc']:.2f} test {100 * rows[-1]['test_acc']:.2f}")
    top = max(rows, key=lambda r: r["val_acc"])
    base_row = rows[candidates.index(baseline)]
    best = top if top["val_acc"] - base_row["val_acc"] > min_gain else base_row
    echo(f"best for {model} on {graph.name}: {best['overrides']} (val {100 * best['val_acc']:.2f}"
         + ("" if best is top else f"; top {top['overrides']} at {100 * top['val_acc']:.2f} is within "
                                   f"{100 * min_gain:.2f} points of the configured values, which stay") + ")")
    record = {"kind": "tuning", "dataset": graph.name, "model": model,
              "teacher": None if is_teacher else teacher, "splits": chosen, "candidates": rows,
              "baseline": base_row, "top": top, "min_gain": min_gain, "best": best,
              "provenance": provenance(wall_s=time.perf_counter() - start, device=str(pick_device()))}
    path = record_path(json_path)
    if path is not None:
        write_json_atomic(path, record)
    return record


STUDENT_SEQUENCE = tuple(n for n in students() if model_spec(n).tuning_stages)
"""The students ``tune --model students`` tunes, in order (SA-MLP builds on SA-MLP without mixing)."""
DISTILLED_STUDENTS = tuple(n for n in STUDENT_SEQUENCE if "distillation" in model_spec(n).tuning_stages)
"""The students trained on the teacher's soft labels, which get the second (``distillation``) tuning stage."""
STAGES = ("model", "distillation")


def stages_of(model: str) -> tuple[str, ...]:
    """The tuning stages of a student, in order: distilled students have both."""
    return model_spec(model).tuning_stages or STAGES[:1]


def student_record_path(root: str | Path, teacher: str, dataset: str, model: str, stage: str = "model") -> Path:
    """Where ``tune_student`` writes (and ``tune --apply`` reads) a student's tuning record."""
    suffix = "" if stage == "model" else f".{stage}"
    return Path(root) / teacher / dataset / f"{model}{suffix}.json"


def _fixed_winner(path: Path, what: str, command: str) -> dict[str, list]:
    from samlp_lite.records import read_json

    if not path.is_file():
        raise FileNotFoundError(f"{what} is tuned on top of the winner in {path}, which is missing: run `{command}` first")
    return {key: [value] for key, value in read_json(path)["best"]["overrides"].items()}


def tune_student(dataset: str | GraphData, model: str, teacher: str = "sage", *,
                 splits: str | Iterable[int] = "0-1", root: str | Path = "results/tuning",
                 stage: str = "model", min_gain: float | None = None, progress: bool = True,
                 echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Tune one student, one stage at a time, each on top of the previous winner.

    Stage ``model`` searches the student's own space (SA-MLP's mixing on top of the best no-mix
    values); stage ``distillation`` searches the ``distillation`` space (temperature, label
    weight) on top of the student's stage-``model`` winner. The record goes to
    ``<root>/<teacher>/<dataset>/<model>[.<stage>].json``, where ``tune --apply`` finds it.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown tuning stage {stage!r}; choose one of {STAGES}")
    graph = dataset if isinstance(dataset, GraphData) else load_dataset(dataset, progress=progress)
    command = f"samlp-lite tune --dataset {graph.name} --teacher {teacher} --model"
    if stage == "distillation":
        if stage not in stages_of(model):
            raise ValueError(f"{model!r} is not distilled, so it has no distillation stage; "
                             f"those that have one: {DISTILLED_STUDENTS}")
        previous = student_record_path(root, teacher, graph.name, model)
        space = {**_fixed_winner(previous, f"{model}'s distillation stage", f"{command} {model}"),
                 **search_space("distillation")}
    else:
        space = search_space(model)
        if model == "sa-mlp":
            nomix = student_record_path(root, teacher, graph.name, "sa-mlp-nomix")
            space = {**_fixed_winner(nomix, "SA-MLP's mixing", f"{command} sa-mlp-nomix"), **space}
    record = tune(graph, model, teacher=teacher, splits=splits, space=space, min_gain=min_gain, progress=progress,
                  echo=echo, json_path=None)
    record["stage"] = stage
    write_json_atomic(student_record_path(root, teacher, graph.name, model, stage), record)
    return record


def tune_students(dataset: str | GraphData, teacher: str = "sage", *, splits: str | Iterable[int] = "0-1",
                  root: str | Path = "results/tuning", progress: bool = True,
                  echo: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Tune GLNN, LINKX and SA-MLP without mixing, then SA-MLP's mixing on top of the best no-mix values.

    Records go to ``<root>/<teacher>/<dataset>/<model>.json``. Returns the best overrides per
    model, ready for the ``tuned:`` section of hyperparameters.yaml.
    """
    graph = dataset if isinstance(dataset, GraphData) else load_dataset(dataset, progress=progress)
    best = {}
    for model in STUDENT_SEQUENCE:
        for stage in stages_of(model):
            best[model] = tune_student(graph, model, teacher, splits=splits, root=root, stage=stage,
                                       progress=progress, echo=echo)["best"]["overrides"]
    return best


def tuned_values(root: str | Path = "results/tuning", teacher: str = "sage",
                 *, with_teachers: bool = True) -> dict[str, dict[str, dict[str, Any]]]:
    """Winners of the tuning records: ``{dataset: {model: overrides}}``.

    Students come from ``<root>/<teacher>`` (SA-MLP's winner includes the no-mix values it was
    tuned on top of; a later stage's winner updates the earlier one's); with ``with_teachers``,
    the GNNs from ``<root>/teachers`` as well.
    """
    from samlp_lite.records import read_json

    values: dict[str, dict[str, dict[str, Any]]] = {}
    folders = [Path(root, teacher)] + ([Path(root, TEACHERS_FOLDER)] if with_teachers else [])
    records = [read_json(path) for path in sorted(p for folder in folders for p in folder.glob("*/*.json"))]
    records = [r for r in records if r.get("kind") == "tuning"]
    for record in sorted(records, key=lambda r: STAGES.index(r.get("stage", "model"))):
        values.setdefault(record["dataset"], {}).setdefault(record["model"], {}).update(record["best"]["overrides"])
    return values


def write_tuned_section(values: Mapping[str, Mapping[str, Mapping[str, Any]]],
                        path: str | Path | None = None, *, source: str = "results/tuning") -> Path:
    """Replace the ``tuned:`` section (the end of hyperparameters.yaml) with ``values``.

    Everything above the ``tuned:`` line, comments included, is kept as it is.
    """
    from samlp_lite.config import HYPERPARAMETERS_PATH, load_hyperparameters

    path = Path(path or HYPERPARAMETERS_PATH)
    text = path.read_text()
    marker = "\ntuned:"
    if marker not in text:
        raise ValueError(f"{path} has no top-level 'tuned:' section to replace")
    head = text[:text.index(marker)].rstrip("\n")
    body = yaml.safe_dump({"tuned": {d: {m: dict(o) for m, o in ms.items()} for d, ms in values.items()}},
                          sort_keys=True, default_flow_style=None, width=110)
    comment = (f"\n\n# Values chosen by `samlp-lite tune` on validation accuracy; the records with every candidate\n"
               f"# are under {source}/. Regenerate with `samlp-lite tune --apply`.\n")
    text = head.rsplit("\n# Values chosen", 1)[0].rstrip("\n") + comment + body
    write_text_atomic(path, text)  # running experiments may read the file at any moment
    load_hyperparameters(path)
    return path
