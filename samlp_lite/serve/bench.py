"""The serving benchmark: every model x gather x batch size on a graph, as latency records.

:func:`bench_graph` builds the :class:`~samlp_lite.serve.store.GraphStore` of a graph and one
server per model and gather (:func:`samlp_lite.serve.students.build_servers`), then, per batch size,
measures one call's peak memory and times calls on fresh random target nodes
(:mod:`samlp_lite.serve.measure`). What is timed is everything a server does for one batch:
target ids to the device, gathering from the store, the forward pass, logits back to the
host. :func:`run_bench` does that for several graphs and writes one latency record per graph
(``results/latency/<graph>.json`` by default); :func:`samlp_lite.records.latency_records`
reads them back.

Graphs are the offline datasets (``cora``, ``citeseer``, ``chameleon``, ``squirrel``) and
synthetic CSBM graphs named by size (``csbm-10k``, ``csbm-2m``: average degree 20, 128
features), optionally with another average degree (``csbm-2m-deg5``). Model weights are
random (seeded): latency and memory depend on shapes only.

SA-MLP's floor: the ``mlp`` row (feature lookup plus MLP) and the ``structure-lookup`` row (the
embedding-bag of the targets' adjacency rows alone) are its two parts timed alone; the
record's ``summary`` gives their sum (``floor_ms``) and SA-MLP over it (``sa_mlp_over_floor``).

:func:`run_degree_sweep` benchmarks one CSBM size at several average degrees and writes one
``latency-sweep`` record (``results/latency/sweeps/<graph>-degree.json``): ``{"kind":
"latency-sweep", "sweep": "avg_degree", "graph", "num_nodes", "values", "records": [one latency
record per degree, graph named csbm-<size>-deg<k>]}``. Its latency records are nested, so the
readers of ``results/`` (:func:`samlp_lite.records.latency_records`) do not mix them into the
graph-size ladder; :func:`read_sweep` reads it back.
"""
from __future__ import annotations

import difflib
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import Tensor

from samlp_lite.config import resolve_config
from samlp_lite.data import GraphData, is_graph_file, load_dataset, make_csbm
from samlp_lite.records import check_output_path, provenance, write_json_atomic
from samlp_lite.serve import DEFAULT_GRAPHS, REAL_GRAPHS, SMOKE_GRAPH, SYNTHETIC_GRAPHS  # noqa: F401
from samlp_lite.serve.measure import (
    MEMORY_METHOD,
    TimingPolicy,
    op_profile,
    peak_memory_bytes,
    quantile,
    synchronize,
    time_calls,
)
from samlp_lite.serve.store import GraphStore
from samlp_lite.serve.students import (
    GATHERS,
    MODELS,
    TEACHER_MODELS,
    Server,
    build_servers,
    check_models,
)

DEFAULT_BATCH_SIZES: tuple[int | str, ...] = (1, 256, 4096, "all")
CSBM_OPTIONS = dict(num_classes=5, avg_degree=20.0, num_features=128, homophily=0.8,
                    feature_signal=1.0, num_splits=1, seed=0)
"""Options of :func:`~samlp_lite.data.make_csbm` for the synthetic scaling graphs (average degree 20, 128 features)."""
SAMPLED_ALL_REASON = ("all-node inference runs layer by layer over every neighbour (exact and cheaper "
                      "than a k-hop tree); neighbour sampling is a mini-batch device, so there is no "
                      "sampled all-node row")
_CSBM_NAME = re.compile(r"^csbm-(\d+(?:\.\d+)?)([km]?)(?:-deg(\d+(?:\.\d+)?))?$")


# --------------------------------------------------------------------------- graphs and batches

def csbm_size(name: str) -> int | None:
    """Nodes of a synthetic graph name such as ``csbm-10k``, ``csbm-2m``, ``csbm-1500`` or ``csbm-2m-deg5``; else None."""
    match = _CSBM_NAME.match(name)
    if not match:
        return None
    return int(round(float(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2)]))


