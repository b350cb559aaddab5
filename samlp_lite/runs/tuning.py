"""The tuning protocol: the same budget of sampled configurations for every model, on validation only.

``config/tuning.yaml`` holds the protocol (tuning splits, seed, budgets) and one search space
per model. :func:`tune` draws the model's configurations, trains each on the tuning splits
and keeps the best by mean validation metric (accuracy, or ROC AUC on binary graphs). SA-MLP's
search also trains every configuration without mixing (``beta = 0``): the no-mix model of the
tables is SA-MLP's winner with ``beta = 0``, so the mixing ablation is paired. Records go to
``results/tuning/<dataset>/[<teacher>/]<model>.json``; ``samlp-lite tune --apply`` writes the
winners into the ``tuned:`` section of ``hyperparameters.yaml``.
"""
from __future__ import annotations

import itertools
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from samlp_lite.config import config_keys, resolve_config
from samlp_lite.data import GraphData, load_dataset
from samlp_lite.models.registry import is_teacher, model_spec, students
from samlp_lite.records import (
    check_output_path,
    checkpoint_code,
    provenance,
    read_json,
    record_path,
    write_json_atomic,
    write_text_atomic,
)
from samlp_lite.runs.experiment import parse_splits
from samlp_lite.runtime import pick_device
from samlp_lite.train.soft_labels import get_teacher_outputs

SEARCH_SPACES_PATH = Path(__file__).resolve().parent.parent / "config" / "tuning.yaml"
TUNING_ROOT = Path("results") / "tuning"
BUDGET_TOLERANCE = 0.10
"""Budgets of two models may differ by at most this fraction (a test checks the YAML)."""
PAIRED = {"sa-mlp-nomix": "sa-mlp"}
"""Models tuned inside another model's search: SA-MLP without mixing is SA-MLP's winner with ``beta = 0``."""


def load_protocol(path: str | Path = SEARCH_SPACES_PATH) -> dict[str, Any]:
    """The parsed protocol: ``protocol`` (``splits``, ``seed``, ``budget``) and ``spaces``.

    Raises:
        ValueError: a missing section, an unknown config key in a space, or an empty value list.
    """
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if set(raw) != {"protocol", "spaces"}:
        raise ValueError(f"{path} must have exactly the sections 'protocol' and 'spaces', found {sorted(raw)}")
    valid = set(config_keys())
    for name, space in raw["spaces"].items():
        for key, values in space.items():
            if key not in valid:
                raise ValueError(f"{path}: spaces.{name}.{key} is not a config key")
            if not isinstance(values, list) or not values:
                raise ValueError(f"{path}: spaces.{name}.{key} must be a non-empty list")
    for kind in ("teacher", "student"):
        if int(raw["protocol"].get("budget", {}).get(kind, 0)) < 1:
            raise ValueError(f"{path}: protocol.budget.{kind} must be a positive integer")
    return raw


def search_space(model: str, path: str | Path = SEARCH_SPACES_PATH) -> dict[str, list]:
    """The search space of ``model``: its own entry, or ``teacher`` for a GNN without one."""
    spaces = load_protocol(path)["spaces"]
    name = PAIRED.get(model, model)
    if name not in spaces and is_teacher(name):
        name = "teacher"
    if name not in spaces:
        raise ValueError(f"no search space for {model!r} in {path}; it has {sorted(spaces)}")
    return {key: list(values) for key, values in spaces[name].items()}


def grid(space: Mapping[str, Iterable[Any]]) -> list[dict[str, Any]]:
    """Every combination of the values in ``space`` as a list of override dicts."""
    keys = list(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]


def budget_of(model: str, path: str | Path = SEARCH_SPACES_PATH) -> int:
    """How many configurations ``model`` gets (``teacher`` or ``student`` budget, capped by its grid size)."""
    kind = "teacher" if is_teacher(model) else "student"
    return min(int(load_protocol(path)["protocol"]["budget"][kind]), len(grid(search_space(model, path))))


