"""``samlp-lite bench``: serving latency and memory of teachers and students."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` sub-command."""
    from samlp_lite.serve import DEFAULT_GRAPHS, MODELS

    parser = subparsers.add_parser(
        "bench", help="inference latency and memory benchmark (teachers vs students)",
        description="Time serving a batch of target nodes end to end (gathering from the stored graph "
                    "plus the forward pass) for GNN teachers (full and sampled neighbourhoods), MLP, "
                    "LINKX and SA-MLP; write one latency record per graph.")
    parser.add_argument("--graphs", type=_csv, default=list(DEFAULT_GRAPHS),
                        help="comma-separated: cora, citeseer, chameleon, squirrel and csbm-<size> "
                             "(e.g. csbm-10k, csbm-2m); default: %(default)s")
    parser.add_argument("--models", type=_csv, default=list(MODELS),
                        help="comma-separated subset of %(default)s")
    parser.add_argument("--batch-sizes", type=_csv, default=["1", "256", "4096", "all"],
                        help="comma-separated target-node counts and/or 'all' (default 1,256,4096,all)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per cell at most (default 20)")
    parser.add_argument("--min-repeats", type=int, default=3,
                        help="timed calls per cell at least, unless one call exceeds --budget (default 3)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per cell, the first one "
                        "measuring memory (default 3)")
    parser.add_argument("--budget", type=float, default=3.0,
                        help="seconds of timed calls per cell before stopping early (default 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads, fixed for the run and recorded (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model config key for every model, e.g. --set hidden=128")
    parser.add_argument("--json", dest="json_path", default=None, metavar="PATH",
                        help="record path; may contain {graph}, or be a folder "
                             "(default results/latency/{graph}.json)")
    parser.add_argument("--degrees", type=_csv, default=None, metavar="K,K,...",
                        help="degree sweep: benchmark each csbm-<size> graph at these average degrees "
                             "(e.g. 5,10,20,50; graphs csbm-<size>-deg<k>) and write one latency-sweep record "
                             "per size (default results/latency/sweeps/csbm-<size>-degree.json; --json sets it)")
    parser.add_argument("--model-set", dest="model_overrides", action="append", default=[], metavar="MODEL:KEY=VALUE",
                        help="override a config key for one model, e.g. --model-set sage:hidden=256")
    parser.add_argument("--compile", dest="compile_modes", type=_csv, default=[], metavar="MODE,...",
                        help="also time mlp and sa-mlp with torch.compile / CUDA graphs, in these modes: "
                             "eager, padded, compile, cudagraphs (meant for a GPU; default off)")
    parser.add_argument("--plot", default=None, metavar="PATH",
                        help="write the latency-vs-size figure to PATH and the speed-up figure to "
                             "PATH with '-speedup' before the suffix (PNG, PDF or SVG)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no tables")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``bench`` sub-command."""
    import torch

    from samlp_lite.cli import UserError
    from samlp_lite.config import parse_overrides
    from samlp_lite.records import record_path
    from samlp_lite.runtime import pick_device, smoke_mode
    from samlp_lite.serve.bench import (
        SMOKE_GRAPH,
        BenchOptions,
        check_graph_names,
        markdown_table,
        parse_batch_sizes,
        run_bench,
    )
    from samlp_lite.serve.measure import TimingPolicy
    from samlp_lite.serve.compiled import check_compile_modes
    from samlp_lite.serve.students import check_models

    models = check_models(args.models)
    graphs = check_graph_names(args.graphs)
    batch_sizes = parse_batch_sizes(args.batch_sizes)
    if args.threads < 1 or args.repeats < 1 or args.min_repeats < 1 or args.warmup < 1 or args.budget <= 0:
        raise UserError("--threads, --repeats, --min-repeats and --warmup must be >= 1 and --budget > 0")
    try:
        device = pick_device(args.device)
    except RuntimeError as err:
        raise UserError(str(err)) from None
    policy = TimingPolicy(warmup=args.warmup, repeats=args.repeats,
                          min_repeats=min(args.min_repeats, args.repeats), budget_s=args.budget)
    if smoke_mode():
        print(f"smoke mode: measuring {SMOKE_GRAPH} instead of {', '.join(graphs)}, with 2 timed repeats "
              f"(not {args.repeats}) and a 0.5 s budget", file=sys.stderr)
        graphs, policy = [SMOKE_GRAPH], TimingPolicy(warmup=1, repeats=2, min_repeats=2, budget_s=0.5)
    torch.set_num_threads(args.threads)
    model_overrides: dict[str, dict] = {}
    for item in args.model_overrides:
        model, sep, assignment = item.partition(":")
        if not sep or model not in models:
            raise UserError(f"--model-set {item!r}: write MODEL:KEY=VALUE with MODEL one of {models}")
        model_overrides.setdefault(model, {}).update(parse_overrides([assignment]))
    options = BenchOptions(models=models, batch_sizes=batch_sizes, policy=policy, device=str(device),
                           overrides=parse_overrides(args.overrides), model_overrides=model_overrides,
                           compile_modes=check_compile_modes(args.compile_modes))
    if args.degrees:
        return _run_sweeps(graphs, args, options)
    written = run_bench(graphs, options, json_path=args.json_path, progress=not args.quiet)
    for path, record in written:
        if not args.quiet:
            print(f"\n{record['graph']} ({record['num_nodes']} nodes, {record['device']}, "
                  f"{record['threads']} thread(s)): median ms (p10-p90); peak memory")
            print(markdown_table(record))
            if record.get("compiled"):
                print("\ncompiled serving: median ms (first call s)")
                for row in record["compiled"]:
                    cell = row.get("error") or f"{row['median_ms']:.4g} ms ({row['first_call_s']:.3g} s)"
                    print(f"  {row['model']:>7} {row['mode']:>10} B={row['batch_size']}: {cell}")
        print(f"wrote {path}")
    if args.plot:
        plot = record_path(Path(args.plot))
        _write_plots([record for _, record in written], plot)
        if not args.quiet:
            print(f"wrote {plot.with_suffix(plot.suffix or '.png')} (and its -speedup figure when a "
                  "teacher was benchmarked)")
    return 0


def _run_sweeps(graphs: list[str], args: argparse.Namespace, options) -> int:
    from samlp_lite.cli import UserError
    from samlp_lite.records import record_path
    from samlp_lite.serve.bench import csbm_size, run_degree_sweep, sweep_table

    try:
        degrees = [float(d) for d in args.degrees]
    except ValueError:
        raise UserError(f"--degrees takes numbers, got {','.join(args.degrees)}") from None
    if any(csbm_size(g) is None for g in graphs):
        raise UserError("--degrees sweeps synthetic graphs only: give --graphs csbm-<size>, e.g. csbm-2m")
    sizes = [b for b in options.batch_sizes if b != "all"]
    if not sizes:
        raise UserError("--degrees needs at least one batch size that is not 'all'")
    batch = 256 if 256 in sizes else sizes[0]
    sweeps = []
    for graph in graphs:
        path, sweep = run_degree_sweep(graph, degrees, options, json_path=args.json_path, progress=not args.quiet)
        sweeps.append(sweep)
        if not args.quiet:
            print(f"\n{sweep['graph']}: batch {batch}, median ms by average degree")
            print("| degree | MLP | structure lookup | SA-MLP | floor | SA-MLP/floor | SA-MLP/MLP | SAGE full | SAGE/SA-MLP |")
            print("|---|---|---|---|---|---|---|---|---|")
            for row in sweep_table(sweep, batch):
                cells = [row[k] for k in ("mlp_ms", "structure_lookup_ms", "sa_mlp_ms", "floor_ms",
                                          "sa_mlp_over_floor", "sa_mlp_over_mlp", "sage_full_ms", "sage_full_over_sa_mlp")]
                print(f"| {row['avg_degree']:g} | " + " | ".join("–" if c is None else f"{c:.3g}" for c in cells) + " |")
        print(f"wrote {path}")
    if args.plot:
        from samlp_lite.report.plotting.latency import plot_degree_sweep

        plot = record_path(Path(args.plot))
        plot = plot if plot.suffix else plot.with_suffix(".png")
        plot.parent.mkdir(parents=True, exist_ok=True)
        plot_degree_sweep(sweeps[0], batch_size=batch).savefig(plot, dpi=120)
        print(f"wrote {plot}")
    return 0


def _speedup_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}-speedup{path.suffix or '.png'}")


def _write_plots(records: list[dict], path: Path) -> None:
    from samlp_lite.report.plotting.latency import plot_latency_scaling, plot_speedup
    from samlp_lite.serve.students import TEACHER_MODELS

    path = path if path.suffix else path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [r for rec in records for r in rec["rows"]]
    batch = 256 if any(r["batch_size"] == 256 and not r["all_nodes"] for r in rows) else "all"
    plot_latency_scaling(records, batch_size=batch).savefig(path, dpi=120)
    teachers = [m for m in TEACHER_MODELS if any(r["model"] == m for r in rows)]
    if teachers:
        plot_speedup(records, batch_size=batch, reference=(teachers[0], "full")).savefig(
            _speedup_path(path), dpi=120)
