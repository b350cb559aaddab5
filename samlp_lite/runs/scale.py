"""One SA-MLP distillation run over several processes (``torchrun``), measured: a ``kind: "scale"`` record.

Launch it with PyTorch's launcher, one process per CPU socket or GPU::

    torchrun --standalone --nproc_per_node 2 -m samlp_lite.runs.scale --graph csbm-100k

(``--nnodes`` and ``--rdzv-endpoint`` spread it over hosts; see the how-to's "More than one
machine"). Every process loads the graph, reads the teacher's soft labels (rank 0 trains and
caches them first if needed), keeps its own nodes and trains with
:func:`samlp_lite.train.distributed.train_student_distributed`. Rank 0 then writes one record,
atomically, by default to ``results/scale/<graph>-<model>-<W>proc.json``::

    {"kind": "scale", "graph", "num_nodes", "num_edges", "processes", "provenance",
     "stages": [{"stage", "wall_s", "peak_rss_bytes", "per_process": [...]}],
     "accuracy": {model: test_acc}, ...}

``wall_s`` and ``peak_rss_bytes`` of a stage are the largest over the processes; ``per_process``
lists each one's (the peak is reset at the start of every stage, so it is that stage's own).
Stages: ``load`` (read or generate the graph), ``teacher`` (soft labels), ``partition`` (cut out
the process's nodes and drop the rest), ``shard`` (build the model, shard ``W_A``), ``train``,
``evaluate``. ``table`` gives the shape of ``W_A`` and each process's piece of it.

(:mod:`samlp_lite.runs.scale_local` is the one-machine path, ``samlp-lite scale``.)
"""
from __future__ import annotations

import argparse
import gc
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from samlp_lite.records import provenance, record_path, write_json_atomic

SCALE_DIR = Path("results") / "scale"
STAGES = ("load", "teacher", "partition", "shard", "train", "evaluate")


def default_record(graph: str, model: str, processes: int) -> Path:
    """``results/scale/<graph>-<model>-<W>proc.json`` (under ``results/smoke/`` in smoke mode)."""
    return record_path(SCALE_DIR / f"{Path(graph).stem}-{model}-{processes}proc.json")