def csbm_degree(name: str) -> float | None:
    """Average degree of a synthetic graph name: ``csbm-2m-deg5`` -> 5, ``csbm-2m`` -> 20 (the default); else None."""
    match = _CSBM_NAME.match(name)
    if not match:
        return None
    return float(match.group(3)) if match.group(3) else float(CSBM_OPTIONS["avg_degree"])


def csbm_name(num_nodes: int | str, avg_degree: float | None = None) -> str:
    """The graph name of a CSBM size (``2_000_000`` or ``"2m"``) at an average degree: ``csbm-2m-deg5``."""
    if isinstance(num_nodes, str):
        base = num_nodes if num_nodes.startswith("csbm-") else f"csbm-{num_nodes}"
        base = re.sub(r"-deg\d+(?:\.\d+)?$", "", base)
    else:
        n = int(num_nodes)
        base = ("csbm-" + (f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0
                           else str(n)))
    if avg_degree is None:
        return base
    return f"{base}-deg{float(avg_degree):g}"


def check_graph_names(names: Iterable[str]) -> list[str]:
    """Return ``names`` if each is a real dataset, ``csbm-<size>`` or a graph file; else raise ValueError."""
    names = list(names)
    for name in names:
        if is_graph_file(name):
            if not Path(name).expanduser().is_file():
                raise ValueError(f"graph file {name} does not exist")
            continue
        if name not in REAL_GRAPHS and csbm_size(name) is None:
            close = difflib.get_close_matches(name, list(DEFAULT_GRAPHS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown graph {name!r}: use one of {list(REAL_GRAPHS)}, a synthetic "
                             f"graph csbm-<size> such as csbm-10k, csbm-2m, or a .pt/.npz graph file.{hint}")
        if csbm_size(name) is not None and csbm_size(name) < 10:
            raise ValueError(f"graph {name!r} is too small; a CSBM graph needs at least 10 nodes")
    return names


def parse_batch_sizes(items: Iterable[int | str]) -> list[int | str]:
    """Batch sizes as positive ints or ``"all"``, e.g. from ``"1,256,4096,all"``."""
    out: list[int | str] = []
    for item in items:
        text = str(item).strip().lower()
        if text == "all":
            out.append("all")
            continue
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"batch size {item!r} is neither a positive integer nor 'all'") from None
        if value < 1:
            raise ValueError(f"batch size must be at least 1, got {value}")
        out.append(value)
    if not out:
        raise ValueError("give at least one batch size, e.g. 1,256,4096,all")
    return list(dict.fromkeys(out))


def load_bench_graph(name: str, *, progress: bool = False) -> GraphData:
    """A benchmark graph: an offline dataset by name, or ``csbm-<size>`` built by :func:`~samlp_lite.data.make_csbm`."""
    check_graph_names([name])
    size = csbm_size(name)
    if size is None:
        return load_dataset(name, progress=progress)
    return make_csbm(size, name=name, **{**CSBM_OPTIONS, "avg_degree": csbm_degree(name)})


def target_batches(num_nodes: int, batch_size: int, count: int, seed: int = 0) -> list[Tensor]:
    """``count`` batches of ``batch_size`` distinct random nodes (fresh nodes per batch while they last)."""
    generator = torch.Generator().manual_seed(seed)
    batches: list[Tensor] = []
    while len(batches) < count:
        perm = torch.randperm(num_nodes, generator=generator)
        for start in range(0, num_nodes - batch_size + 1, batch_size):
            batches.append(perm[start:start + batch_size])
            if len(batches) == count:
                break
    return batches


# --------------------------------------------------------------------------- one graph