def candidates(model: str, path: str | Path = SEARCH_SPACES_PATH) -> list[dict[str, Any]]:
    """The configurations ``model`` is tried with: a seeded sample of its grid, ``budget_of(model)`` long."""
    full = grid(search_space(model, path))
    rng = random.Random(f"{load_protocol(path)['protocol']['seed']}:{PAIRED.get(model, model)}")
    return rng.sample(full, budget_of(model, path))


def budget_table(models: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """One row per model: its knobs, grid size and budget (the book's budget table)."""
    models = list(models) if models is not None else [*model_names_tuned()]
    rows = []
    for model in models:
        space = search_space(model)
        knobs = [k for k in space if not (model in PAIRED and k == "beta")]
        rows.append({"model": model, "knobs": ", ".join(knobs), "grid": len(grid(space)),
                     "budget": budget_of(model),
                     "note": f"paired with {PAIRED[model]} (its winner, beta = 0)" if model in PAIRED else ""})
    return rows


def model_names_tuned() -> list[str]:
    """Every model the protocol tunes: the registered teachers, then the table's students."""
    from samlp_lite.models.registry import names, teachers

    return [*teachers(), *names("student", in_tables=True)]


def tuning_record_path(dataset: str, model: str, teacher: str | None = None, root: str | Path = TUNING_ROOT) -> Path:
    """``<root>/<dataset>/[<teacher>/]<model>.json``: distilled students have one record per teacher."""
    folder = Path(root) / dataset
    return folder / teacher / f"{model}.json" if teacher else folder / f"{model}.json"


def tune(dataset: str | GraphData, model: str, *, teacher: str = "sage", splits: str | Iterable[int] | None = None,
         json_path: str | Path | None = None, progress: bool = True, echo: Callable[[str], None] = print,
         protocol_path: str | Path = SEARCH_SPACES_PATH,
         teacher_overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Tune ``model`` by the protocol and return (and write) its ``"kind": "tuning"`` record.

    Args:
        dataset: registry name, graph file or loaded graph.
        model: a teacher or a table student (``sa-mlp-nomix`` is tuned with ``sa-mlp``).
        teacher: the teacher whose soft labels a distilled student reads (ignored otherwise).
        splits: tuning splits (default: the protocol's).
        json_path: where to write (default :func:`tuning_record_path` under ``results/tuning``).
        protocol_path: the protocol file (default ``config/tuning.yaml``).
        teacher_overrides: the teacher's config changes (default: its tuning record's winner when one
            exists, so students learn from the tuned teacher before ``--apply`` writes the YAML).
    """
    if model in PAIRED:
        raise ValueError(f"{model} is tuned with {PAIRED[model]} (paired: same configurations, beta = 0); "
                         f"run `samlp-lite tune --model {PAIRED[model]}`")
    spec = model_spec(model)
    protocol = load_protocol(protocol_path)
    graph = dataset if isinstance(dataset, GraphData) else load_dataset(dataset, progress=progress)
    taught = spec.uses_teacher
    path = check_output_path(record_path(json_path or tuning_record_path(graph.name, model, teacher if taught
                                                                          else None)), "tuning record")
    chosen = parse_splits(splits or protocol["protocol"]["splits"], graph.num_splits)
    key = "val_roc_auc" if graph.metric == "roc_auc" else "val_acc"
    configs = candidates(model, protocol_path)
    if teacher_overrides is None and taught:
        teacher_overrides = tuned_teacher(graph.name, teacher)
    teacher_config = resolve_config(graph.name, teacher, teacher_overrides)
    outputs = ({split: get_teacher_outputs(graph, teacher, split, teacher_config, progress=progress)
                for split in chosen} if taught else {})
    checkpoint = TuningCheckpoint(path, {"dataset": graph.name, "model": model, "teacher": teacher if taught else None,
                                         "splits": chosen, "configs": configs,
                                         "teacher_overrides": dict(teacher_overrides or {}) if taught else None,
                                         "code": checkpoint_code()})
    rows = checkpoint.resume(echo)
    for i, overrides in enumerate(configs[len(rows):], len(rows) + 1):
        row = {"overrides": overrides, **_mean_scores(graph, model, overrides, chosen, outputs, teacher, key)}
        if model == "sa-mlp":
            row["nomix"] = _mean_scores(graph, model, {**overrides, "beta": 0.0}, chosen, outputs, teacher, key)
        rows.append(row)
        checkpoint.save(rows)
        if progress:
            echo(f"[{i}/{len(configs)}] {model} {graph.name} {overrides}: {key} {100 * row[key]:.2f}"
                 + (f" (without mixing {100 * row['nomix'][key]:.2f})" if "nomix" in row else ""))
    best = max(rows, key=lambda r: r[key])
    record: dict[str, Any] = {
        "kind": "tuning", "dataset": graph.name, "model": model, "teacher": teacher if taught else None,
        "splits": chosen, "selection": key, "budget": len(configs), "candidates": rows, "best": best,
        "protocol": protocol["protocol"], "space": search_space(model, protocol_path),
        "teacher_overrides": dict(teacher_overrides or {}) if taught else None,
        "provenance": provenance(wall_s=checkpoint.wall_s(), device=str(pick_device()),
                                 resumed_configs=checkpoint.resumed)}
    if model == "sa-mlp":
        paired = {"overrides": {**best["overrides"], "beta": 0.0}, **best["nomix"]}
        own = max(rows, key=lambda r: r["nomix"][key])
        record["paired"] = {"sa-mlp-nomix": paired,
                            "sa-mlp-nomix-own-best": {"overrides": {**own["overrides"], "beta": 0.0}, **own["nomix"]}}
    echo(f"best for {model} on {graph.name}" + (f" (teacher {teacher})" if taught else "")
         + f": {best['overrides']} ({key} {100 * best[key]:.2f})")
    write_json_atomic(path, record)
    checkpoint.discard()
    return record


class TuningCheckpoint:
    """The finished configurations of an interrupted search, in ``<record>.partial.json``.

    A re-run resumes from it only when it was made for the same search (dataset, model, teacher
    and its overrides, splits, the drawn configurations) by the same code (commit and sources
    hash); otherwise it is set aside and the search starts again, so a record never mixes code
    versions.
    """

    def __init__(self, record: Path, identity: Mapping[str, Any]):
        self.path = record.with_name(record.name + ".partial.json")
        self.identity = json.loads(json.dumps(identity))
        self.resumed, self.earlier_s, self.started = 0, 0.0, time.perf_counter()

    def resume(self, echo: Callable[[str], None]) -> list[dict[str, Any]]:
        """The rows saved by an earlier sitting of the same search (else none)."""
        if not self.path.exists():
            return []
        try:
            saved = read_json(self.path)
        except ValueError:
            saved = {}
        if saved.get("identity") != self.identity:
            echo(f"{self.path} is from another search or code version: starting this search again")
            return []
        self.resumed, self.earlier_s = len(saved["rows"]), float(saved.get("wall_s", 0.0))
        echo(f"resuming from {self.path}: {self.resumed} of {len(self.identity['configs'])} configurations done")
        return list(saved["rows"])

    def wall_s(self) -> float:
        """Seconds spent on this search, earlier sittings included."""
        return self.earlier_s + time.perf_counter() - self.started

    def save(self, rows: list[dict[str, Any]]) -> None:
        write_json_atomic(self.path, {"kind": "tuning-partial", "identity": self.identity, "rows": rows,
                                      "wall_s": round(self.wall_s(), 3)})

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def _mean_scores(graph: GraphData, model: str, overrides: Mapping[str, Any], splits: list[int],
                 outputs: Mapping[int, Any], teacher: str, key: str) -> dict[str, float]:
    from samlp_lite.train.distill import train_student_on_split

    config = resolve_config(graph.name, model, dict(overrides), teacher=teacher)
    per_split = []
    for split in splits:
        if is_teacher(model):
            per_split.append(get_teacher_outputs(graph, model, split, config, progress=False).metrics)
        else:
            per_split.append(train_student_on_split(graph, model, split, config, outputs.get(split), progress=False))
    return {name: statistics.fmean(float(m[name]) for m in per_split)
            for name in dict.fromkeys(("val_acc", key)) if all(name in m for m in per_split)}


def tuned_teacher(dataset: str, teacher: str, root: str | Path = TUNING_ROOT) -> dict[str, Any] | None:
    """The winning overrides of ``teacher``'s tuning record on ``dataset``, or ``None`` without one."""
    path = record_path(tuning_record_path(dataset, teacher, root=root))
    return dict(read_json(path)["best"]["overrides"]) if path.is_file() else None


def tune_all(dataset: str | GraphData, *, teachers: Iterable[str] = ("sage", "gcn"), models: Iterable[str] | None = None,
             splits: str | Iterable[int] | None = None, skip_done: bool = True, progress: bool = True,
             echo: Callable[[str], None] = print) -> list[Path]:
    """Run the protocol for every model on one dataset: teachers, then students (per teacher when
    distilled). By default the models are those the paper grid runs on the dataset (every tuned
    model for a graph outside it). With ``skip_done`` a model whose record exists is not tuned
    again, and an interrupted search resumes from its checkpoint."""
    graph = dataset if isinstance(dataset, GraphData) else load_dataset(dataset, progress=progress)
    written = []
    for model in models or [m for m in model_names_tuned() if m not in PAIRED and runs_in_paper_grid(graph.name, m)]:
        spec = model_spec(model)
        for teacher in (list(teachers) if spec.uses_teacher else [None]):
            path = tuning_record_path(graph.name, model, teacher)
            if skip_done and record_path(path).is_file():
                echo(f"skip {path} (done)")
                continue
            tune(graph, model, teacher=teacher or "sage", splits=splits, progress=progress, echo=echo)
            written.append(record_path(path))
    return written


def runs_in_paper_grid(dataset: str, model: str) -> bool:
    """Whether the paper grid runs ``model`` on ``dataset`` (``True`` for a dataset outside the grid)."""
    from samlp_lite.runs.grid import load_grid, models_on

    paper = load_grid("paper")
    return dataset not in paper.datasets or model in models_on(paper, dataset)


def tuned_values(root: str | Path = TUNING_ROOT) -> dict[str, dict[str, Any]]:
    """Winners of the tuning records under ``root``: ``{dataset: {model: overrides}}``, distilled
    students per teacher (``{dataset: {model: {teacher: overrides}}}``), SA-MLP's paired no-mix included."""
    values: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(root).rglob("*.json")):
        record = read_json(path)
        if record.get("kind") != "tuning" or "protocol" not in record:
            continue
        entry = values.setdefault(record["dataset"], {})
        winners = {record["model"]: record["best"]["overrides"]}
        if "paired" in record:
            winners["sa-mlp-nomix"] = record["paired"]["sa-mlp-nomix"]["overrides"]
        for model, overrides in winners.items():
            if record.get("teacher"):
                entry.setdefault(model, {})[record["teacher"]] = dict(overrides)
            else:
                entry[model] = dict(overrides)
    return values


def write_tuned_section(values: Mapping[str, Mapping[str, Any]], path: str | Path | None = None, *,
                        source: str = "results/tuning") -> Path:
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
    body = yaml.safe_dump({"tuned": {d: dict(ms) for d, ms in values.items()}}, sort_keys=True,
                          default_flow_style=None, width=110)
    comment = (f"\n\n# Values chosen by the tuning protocol (config/tuning.yaml) on validation only; the records\n"
               f"# with every candidate are under {source}/. Regenerate with `samlp-lite tune --apply`.\n")
    text = head.rsplit("\n# Values chosen", 1)[0].rstrip("\n") + comment + body
    write_text_atomic(path, text)  # running experiments may read the file at any moment
    load_hyperparameters(path)
    return path


STUDENTS_TUNED = tuple(n for n in students() if model_spec(n).in_tables and n not in PAIRED)
"""The students the protocol tunes directly (SA-MLP without mixing comes with SA-MLP)."""
