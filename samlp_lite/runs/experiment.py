"""Runs over splits that print a summary and write one result record (:mod:`samlp_lite.records`)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

if TYPE_CHECKING:
    import pandas as pd

from samlp_lite.config import config_hash, resolve_config
from samlp_lite.data import GraphData, load_dataset
from samlp_lite.models.registry import architecture_of, is_teacher, uses_teacher
from samlp_lite.records import (
    SplitCheckpoint,
    accuracy_record,
    check_output_path,
    mean_std,
    metric_names,
    print_summary,
    record_path,
    write_json_atomic,
)
from samlp_lite.runtime import cache_dir, pick_device, smoke_mode
from samlp_lite.train.soft_labels import (
    SETTINGS,
    get_teacher_outputs,
    load_teacher_model,
)


def parse_splits(text: str | int | Iterable[int] | None, num_splits: int) -> list[int]:
    """Parse ``"0-9"``, ``"0,3,5"``, ``"2"``, ``2`` or a list into split indices checked against ``num_splits``.

    ``None`` means every split (only split 0 in smoke mode).
    """
    if text is None:
        return [0] if smoke_mode() else list(range(num_splits))
    if isinstance(text, bool):
        raise ValueError(f"cannot read splits {text!r}; write e.g. 0-9, 0,2,4 or 3")
    if isinstance(text, int):  # papermill's -p splits 0 arrives as an int
        text = str(text)
    if isinstance(text, str):
        chosen: list[int] = []
        for part in text.replace(" ", "").split(","):
            if not part:
                continue
            try:
                if "-" in part:
                    lo, hi = part.split("-", 1)
                    chosen.extend(range(int(lo), int(hi) + 1))
                else:
                    chosen.append(int(part))
            except ValueError:
                raise ValueError(f"cannot read splits {text!r}; write e.g. 0-9, 0,2,4 or 3") from None
    else:
        chosen = [int(s) for s in text]
    bad = [s for s in chosen if not 0 <= s < num_splits]
    if bad or not chosen:
        raise ValueError(f"splits {bad or text!r} out of range: this dataset has splits 0-{num_splits - 1}")
    return sorted(dict.fromkeys(chosen))


def _shown(setting: str, metric: str, isolated: bool = False) -> list[str]:
    names = metric_names(setting, isolated=isolated)
    return names + (metric_names(setting, isolated=isolated, metric="roc_auc") if metric == "roc_auc" else [])


def _say_resumed(checkpoint: SplitCheckpoint, chosen: list[int], echo: Callable[[str], None]) -> None:
    if checkpoint.stale:
        echo(checkpoint.stale)
    reused = [s for s in chosen if s in checkpoint.done]
    if reused:
        echo(f"resuming: reusing finished split(s) {', '.join(map(str, reused))} from {checkpoint.path}")


def _say_split(split: int, metrics: Mapping[str, Any], names: list[str], total: int,
               echo: Callable[[str], None]) -> None:
    if total > 1:
        shown = "  ".join(f"{name} {100 * float(metrics[name]):.2f}" for name in names if name in metrics)
        echo(f"split {split} done: {shown}  ({float(metrics.get('wall_s', 0.0)):.1f} s)")


def run_teacher(dataset: str | GraphData, teacher: str, *, splits: str | Iterable[int] | None = None,
                setting: str = "transductive", overrides: Mapping[str, Any] | Iterable[str] | None = None,
                json_path: str | Path | None = None, use_cache: bool = True, progress: bool = True,
                echo: Callable[[str], None] = print, command: str | None = None) -> dict[str, Any]:
    """Train (or read from cache) a teacher on several splits; print and optionally save the record.

    Returns:
        The accuracy record (also written to ``json_path`` when given).
    """
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose one of {list(SETTINGS)}")
    graph = dataset if isinstance(dataset, GraphData) else load_dataset(dataset, progress=progress)
    config = resolve_config(graph.name, teacher, overrides)
    chosen = parse_splits(splits, graph.num_splits)
    device = pick_device(config.device)
    path = check_output_path(record_path(json_path))
    if use_cache:
        cache_dir()
    checkpoint = SplitCheckpoint(path, f"{graph.name}|{graph.fingerprint}|{teacher}|{setting}|{config_hash(config)}")
    _say_resumed(checkpoint, chosen, echo)
    per_split = []
    for split in chosen:
        if split not in checkpoint.done:
            split_start = time.perf_counter()
            out = get_teacher_outputs(graph, teacher, split, config, setting=setting, use_cache=use_cache,
                                      progress=progress, device=device)
            checkpoint.save(split, {**out.metrics, "train_wall_s": out.metrics.get("wall_s"),
                                    "wall_s": time.perf_counter() - split_start, "from_cache": out.from_cache,
                                    "teacher_entry": out.entry})
            _say_split(split, checkpoint.done[split], _shown(setting, graph.metric), len(chosen), echo)
        per_split.append(checkpoint.done[split])
    wall = sum(float(m.get("wall_s", 0.0)) for m in per_split)
    metrics = _shown(setting, graph.metric)
    cached = sum(bool(m["from_cache"]) for m in per_split)
    print_summary(f"{teacher} on {graph.name} ({setting}, {len(chosen)} splits, {cached} from cache, "
                  f"device {device})", chosen, per_split, metrics, echo)
    record = accuracy_record(dataset=graph.name, model=teacher, teacher=None, setting=setting, splits=chosen,
                             per_split=per_split, config=config, wall_s=wall, device=str(device), command=command,
                             extra={"from_cache": [bool(m["from_cache"]) for m in per_split],
                                    "train_wall_s": [m.get("train_wall_s") for m in per_split],
                                    "graph_fingerprint": graph.fingerprint,
                                    "teacher_entries": [m.get("teacher_entry") for m in per_split]})
    if path is not None:
        write_json_atomic(path, record)
        checkpoint.finish()
        echo(f"record written to {path}")
    return record


def run_student(dataset: str | GraphData, student: str, teacher: str = "sage", *,
                splits: str | Iterable[int] | None = None, setting: str = "transductive",
                overrides: Mapping[str, Any] | Iterable[str] | None = None,
                teacher_overrides: Mapping[str, Any] | Iterable[str] | None = None,
                json_path: str | Path | None = None, use_cache: bool = True, progress: bool = True,
                echo: Callable[[str], None] = print, command: str | None = None) -> dict[str, Any]:
    """Train a student on several splits (reading or training the teacher); print and save the record.

    Args:
        dataset: registry name or a loaded graph.
        student: ``mlp``, ``glnn``, ``linkx``, ``sa-mlp-nomix``, ``sa-mlp`` or an ``sa-mlp-*`` ablation.
        teacher: teacher whose soft labels GLNN and SA-MLP learn from (ignored by mlp and linkx).
        splits: e.g. ``"0-9"`` (default every split; split 0 in smoke mode).
        setting: ``transductive`` or ``inductive``.
        overrides: student config overrides (``--set``). teacher_overrides: the teacher's.
        json_path: where to write the record.
        use_cache: read/write the teacher soft-label cache.
        command: the record's provenance command (default: this process's command line).
    """
    from samlp_lite.train.distill import train_student_on_split
    from samlp_lite.train.inductive import evaluate_inductive_student

    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose one of {list(SETTINGS)}")
    architecture_of(student)
    graph = dataset if isinstance(dataset, GraphData) else load_dataset(dataset, progress=progress)
    config = resolve_config(graph.name, student, overrides, teacher=teacher)
    teacher_config = resolve_config(graph.name, teacher, teacher_overrides)
    chosen = parse_splits(splits, graph.num_splits)
    device = pick_device(config.device)
    path = check_output_path(record_path(json_path))
    if use_cache:
        cache_dir()
    checkpoint = SplitCheckpoint(path, f"{graph.name}|{graph.fingerprint}|{student}|{teacher}|{setting}|"
                                       f"{config_hash(config)}|{config_hash(teacher_config)}")
    _say_resumed(checkpoint, chosen, echo)
    per_split = []
    for split in chosen:
        outputs = None
        if split in checkpoint.done:
            per_split.append(checkpoint.done[split])
            continue
        teacher_model = None
        if uses_teacher(student) or setting == "inductive":
            need_model = config.mix_target == "teacher" and uses_teacher(student)
            outputs = get_teacher_outputs(graph, teacher, split, teacher_config, setting=setting,
                                          use_cache=use_cache, progress=progress, device=device, need_model=need_model)
            if need_model:
                teacher_model = load_teacher_model(graph, teacher, teacher_config, outputs, device)
        split_start = time.perf_counter()
        desc = f"{student} on {graph.name} split {split}"
        if setting == "transductive":
            metrics = train_student_on_split(graph, student, split, config, outputs, device=device,
                                             progress=progress, desc=desc, teacher=teacher_model)
        else:
            metrics = evaluate_inductive_student(graph, student, split, config, outputs, device=device,
                                                 progress=progress, desc=desc, teacher=teacher_model)
        metrics["wall_s"] = time.perf_counter() - split_start
        metrics["teacher_entry"] = outputs.entry if outputs is not None else None
        checkpoint.save(split, metrics)
        _say_split(split, metrics, _shown(setting, graph.metric, "ind_isolated_acc" in metrics), len(chosen), echo)
        per_split.append(metrics)
    wall = sum(float(m.get("wall_s", 0.0)) for m in per_split)
    metrics_shown = _shown(setting, graph.metric, "ind_isolated_acc" in per_split[0])
    taught = uses_teacher(student)
    print_summary(f"{student}" + (f" (teacher {teacher})" if taught else "") + f" on {graph.name} ({setting}, "
                  f"{len(chosen)} splits, device {device})", chosen, per_split, metrics_shown, echo)
    record = accuracy_record(dataset=graph.name, model=student, teacher=teacher if taught else None, setting=setting,
                             splits=chosen, per_split=per_split, config=config, wall_s=wall, device=str(device), command=command,
                             extra={"teacher_config": teacher_config.to_dict() if taught or setting == "inductive"
                                    else None, "best_epoch": [m.get("best_epoch") for m in per_split],
                                    "graph_fingerprint": graph.fingerprint,
                                    "teacher_entries": [m.get("teacher_entry") for m in per_split]})
    if any("stage2_freeze" in m for m in per_split):  # the stage-2 variant validation chose, per split
        record["stage2_freeze"] = [m.get("stage2_freeze") for m in per_split]
    if path is not None:
        write_json_atomic(path, record)
        checkpoint.finish()
        echo(f"record written to {path}")
    return record


def compare_models(dataset: str | GraphData, jobs: Iterable[tuple[str, str, Mapping[str, Any]]], *,
                   teacher: str = "sage", splits: str | Iterable[int] | None = "0", setting: str = "transductive",
                   progress: bool = True) -> "pd.DataFrame":
    """Run several (label, model, overrides) jobs on the same splits; one row per job.

    The frame has ``label``, ``model``, ``mean``, ``std`` (of ``test_acc``, or ``prod_acc``
    inductively) and the per-split values; ablation and sensitivity tables are built from it.
    """
    import pandas as pd
    from tqdm import tqdm

    graph = dataset if isinstance(dataset, GraphData) else load_dataset(dataset, progress=progress)
    metric = "test_acc" if setting == "transductive" else "prod_acc"
    rows = []
    for label, model, overrides in tqdm(list(jobs), desc=f"models on {graph.name}", disable=not progress):
        if is_teacher(model):
            record = run_teacher(graph, model, splits=splits, setting=setting, overrides=overrides,
                                 progress=False, echo=lambda s: None)
        else:
            record = run_student(graph, model, teacher, splits=splits, setting=setting, overrides=overrides,
                                 progress=False, echo=lambda s: None)
        mean, std = mean_std(record[metric])
        rows.append({"label": label, "model": model, "mean": mean, "std": std, metric: record[metric],
                     "wall_s": record["provenance"]["wall_s"]})
    return pd.DataFrame(rows)