@dataclass
class BenchOptions:
    """What :func:`bench_graph` runs.

    Attributes:
        models: from :data:`samlp_lite.serve.students.MODELS`.
        batch_sizes: ints and/or ``"all"``; sizes not below N are skipped (``all`` covers them).
        policy: :class:`~samlp_lite.serve.measure.TimingPolicy`.
        device: where the store and models live.
        seed: seeds weights, targets and sampling.
        profile_batch_size: batch size of the op profile of ``mlp`` and ``sa-mlp`` (None: off).
        overrides: config overrides for every model (e.g. ``{"hidden": 128}``).
        model_overrides: config overrides per model name, applied after ``overrides``
            (e.g. ``{"sage": {"hidden": 256}}``).
        compile_modes: also time ``mlp`` and ``sa-mlp`` in these modes of
            :data:`samlp_lite.serve.compiled.COMPILE_MODES` (``torch.compile``, CUDA graphs) at
            every integer batch size; empty: off.
    """

    models: Sequence[str] = MODELS
    batch_sizes: Sequence[int | str] = DEFAULT_BATCH_SIZES
    policy: TimingPolicy = field(default_factory=TimingPolicy)
    device: str = "cpu"
    seed: int = 0
    profile_batch_size: int | None = 256
    overrides: dict = field(default_factory=dict)
    model_overrides: dict = field(default_factory=dict)
    compile_modes: Sequence[str] = ()

    def overrides_for(self, model_name: str) -> dict:
        """The config overrides of one model."""
        return {**self.overrides, **(self.model_overrides.get(model_name) or {})}


def bench_graph(graph: GraphData, options: BenchOptions, *, progress: Callable[[str], None] | None = None
                ) -> dict[str, Any]:
    """Measure every model x gather x batch size on ``graph``; return the latency record body.

    ``progress`` is called with a short label after each measured cell.

    The result has every key of a latency record (see :mod:`samlp_lite.records`) except ``provenance`` (see :func:`run_bench`).
    """
    started = time.perf_counter()
    store = GraphStore.from_graph(graph, device=torch.device(options.device))
    return bench_store(store, graph.num_classes, options, progress=progress, synthetic=csbm_size(graph.name) is not None,
                       started=started)


