"""Experiment grids: the YAML files of ``samlp_lite/runs/grids``, expanded into cells, and each cell's status.

A grid names datasets, teachers, models, settings and splits. :func:`expand_grid` turns it
into :class:`Cell` objects, one per result record; :func:`cell_status` says whether a cell's
record is complete, resumable from its per-split checkpoint, or unavailable here.
:mod:`samlp_lite.runs.batch` executes the cells.
"""
from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from samlp_lite.records import checkpoint_code, read_json
from samlp_lite.runtime import smoke_mode

GRIDS_DIR = Path(__file__).resolve().parent / "grids"
DONE, TO_RUN, UNAVAILABLE = "done", "to run", "unavailable"
_GRID_KEYS = {"name", "description", "datasets", "teachers", "students", "settings", "splits", "overrides"}


@dataclass
class GridModel:
    """One entry of a grid's ``students`` list: a model name, optionally limited to some settings or
    datasets, or kept off some datasets (``skip_datasets``)."""

    name: str
    settings: list[str] | None = None
    datasets: list[str] | None = None
    skip_datasets: list[str] | None = None

    def runs_on(self, dataset: str, setting: str | None = None) -> bool:
        """Whether this entry has a cell on ``dataset`` (in ``setting`` when given)."""
        return ((setting is None or self.settings is None or setting in self.settings)
                and (self.datasets is None or dataset in self.datasets)
                and dataset not in (self.skip_datasets or []))


@dataclass
class Grid:
    """A parsed grid file (see ``samlp_lite/runs/grids/paper.yaml`` for the annotated format)."""

    name: str
    datasets: list[str]
    teachers: list[str]
    models: list[GridModel]
    settings: list[str]
    splits: dict[str, str]
    """Splits per dataset name, with ``"default"`` for the rest, e.g. ``{"default": "0-9", "ogbn-arxiv": "0"}``."""
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None

    def splits_for(self, dataset: str) -> str:
        """The splits of ``dataset`` (e.g. ``"0-9"``)."""
        return self.splits.get(dataset, self.splits["default"])


@dataclass
class Cell:
    """One experiment of a grid, producing one accuracy record.

    Attributes:
        dataset: registry name.
        model: a teacher (``gcn``...) or a student (``mlp``, ``glnn``, ``sa-mlp``...).
        setting: ``transductive`` or ``inductive``.
        teacher: the teacher as written in the record: set for students that learn from soft
            labels (GLNN, SA-MLP), ``None`` for teachers themselves and for MLP and LINKX.
        splits: e.g. ``"0-9"``.
        source_teacher: teacher whose outputs the run reads (for MLP/LINKX only the inductive
            split's held-out nodes); ``None`` for teacher cells.
        overrides: config overrides of the model. teacher_overrides: those of ``source_teacher``.
    """

    dataset: str
    model: str
    setting: str
    teacher: str | None
    splits: str
    source_teacher: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    teacher_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """``<dataset>.<setting>[.<teacher>].<model>``, e.g. ``cora.transductive.sage.glnn``."""
        return ".".join([self.dataset, self.setting, *([self.teacher] if self.teacher else []), self.model])

    @property
    def is_teacher(self) -> bool:
        """Whether the cell trains a teacher GNN (``run_teacher``) rather than a student."""
        from samlp_lite.models.teachers import TEACHERS

        return self.model in TEACHERS

    def record_path(self, results_root: str | Path = "results") -> Path:
        """Where the cell's record goes (under ``results/smoke/`` in smoke mode)."""
        from samlp_lite.records import default_record_path, record_path

        return record_path(default_record_path(self.dataset, self.model, self.teacher, self.setting,
                                               root=results_root))

    def parameters(self, record: str | Path, command: str = "") -> dict[str, Any]:
        """The papermill parameters of ``notebooks/experiment.ipynb`` for this cell."""
        return {"dataset": self.dataset, "model": self.model, "teacher": self.source_teacher,
                "setting": self.setting, "splits": self.splits, "overrides": dict(self.overrides),
                "teacher_overrides": dict(self.teacher_overrides), "record_path": str(record),
                "command": command}