def record_target(record: str | None, graph: str, model: str, processes: int) -> Path | None:
    """Where ``--record`` sends the record: the given path, :func:`default_record` when absent, None for ``none``."""
    if record is None:
        return default_record(graph, model, processes)
    return None if record.strip().lower() == "none" else Path(record)


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m samlp_lite.runs.scale`` (under ``torchrun``)."""
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node N -m samlp_lite.runs.scale",
        description="Distil SA-MLP over the processes torchrun starts, with W_A sharded by TorchRec; rank 0 "
                    "writes a kind: scale record (wall time and peak memory per stage and process, accuracy).")
    parser.add_argument("--graph", default="csbm-100k",
                        help="a dataset, csbm-<size> (e.g. csbm-100k: the benchmark's synthetic graph) or a "
                             ".pt/.npz graph file (default csbm-100k)")
    parser.add_argument("--model", default="sa-mlp", help="the SA-MLP student (default sa-mlp)")
    parser.add_argument("--teacher", default="gcn", help="teacher of the soft labels (default gcn)")
    parser.add_argument("--split", type=int, default=0, help="split index (default 0)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="student config override, e.g. --set hidden=256 --set batch_size=10000")
    parser.add_argument("--teacher-set", action="append", default=[], metavar="KEY=VALUE",
                        help="teacher config override")
    parser.add_argument("--sharding", choices=["auto", "column_wise", "row_wise"], default="auto",
                        help="how W_A is split: auto = column_wise on the CPU, row_wise on GPUs")
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    parser.add_argument("--record", default=None, metavar="PATH",
                        help="where rank 0 writes the record (default results/scale/<graph>-<model>-<W>proc.json; "
                             "'none' for no record)")
    parser.add_argument("--teacher-only", action="store_true",
                        help="train and cache the teacher's soft labels, then stop (run it once, alone, before "
                             "timing several process counts)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--table", nargs="?", const=str(SCALE_DIR), default=None, metavar="DIR",
                        help="print the records of this module under DIR (default results/scale) as a markdown "
                             "table, and run nothing (no torchrun needed)")
    return parser


def load_scale_records(folder: str | Path = SCALE_DIR) -> list[dict[str, Any]]:
    """The records this module wrote under ``folder`` (``kind: scale`` with a ``table``), by graph, model, processes."""
    from samlp_lite.records import read_json

    records = []
    for path in sorted(Path(folder).glob("*.json")):
        record = read_json(path)
        if isinstance(record, dict) and record.get("kind") == "scale" and "table" in record:
            records.append({**record, "_path": str(path)})
    return sorted(records, key=lambda r: (r["graph"], r["model"], r["processes"]))


def markdown_table(records: list[dict[str, Any]]) -> str:
    """One row per record: accuracy, train wall time, train-stage peak RSS of each process, W_A pieces."""
    mib = 2 ** 20
    lines = ["| graph | model | processes | device | sharding | test accuracy | train wall_s | "
             "peak RSS per process, train (MiB) | W_A per process |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        train = next((s for s in r["stages"] if s["stage"] == "train"), None)
        peaks = ", ".join(f"{p['peak_rss_bytes'] / mib:.0f}" for p in train["per_process"]) if train else ""
        pieces = ", ".join(f"{s['shape'][0]:,} x {s['shape'][1]}" for s in r["table"]["shards"])
        lines.append(f"| {r['graph']} | {r['model']} | {r['processes']} | {r.get('device', '')} | "
                     f"{r['table']['sharding']} | {100 * r['accuracy'][r['model']]:.2f} % | "
                     f"{train['wall_s'] if train else ''} | {peaks} | {pieces} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of every process; returns 0 (rank 0 prints a summary and writes the record)."""
    args = build_parser().parse_args(argv)
    if args.table is not None:
        records = load_scale_records(record_path(Path(args.table)))
        print(markdown_table(records) if records else f"no scale records of samlp_lite.runs.scale under {args.table}")
        return 0
    started = time.perf_counter()
    import torch.distributed as dist

    from samlp_lite.config import parse_overrides, resolve_config
    from samlp_lite.runtime import apply_threads
    from samlp_lite.serve.bench import load_bench_graph
    from samlp_lite.train.distributed import (
        StageMeter,
        import_torchrec,
        init_process_group,
        partition,
        quiet_library_warnings,
        train_student_distributed,
    )
    from samlp_lite.train.soft_labels import get_teacher_outputs

    apply_threads()
    quiet_library_warnings()
    if not args.teacher_only:
        import_torchrec()  # fail before any work, with the install hint
    group = init_process_group(None if args.device == "auto" else args.device)
    say = print if group.is_main else (lambda *a, **k: None)
    try:
        meter = StageMeter(device=group.device)
        with meter.stage("load"):
            graph = load_bench_graph(args.graph)
        if graph.metric != "accuracy":
            raise ValueError(f"{graph.name} is scored by {graph.metric}; the distributed trainer reports accuracy only")
        config = resolve_config(graph.name, args.model, parse_overrides(args.set), teacher=args.teacher)
        teacher_config = resolve_config(graph.name, args.teacher, parse_overrides(args.teacher_set))
        graph_info = {"graph": graph.name, "num_nodes": graph.num_nodes,
                      "num_edges": int(graph.data.edge_index.size(1)), "num_features": graph.num_features,
                      "num_classes": graph.num_classes}
        say(f"{graph.name}: {graph.num_nodes} nodes, {graph_info['num_edges']} edge entries; "
            f"{group.world_size} process(es), {group.backend} on {group.device.type}", flush=True)
        with meter.stage("teacher"):
            outputs = None
            for turn in (0, 1):  # rank 0 first (it may train and cache), then the others read the cache
                if (group.rank == 0) == (turn == 0):
                    outputs = get_teacher_outputs(graph, args.teacher, args.split, teacher_config,
                                                  progress=group.is_main and not args.quiet, device=group.device)
                if group.world_size > 1:
                    dist.barrier()
        teacher_acc = float(outputs.metrics["test_acc"])
        say(f"teacher {args.teacher}: test accuracy {100 * teacher_acc:.2f}"
            f" ({'from the cache' if outputs.from_cache else 'trained and cached'})", flush=True)
        if args.teacher_only:
            return 0
        with meter.stage("partition"):
            shard = partition(graph, args.split, outputs.logits, config, group.rank, group.world_size)
            from_cache = outputs.from_cache
            del graph, outputs
            gc.collect()
        result = train_student_distributed(args.model, shard, config, group,
                                           sharding=None if args.sharding == "auto" else args.sharding,
                                           meter=meter, progress=not args.quiet)
        mine = {"rank": group.rank, "host": platform.node(), "stages": meter.stages,
                "table_shards": result.table_shards}
        everyone: list[Any] = [None] * group.world_size
        if group.world_size > 1:
            dist.all_gather_object(everyone, mine)
        else:
            everyone = [mine]
        if not group.is_main:
            return 0
        stages = []
        for index, entry in enumerate(meter.stages):
            per = [{"rank": p["rank"], **{k: v for k, v in p["stages"][index].items() if k != "stage"}}
                   for p in everyone]
            stages.append({"stage": entry["stage"], "wall_s": max(p["wall_s"] for p in per),
                           "peak_rss_bytes": max(p["peak_rss_bytes"] for p in per), "per_process": per})
        rows, cols = result.table_shape
        shards = [{"rank": p["rank"], "shape": s["shape"], "offsets": s["offsets"],
                   "fraction": round(s["shape"][0] * s["shape"][1] / (rows * cols), 4)}
                  for p in everyone for s in p["table_shards"]]
        wall = time.perf_counter() - started
        command = shlex.join(["torchrun", "--nproc_per_node", str(group.world_size), "-m", "samlp_lite.runs.scale",
                              *(sys.argv[1:] if argv is None else argv)])
        record = {
            "kind": "scale", **graph_info, "processes": group.world_size,
            "hosts": len({p["host"] for p in everyone}), "model": args.model, "teacher": args.teacher,
            "split": args.split, "device": group.device.type, "backend": group.backend,
            "stages": stages,
            "accuracy": {args.model: result.test_acc, args.teacher: teacher_acc},
            "val_acc": {args.model: result.val_acc},
            "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
            "table": {"shape": result.table_shape, "bytes": rows * cols * 4, "sharding": result.sharding,
                      "shards": shards},
            "teacher_from_cache": from_cache, "config": config.to_dict(), "teacher_config": teacher_config.to_dict(),
            "provenance": provenance(wall_s=wall, device=str(group.device), command=command),
        }
        say(summary(record))
        path = record_target(args.record, record["graph"], args.model, group.world_size)
        if path is not None:
            write_json_atomic(path, record)
            say(f"record: {path}")
        return 0
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def summary(record: dict[str, Any]) -> str:
    """A few lines: accuracy, then wall time and peak RSS per stage, then the table's pieces."""
    mib = 2 ** 20
    lines = [f"{record['model']} on {record['graph']}, {record['processes']} process(es): test accuracy "
             f"{100 * record['accuracy'][record['model']]:.2f} (best epoch {record['best_epoch']} of "
             f"{record['epochs_run']})",
             f"{'stage':<10} {'wall_s':>8} {'peak RSS MiB (per process)':>30}"]
    for stage in record["stages"]:
        per = ", ".join(f"{p['peak_rss_bytes'] / mib:.0f}" for p in stage["per_process"])
        lines.append(f"{stage['stage']:<10} {stage['wall_s']:>8.2f} {per:>30}")
    table = record["table"]
    pieces = ", ".join(f"rank {s['rank']}: {s['shape'][0]} x {s['shape'][1]}" for s in table["shards"])
    lines.append(f"W_A {table['shape'][0]} x {table['shape'][1]} ({table['bytes'] / mib:.0f} MiB), "
                 f"{table['sharding']}: {pieces}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