def bench_store(store: GraphStore, num_classes: int, options: BenchOptions, *,
                progress: Callable[[str], None] | None = None, synthetic: bool | None = None,
                started: float | None = None) -> dict[str, Any]:
    """:func:`bench_graph` on a store already built (e.g. from a graph on disk, :mod:`samlp_lite.runs.scale_local`)."""
    check_models(options.models)
    batch_sizes = parse_batch_sizes(options.batch_sizes)
    device = store.device
    num_nodes = store.num_nodes
    started = time.perf_counter() if started is None else started
    policy = options.policy
    count = policy.warmup + policy.repeats
    batches = {b: ([None] if b == "all" else target_batches(num_nodes, b, count, options.seed))
               for b in batch_sizes if b == "all" or b < num_nodes}
    skipped = [{"batch_size": b, "reason": f"not below the graph's {num_nodes} nodes; 'all' covers it"}
               for b in batch_sizes if b != "all" and b >= num_nodes]
    rows, configs, profile = [], {}, {}
    for model_name in options.models:
        servers = build_servers(model_name, store, num_classes, seed=options.seed,
                                overrides=options.overrides_for(model_name))
        configs[model_name] = _shape_of(store.name, model_name, options.overrides_for(model_name))
        for server in servers:
            for batch_size, cell in batches.items():
                if batch_size == "all" and server.gather_name == "sampled":
                    skipped.append({"model": server.model_name, "gather": "sampled", "batch_size": "all",
                                    "reason": SAMPLED_ALL_REASON})
                    continue
                size = num_nodes if batch_size == "all" else batch_size
                first = cell[0].to(device) if cell[0] is not None else None
                memory_start = time.perf_counter()
                peak = peak_memory_bytes(lambda: server(first), device)
                seconds = time_calls(server, cell[1:] if len(cell) > 1 else cell, device, policy,
                                     warm_s=time.perf_counter() - memory_start)
                ms = [1e3 * s for s in seconds]
                rows.append({
                    "model": server.model_name, "gather": server.gather_name, "batch_size": size,
                    "all_nodes": batch_size == "all",
                    "median_ms": round(statistics.median(ms), 4),
                    "p10_ms": round(quantile(ms, 0.1), 4), "p90_ms": round(quantile(ms, 0.9), 4),
                    "peak_mem_bytes": peak, "num_params": server.num_params,
                    "bytes_per_node": round(server.input_bytes(first) / size, 1),
                    "us_per_node": round(1e3 * statistics.median(ms) / size, 4),
                    "repeats": len(ms), "impl": server.impl_all if batch_size == "all" else server.impl,
                })
                if progress:
                    progress(f"{store.name} {server.model_name}/{server.gather_name} B={batch_size}: "
                             f"{rows[-1]['median_ms']:.3g} ms")
            if (options.profile_batch_size and server.model_name in ("mlp", "sa-mlp")
                    and options.profile_batch_size < num_nodes and device.type == "cpu"):
                profile[server.model_name] = _profile_entry(server, store, num_classes, options)
        del servers
    sizes = [b for b in batch_sizes if b != "all" and b < num_nodes]
    floor = floor_check(store, num_classes, options, sizes)
    compiled = []
    if options.compile_modes:
        from samlp_lite.serve.compiled import compile_check

        compiled = compile_check(store, num_classes, sizes, options.compile_modes, policy, seed=options.seed,
                                 overrides_for=options.overrides_for)
    return {
        "kind": "latency", "graph": store.name, "num_nodes": num_nodes, "num_edges": store.num_edges,
        "avg_degree": round(store.num_edges / max(num_nodes, 1), 3),
        "num_features": int(store.features.size(1)), "num_classes": num_classes,
        "synthetic": csbm_size(store.name) is not None if synthetic is None else bool(synthetic),
        "device": str(device),
        "threads": torch.get_num_threads(), "rows": rows, "skipped": skipped,
        "summary": summarize(rows), "floor": floor, "compiled": compiled, "profile": profile, "models": configs,
        "weights": f"random initialisation (seed {options.seed}); latency and memory depend on "
                   "shapes, not weight values",
        "timing": {"warmup": policy.warmup, "repeats": policy.repeats, "min_repeats": policy.min_repeats,
                   "budget_s": policy.budget_s, "clock": "time.perf_counter",
                   "timed": "target ids to device, gather from the store, forward, logits to host"},
        "memory_method": MEMORY_METHOD["cuda" if device.type == "cuda" else "cpu"],
        "bench_wall_s": round(time.perf_counter() - started, 2),
    }


FLOOR_PARTS = ("mlp", "structure-lookup")
"""SA-MLP's two parts timed alone: feature lookup plus MLP, and the structure lookup."""