def available_grids() -> list[str]:
    """Names of the grids shipped with the package (``samlp_lite/runs/grids/*.yaml``)."""
    return sorted(p.stem for p in GRIDS_DIR.glob("*.yaml"))


def grid_path(grid: str | Path) -> Path:
    """Resolve ``grid``: an existing YAML file, or the name of a packaged grid (``paper``, ``smoke``)."""
    path = Path(grid)
    if path.is_file():
        return path
    packaged = GRIDS_DIR / f"{grid}.yaml"
    if packaged.is_file():
        return packaged
    raise FileNotFoundError(f"no grid {str(grid)!r}: give a YAML file or one of {', '.join(available_grids())}")


def _names(value: Any, key: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: '{key}' must be a name or a list of names, got {value!r}")
    return [v.strip().lower() for v in value]


def load_grid(grid: str | Path) -> Grid:
    """Read and check a grid file (path or packaged name).

    Raises:
        FileNotFoundError: no such file or packaged grid.
        ValueError: an unknown key, dataset, model, teacher or setting, naming the valid ones.
    """
    from samlp_lite.data import dataset_spec
    from samlp_lite.models.registry import architecture_of
    from samlp_lite.models.teachers import TEACHERS
    from samlp_lite.runs.experiment import parse_splits
    from samlp_lite.train.soft_labels import SETTINGS

    path = grid_path(grid)
    where = str(path)
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a grid is a YAML mapping with keys {sorted(_GRID_KEYS)}")
    unknown = set(raw) - _GRID_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; valid keys are {sorted(_GRID_KEYS)}")
    for key in ("datasets", "students", "settings", "splits"):
        if key not in raw:
            raise ValueError(f"{where}: missing key '{key}'")
    datasets = [dataset_spec(name).name for name in _names(raw["datasets"], "datasets", where)]
    teachers = _names(raw.get("teachers") or [], "teachers", where)
    for name in teachers:
        if name not in TEACHERS:
            raise ValueError(f"{where}: unknown teacher {name!r}; choose from {', '.join(TEACHERS)}")
    settings = _names(raw["settings"], "settings", where)
    for name in settings:
        if name not in SETTINGS:
            raise ValueError(f"{where}: unknown setting {name!r}; choose from {', '.join(SETTINGS)}")
    models: list[GridModel] = []
    for entry in raw["students"] or []:
        if isinstance(entry, str):
            entry = {"model": entry}
        if not isinstance(entry, dict) or "model" not in entry or set(entry) - {"model", "settings", "datasets",
                                                                                "skip_datasets"}:
            raise ValueError(f"{where}: a 'students' entry is a model name or a mapping with 'model' and "
                             f"optional 'settings', 'datasets' and 'skip_datasets', got {entry!r}")
        limits = {key: [dataset_spec(d).name for d in _names(entry[key], key, where)]
                  for key in ("datasets", "skip_datasets") if key in entry}
        model = GridModel(entry["model"].strip().lower(),
                          _names(entry["settings"], "settings", where) if "settings" in entry else None, **limits)
        if model.name not in TEACHERS:
            architecture_of(model.name)  # raises ValueError naming the valid students
            if not teachers:
                raise ValueError(f"{where}: student {model.name!r} needs a teacher; list one under 'teachers'")
        models.append(model)
    splits = raw["splits"] if isinstance(raw["splits"], dict) else {"default": raw["splits"]}
    splits = {str(k).strip().lower(): str(v) for k, v in splits.items()}
    for key, text in splits.items():
        if key != "default" and key not in datasets:
            raise ValueError(f"{where}: 'splits' names {key!r}, which is not among the datasets; use 'default' "
                             "for the splits of every dataset not named")
        parse_splits(text, sys.maxsize)  # syntax check; the range is checked per dataset at run time
    if "default" not in splits and set(datasets) - set(splits):
        raise ValueError(f"{where}: 'splits' needs a 'default' entry for {sorted(set(datasets) - set(splits))}")
    overrides = raw.get("overrides") or {}
    listed = {m.name for m in models} | set(teachers)
    for model, values in overrides.items():
        if model not in listed or not isinstance(values, dict):
            raise ValueError(f"{where}: 'overrides' maps a model of this grid ({', '.join(sorted(listed))}) "
                             f"to a mapping of config keys; got {model!r}: {values!r}")
    return Grid(name=str(raw.get("name") or path.stem), datasets=datasets, teachers=teachers, models=models,
                settings=settings, splits=splits, overrides={k: dict(v) for k, v in overrides.items()}, path=path)


def expand_grid(grid: Grid) -> list[Cell]:
    """All cells of a grid, one per record.

    Teachers listed as models, MLP and LINKX appear once per dataset and setting; GLNN and
    SA-MLP variants once per teacher. Within a dataset and setting, cells without a teacher
    come first, so a teacher's soft labels are cached before its students need them.
    """
    from samlp_lite.models.registry import uses_teacher
    from samlp_lite.models.teachers import TEACHERS

    cells: list[Cell] = []
    first_teacher = grid.teachers[0] if grid.teachers else "sage"  # run_student's default
    for setting in grid.settings:
        for dataset in grid.datasets:
            splits = grid.splits_for(dataset)
            chosen = [m.name for m in grid.models if m.runs_on(dataset, setting)]
            for model in chosen:
                if model in TEACHERS:
                    cells.append(Cell(dataset, model, setting, None, splits, None,
                                      grid.overrides.get(model, {})))
                elif not uses_teacher(model):
                    cells.append(Cell(dataset, model, setting, None, splits, first_teacher,
                                      grid.overrides.get(model, {}), grid.overrides.get(first_teacher, {})))
            for teacher in grid.teachers:
                for model in chosen:
                    if model not in TEACHERS and uses_teacher(model):
                        cells.append(Cell(dataset, model, setting, teacher, splits, teacher,
                                          grid.overrides.get(model, {}), grid.overrides.get(teacher, {})))
    return cells


def models_on(grid: Grid, dataset: str) -> list[str]:
    """The models ``grid`` runs on ``dataset`` (teachers listed as students included), in grid order."""
    return [m.name for m in grid.models if m.runs_on(dataset)]


def select_cells(cells: Sequence[Cell], patterns: Sequence[str] | None) -> list[Cell]:
    """Cells whose id matches any of the shell-style ``patterns`` (all when none are given)."""
    if not patterns:
        return list(cells)
    return [c for c in cells if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]


# --------------------------------------------------------------------------- status

_network_cache: dict[str, bool] = {}


def dataset_unavailable_reason(name: str) -> str | None:
    """Why ``name`` cannot be loaded here (files absent and no network), or ``None`` when it can."""
    from samlp_lite.data import dataset_available, dataset_spec
    from samlp_lite.data.paths import OFFLINE_ENV, network_available

    try:
        if dataset_available(name):
            return None
        spec = dataset_spec(name)
    except ValueError as err:  # unknown name: let the cell run and fail with the registry's message
        return None if "unknown dataset" in str(err) else str(err)
    if spec.url:
        key = f"{spec.url}|{os.environ.get(OFFLINE_ENV, '')}"
        if key not in _network_cache:
            _network_cache[key] = network_available(spec.url)
        if _network_cache[key]:
            return None
    return "not available offline: raw files missing and no network (it runs where it can download, e.g. Colab)"


def record_problem(path: str | Path, cell: Cell) -> str | None:
    """Why the record at ``path`` does not complete ``cell`` (absent, corrupt, other splits...), or ``None``."""
    from samlp_lite.runs.experiment import parse_splits

    path = Path(path)
    if not path.exists():
        return "no record"
    try:
        record = read_json(path)
    except (ValueError, OSError) as err:
        return f"unreadable record ({type(err).__name__})"
    if not isinstance(record, dict) or record.get("kind") != "accuracy":
        return "not an accuracy record"
    for key, want in (("dataset", cell.dataset), ("model", cell.model), ("teacher", cell.teacher),
                      ("setting", cell.setting)):
        if record.get(key) != want:
            return f"record has {key} {record.get(key)!r}, expected {want!r}"
    splits = parse_splits(cell.splits, sys.maxsize)
    if record.get("splits") != splits:
        return f"record has splits {record.get('splits')}, expected {splits}"
    metrics = ["test_acc"] if cell.setting == "transductive" else ["tran_acc", "ind_acc", "prod_acc"]
    for name in ["val_acc", *metrics]:
        values = record.get(name)
        if not isinstance(values, list) or len(values) != len(splits) or not all(
                isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in values):
            return f"record's {name} is missing or not one fraction per split"
    if bool((record.get("provenance") or {}).get("smoke")) != smoke_mode():
        return "record's smoke flag differs from this run's"
    return _config_drift(record, cell)


_IGNORED_KEYS = {"device"}


def _config_drift(record: Mapping[str, Any], cell: Cell) -> str | None:
    """Why the record's configs differ from what the cell resolves to now (YAML or grid changed), or ``None``.

    Compares the student's (or teacher's) ``config`` and, for distilled students, the
    ``teacher_config`` whose soft labels it learned from. Keys a record lacks are not compared.
    """
    from samlp_lite.config import resolve_config

    pairs = [("config", cell.model, cell.overrides, cell.teacher)]
    if cell.teacher and record.get("teacher_config") is not None:
        pairs.append(("teacher_config", cell.teacher, cell.teacher_overrides, None))
    for field_name, model, overrides, teacher in pairs:
        try:  # compare resolved values, so that e.g. YAML's "1e-3" (a string) matches 0.001
            wanted = resolve_config(cell.dataset, model, overrides, teacher=teacher).to_dict()
        except (KeyError, ValueError) as err:
            return f"the grid's overrides do not resolve: {err}"
        stored = record.get(field_name) or {}
        for key, value in wanted.items():
            if key in _IGNORED_KEYS or key not in stored:
                continue
            if json.loads(json.dumps(stored[key])) != json.loads(json.dumps(value)):
                where = "the grid sets" if key in overrides else "the config now resolves to"
                what = "teacher's " if field_name == "teacher_config" else ""
                return f"record was made with {what}{key}={stored[key]!r}, {where} {value!r}"
    return None


@dataclass
class CellStatus:
    """Where a cell stands: ``state`` is ``done``, ``to run`` or ``unavailable``; ``note`` says why."""

    cell: Cell
    state: str
    note: str
    record: Path


def cell_status(cell: Cell, results_root: str | Path = "results") -> CellStatus:
    """Check a cell's record (and dataset availability) without running anything."""
    record = cell.record_path(results_root)
    problem = record_problem(record, cell)
    if problem is None:
        return CellStatus(cell, DONE, f"record complete: {record}", record)
    unavailable = dataset_unavailable_reason(cell.dataset)
    if unavailable:
        return CellStatus(cell, UNAVAILABLE, unavailable, record)
    note = problem
    partial = record.with_name(record.name + ".partial.json")
    if partial.exists():
        with contextlib.suppress(ValueError, OSError, AttributeError):
            saved = read_json(partial)
            done = len(saved.get("splits", {}))
            if saved.get("code") == checkpoint_code():
                note += f"; resumes from a checkpoint with {done} split(s) done"
            else:
                note += f"; a checkpoint with {done} split(s) done by other code is set aside"
    return CellStatus(cell, TO_RUN, note, record)
