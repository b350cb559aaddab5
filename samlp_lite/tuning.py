"""Small grid searches on validation accuracy (the chosen values go to ``tuned:`` in the YAML)."""
from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from .config import resolve_config
from .data import GraphData, load_dataset
from .experiments import parse_splits, record_path
from .records import provenance, write_json_atomic
from .runtime import pick_device
from .soft_labels import get_teacher_outputs
from .teachers import TEACHERS

SEARCH_SPACES_PATH = Path(__file__).parent / "config" / "tuning.yaml"


def search_space(kind: str, path: str | Path = SEARCH_SPACES_PATH) -> dict[str, list]:
    """The grid for ``kind`` (``teacher`` or ``student``) from ``tuning.yaml``."""
    spaces = yaml.safe_load(Path(path).read_text()) or {}
    if kind not in spaces:
        raise ValueError(f"no search space {kind!r} in {path}; it has {sorted(spaces)}")
    return {key: list(values) for key, values in spaces[kind].items()}


def grid(space: Mapping[str, Iterable[Any]]) -> list[dict[str, Any]]:
    """Every combination of the values in ``space`` as a list of override dicts."""
    keys = list(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]


def tune_teacher(dataset: str | GraphData, teacher: str, *, splits: str | Iterable[int] = "0-2",
                 space: Mapping[str, Iterable[Any]] | None = None, json_path: str | Path | None = None,
                 progress: bool = True, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Grid-search a teacher on a few splits; returns (and writes) a tuning record with the winner.

    Trained candidates land in the soft-label cache, so the winner's later full run reuses them.
    """
    if teacher not in TEACHERS:
        raise ValueError(f"unknown teacher {teacher!r}; choose one of {list(TEACHERS)}")
    graph = dataset if isinstance(dataset, GraphData) else load_dataset(dataset, progress=progress)
    chosen = parse_splits(splits, graph.num_splits)
    candidates = grid(space or search_space("teacher"))
    start = time.perf_counter()
    rows = []
    for i, overrides in enumerate(candidates, 1):
        config = resolve_config(graph.name, teacher, overrides)
        vals, tests = [], []
        for split in chosen:
            out = get_teacher_outputs(graph, teacher, split, config, progress=False)
            vals.append(out.metrics["val_acc"])
            tests.append(out.metrics["test_acc"])
        rows.append({"overrides": overrides, "val_acc": statistics.fmean(vals), "test_acc": statistics.fmean(tests)})
        if progress:
            echo(f"[{i}/{len(candidates)}] {teacher} {graph.name} {overrides}: "
                 f"val {100 * rows[-1]['val_acc']:.2f} test {100 * rows[-1]['test_acc']:.2f}")
    best = max(rows, key=lambda r: r["val_acc"])
    echo(f"best for {teacher} on {graph.name}: {best['overrides']} (val {100 * best['val_acc']:.2f})")
    record = {"kind": "tuning", "dataset": graph.name, "model": teacher, "splits": chosen,
              "candidates": rows, "best": best,
              "provenance": provenance(wall_s=time.perf_counter() - start, device=str(pick_device()))}
    path = record_path(json_path)
    if path is not None:
        write_json_atomic(path, record)
    return record