def floor_check(store: GraphStore, num_classes: int, options: BenchOptions,
                batch_sizes: Sequence[int]) -> list[dict[str, Any]]:
    """SA-MLP against its floor with the three servers timed in turn on the same batches.

    The rows of the record time each cell on its own, minutes apart on a busy machine; here
    SA-MLP, the MLP and the structure lookup take turns (round robin, the order rotating every
    round, ``policy.repeats`` rounds after ``policy.warmup``), so background load hits all three
    alike. Each server gets its own fresh random targets: on a shared batch the first server
    would pay the cache misses of the feature and adjacency rows and the others would find them
    cached. Empty unless ``options.models`` has ``sa-mlp``, ``mlp`` and ``structure-lookup``.

    Returns:
        One entry per batch size: the three medians (ms), ``floor_ms`` (MLP plus structure
        lookup) and ``sa_mlp_over_floor``.
    """
    if not {"sa-mlp", *FLOOR_PARTS} <= set(options.models):
        return []
    servers = {name: build_servers(name, store, num_classes, seed=options.seed,
                                   overrides=options.overrides_for(name))[0] for name in ("sa-mlp", *FLOOR_PARTS)}
    policy = options.policy
    out = []
    names = list(servers)
    for size in batch_sizes:
        rounds = policy.warmup + policy.repeats
        batches = target_batches(store.num_nodes, size, rounds * len(names), options.seed + 2)
        seconds: dict[str, list[float]] = {name: [] for name in servers}
        start = time.perf_counter()
        for index in range(rounds):
            order = names[index % len(names):] + names[:index % len(names)]
            for slot, name in enumerate(order):
                batch = batches[index * len(names) + slot].to(store.device)
                synchronize(store.device)
                t0 = time.perf_counter()
                servers[name](batch).cpu()
                synchronize(store.device)
                if index >= policy.warmup:
                    seconds[name].append(time.perf_counter() - t0)
            if (index >= policy.warmup + policy.min_repeats
                    and time.perf_counter() - start > 3 * policy.budget_s):
                break
        ms = {name: 1e3 * statistics.median(values) for name, values in seconds.items()}
        floor = ms["mlp"] + ms["structure-lookup"]
        out.append({"batch_size": size, "sa_mlp_ms": round(ms["sa-mlp"], 4), "mlp_ms": round(ms["mlp"], 4),
                    "structure_lookup_ms": round(ms["structure-lookup"], 4), "floor_ms": round(floor, 4),
                    "sa_mlp_over_floor": round(ms["sa-mlp"] / floor, 3), "repeats": len(seconds["sa-mlp"]),
                    "method": "interleaved: the three servers in turn, rotating order, each on its own targets"})
    del servers
    return out


def _shape_of(dataset: str, model_name: str, overrides: dict) -> dict[str, Any]:
    if model_name == "structure-lookup":
        config = resolve_config(dataset, "sa-mlp", overrides or {})
        return {"hidden": config.hidden, "adj_norm": config.adj_norm, "self_loop": config.self_loop}
    config = resolve_config(dataset, model_name, overrides or {})
    keys = ["hidden", "num_layers"]
    keys += {"gat": ["heads", "fanouts"], "sage": ["fanouts"], "gcn": ["fanouts"],
             "sa-mlp": ["head_layers", "combine", "adj_norm", "self_loop"],
             "linkx": ["linkx_layers", "adj_norm", "self_loop"]}.get(model_name, [])
    return {key: getattr(config, key) for key in keys}


def _profile_entry(server: Server, store: GraphStore, num_classes: int, options: BenchOptions) -> dict[str, Any]:
    """Op breakdown of the fused path and fused-versus-module medians at the profile batch size."""
    size = options.profile_batch_size
    batches = target_batches(store.num_nodes, size, 40, options.seed + 1)
    module_server = build_servers(server.model_name, store, num_classes, seed=options.seed, fused=False,
                                  overrides=options.overrides_for(server.model_name))[0]
    policy = TimingPolicy(warmup=3, repeats=30, min_repeats=5, budget_s=options.policy.budget_s)
    fused_ms = statistics.median(time_calls(server, batches, store.device, policy)) * 1e3
    module_ms = statistics.median(time_calls(module_server, batches, store.device, policy)) * 1e3
    return {"batch_size": size, "fused_median_ms": round(fused_ms, 4), "module_median_ms": round(module_ms, 4),
            "ops": op_profile(server, batches[:20])}


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ratios per batch size: SA-MLP/MLP, SA-MLP over its floor, and each teacher-gather/SA-MLP (median latencies).

    SA-MLP's floor (``floor_ms``) is the sum of its two parts timed alone: ``mlp`` (feature
    lookup plus MLP) and ``structure-lookup`` (the embedding-bag of the adjacency rows);
    ``sa_mlp_over_floor`` is SA-MLP's median over it and ``sa_mlp_overhead_ms`` the difference.
    """
    by_key = {(r["model"], r["gather"], r["batch_size"]): r["median_ms"] for r in rows}
    out = []
    for size in sorted({r["batch_size"] for r in rows}):
        entry: dict[str, Any] = {"batch_size": size}
        sa = by_key.get(("sa-mlp", "adjacency-rows", size))
        mlp = by_key.get(("mlp", "features", size))
        lookup = by_key.get(("structure-lookup", "adjacency-rows", size))
        if sa and mlp:
            entry["sa_mlp_over_mlp"] = round(sa / mlp, 3)
        if sa and mlp and lookup:
            entry["floor_ms"] = round(mlp + lookup, 4)
            entry["sa_mlp_over_floor"] = round(sa / (mlp + lookup), 3)
            entry["sa_mlp_overhead_ms"] = round(sa - (mlp + lookup), 4)
        for teacher in TEACHER_MODELS:
            for gather in GATHERS[teacher]:
                value = by_key.get((teacher, gather, size))
                if value and sa:
                    entry[f"{teacher}_{gather}_over_sa_mlp"] = round(value / sa, 2)
        out.append(entry)
    return out


# --------------------------------------------------------------------------- records

RESULTS_DIR = Path("results") / "latency"


def record_file(template: str | Path | None, graph: str, num_graphs: int) -> Path:
    """Where the record of ``graph`` goes.

    ``template`` may hold ``{graph}``; a folder (no ``.json`` suffix) gets ``<graph>.json``; a
    plain file name is only allowed for a single graph. Default ``results/latency/<graph>.json``.
    In smoke mode a path inside ``results/`` moves to ``results/smoke/...``.
    """
    from samlp_lite.records import record_path

    if template is None:
        path = RESULTS_DIR / f"{graph}.json"
    else:
        text = str(template)
        if "{graph}" in text:
            path = Path(text.format(graph=graph))
        elif not text.endswith(".json"):
            path = Path(text) / f"{graph}.json"
        elif num_graphs > 1:
            raise ValueError(f"--json {text} names one file but {num_graphs} graphs are benchmarked; "
                             "put {graph} in the name (e.g. results/latency/{graph}.json) or give a folder")
        else:
            path = Path(text)
    return record_path(path)


def run_bench(graphs: Sequence[str | GraphData], options: BenchOptions, *, json_path: str | Path | None = None,
              command: str | None = None, progress: bool = True) -> list[tuple[Path, dict[str, Any]]]:
    """Benchmark each graph, write one latency record per graph (atomically); return (path, record)s.

    Args:
        graphs: names (see :func:`load_bench_graph`) or graphs already loaded.
        options: what to measure.
        json_path: see :func:`record_file`.
        command: the command recorded in the provenance (default: this process's command line).
        progress: show a progress bar.
    """
    from tqdm import tqdm

    check_graph_names([g for g in graphs if isinstance(g, str)])
    check_models(options.models)
    sizes = parse_batch_sizes(options.batch_sizes)
    cells = sum(len(GATHERS[m]) for m in options.models) * len(sizes)
    for item in graphs:
        check_output_path(record_file(json_path, item if isinstance(item, str) else item.name, len(graphs)),
                          "latency record")
    bar = tqdm(total=cells * len(graphs), desc="bench", disable=not progress, unit="cell")
    written = []
    for item in graphs:
        name = item if isinstance(item, str) else item.name
        path = record_file(json_path, name, len(graphs))
        bar.set_postfix_str(f"{name}: loading")
        start = time.perf_counter()
        graph = load_bench_graph(item) if isinstance(item, str) else item

        def step(label: str) -> None:
            bar.set_postfix_str(label)
            bar.update(1)

        body = bench_graph(graph, options, progress=step if progress else None)
        bar.update(cells - len(body["rows"]))
        del graph
        record = {**body, "provenance": provenance(wall_s=time.perf_counter() - start, device=options.device,
                                                   command=command)}
        write_json_atomic(path, record)
        written.append((path, record))
    bar.close()
    return written


SWEEP_DIR = RESULTS_DIR / "sweeps"
DEFAULT_DEGREES: tuple[float, ...] = (5, 10, 20, 50)


def sweep_file(graph: str, template: str | Path | None = None) -> Path:
    """Where the degree sweep of ``graph`` goes (default ``results/latency/sweeps/<graph>-degree.json``; smoke-routed)."""
    from samlp_lite.records import record_path

    base = csbm_name(graph)
    if template is None:
        path = SWEEP_DIR / f"{base}-degree.json"
    else:
        text = str(template)
        path = Path(text.format(graph=base)) if "{graph}" in text else (
            Path(text) if text.endswith(".json") else Path(text) / f"{base}-degree.json")
    return record_path(path)


def run_degree_sweep(graph: str, degrees: Sequence[float], options: BenchOptions, *,
                     json_path: str | Path | None = None, command: str | None = None, progress: bool = True,
                     resume: bool = True) -> tuple[Path, dict[str, Any]]:
    """Benchmark the CSBM graph ``graph`` (e.g. ``csbm-2m``) at each average degree; write one sweep record.

    Each degree's graph is ``csbm-<size>-deg<k>`` (:func:`load_bench_graph`), measured by
    :func:`bench_graph` and stored as a full latency record (with its provenance) in the
    sweep's ``records``. The record is rewritten after every degree, and with ``resume`` a
    re-run skips the degrees already in it (measured with the same models and batch sizes).

    Returns:
        ``(path, record)``.
    """
    from tqdm import tqdm

    size = csbm_size(graph)
    if size is None:
        raise ValueError(f"a degree sweep runs on a synthetic graph csbm-<size>, got {graph!r}")
    check_models(options.models)
    degrees = [float(d) for d in degrees]
    if not degrees or any(d <= 0 for d in degrees):
        raise ValueError(f"degrees must be positive, got {degrees}")
    path = sweep_file(graph, json_path)
    check_output_path(path, "sweep record")
    done: dict[float, dict] = {}
    if resume and path.is_file():
        from samlp_lite.records import read_json

        wanted = (sorted(options.models), [str(b) for b in parse_batch_sizes(options.batch_sizes)])
        for rec in read_json(path).get("records", []):
            if (sorted(rec.get("models", {})), rec.get("batch_sizes")) == wanted and rec.get("requested_degree") in degrees:
                done[float(rec["requested_degree"])] = rec
    started = time.perf_counter()
    record: dict[str, Any] = {"kind": "latency-sweep", "sweep": "avg_degree", "graph": csbm_name(graph),
                              "num_nodes": size, "values": degrees, "records": []}
    bar = tqdm(degrees, desc=f"degree sweep {csbm_name(graph)}", disable=not progress, unit="graph")
    for degree in bar:
        if degree in done:
            record["records"].append(done[degree])
            continue
        name = csbm_name(graph, degree)
        bar.set_postfix_str(f"{name}: building")
        t0 = time.perf_counter()
        body = bench_graph(load_bench_graph(name), options,
                           progress=(lambda label: bar.set_postfix_str(label)) if progress else None)
        body["requested_degree"] = degree
        body["batch_sizes"] = [str(b) for b in parse_batch_sizes(options.batch_sizes)]
        body["provenance"] = provenance(wall_s=time.perf_counter() - t0, device=options.device, command=command)
        record["records"].append(body)
        record["provenance"] = provenance(wall_s=time.perf_counter() - started, device=options.device, command=command)
        write_json_atomic(path, record)
    bar.close()
    record["records"].sort(key=lambda r: r["requested_degree"])
    record["provenance"] = provenance(wall_s=time.perf_counter() - started, device=options.device, command=command)
    write_json_atomic(path, record)
    return path, record


def read_sweep(path: str | Path) -> dict[str, Any]:
    """A ``latency-sweep`` record (see :func:`run_degree_sweep`), its latency records sorted by degree."""
    from samlp_lite.records import read_json

    record = read_json(path)
    if not isinstance(record, dict) or record.get("kind") != "latency-sweep":
        raise ValueError(f"{path} is not a latency-sweep record")
    record["records"] = sorted(record["records"], key=lambda r: r.get("requested_degree", r.get("avg_degree", 0)))
    return record


def sweep_table(sweep: dict[str, Any], batch_size: int = 256) -> list[dict[str, Any]]:
    """Per degree at ``batch_size``: medians (ms) and the ratios the degree sweep is about.

    The student parts (``mlp_ms``, ``structure_lookup_ms``, ``sa_mlp_ms``, ``floor_ms`` and the
    ratios among them) come from the interleaved floor check when the record has one (the
    three servers timed in turn, see :func:`floor_check`), else from the separate cells; the
    teacher's ``sage_full_ms`` and ``sage_full_over_sa_mlp`` from the separate cells (SA-MLP's
    cell there is ``sa_mlp_cell_ms``).
    """
    out = []
    for rec in sweep["records"]:
        cell = {(r["model"], r["gather"]): r["median_ms"] for r in rec["rows"]
                if r["batch_size"] == batch_size and not r.get("all_nodes")}
        turns = next((e for e in rec.get("floor", []) if e["batch_size"] == batch_size), None)
        sa_cell, sage = cell.get(("sa-mlp", "adjacency-rows")), cell.get(("sage", "full"))
        if turns:
            sa, mlp, lookup = turns["sa_mlp_ms"], turns["mlp_ms"], turns["structure_lookup_ms"]
        else:
            sa, mlp = sa_cell, cell.get(("mlp", "features"))
            lookup = cell.get(("structure-lookup", "adjacency-rows"))
        floor = mlp + lookup if mlp and lookup else None
        out.append({"graph": rec["graph"], "avg_degree": rec.get("requested_degree", rec.get("avg_degree")),
                    "measured_degree": rec.get("avg_degree"), "mlp_ms": mlp, "structure_lookup_ms": lookup,
                    "sa_mlp_ms": sa, "floor_ms": floor, "sa_mlp_over_floor": sa / floor if sa and floor else None,
                    "sa_mlp_over_mlp": sa / mlp if sa and mlp else None,
                    "timing": "interleaved" if turns else "separate cells",
                    "sa_mlp_cell_ms": sa_cell, "sage_full_ms": sage, "sage_sampled_ms": cell.get(("sage", "sampled")),
                    "sage_full_over_sa_mlp": sage / sa_cell if sage and sa_cell else None})
    return out


def markdown_table(record: dict[str, Any]) -> str:
    """A markdown table of one record: median (p10-p90) ms and peak memory per model x batch size."""
    sizes = sorted({r["batch_size"] for r in record["rows"]})
    header = "| model | gather | " + " | ".join(
        ("all" if any(r["all_nodes"] and r["batch_size"] == s for r in record["rows"]) else str(s))
        for s in sizes) + " |"
    lines = [header, "|" + "---|" * (len(sizes) + 2)]
    keys = list(dict.fromkeys((r["model"], r["gather"]) for r in record["rows"]))
    cell = {(r["model"], r["gather"], r["batch_size"]): r for r in record["rows"]}
    for model, gather in keys:
        parts = []
        for size in sizes:
            row = cell.get((model, gather, size))
            parts.append("" if row is None else
                         f"{row['median_ms']:.3g} ms ({row['p10_ms']:.3g}-{row['p90_ms']:.3g}); "
                         f"{_mib(row['peak_mem_bytes'])}")
        lines.append(f"| {model} | {gather} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


def _mib(nbytes: int | None) -> str:
    if nbytes is None:
        return "mem n/a"
    return f"{nbytes / 2**20:.3g} MiB"
