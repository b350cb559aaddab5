"""``samlp-lite reproduce``: run the experiment notebook with papermill over a grid (see :mod:`samlp_lite.runs.batch`)."""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``reproduce`` sub-command."""
    from samlp_lite.runs.grid import available_grids

    parser = subparsers.add_parser(
        "reproduce", help="run a grid of experiments (papermill), resuming where it stopped",
        description="Execute notebooks/experiment.ipynb with papermill for every cell of a grid "
                    "(datasets x models x teachers x settings, each over the grid's splits). Each cell "
                    "writes its record under results/ and its executed notebook under runs/<grid>/. "
                    "Cells whose record is complete are skipped, so an interrupted run resumes; a failed "
                    "cell is logged to runs/<grid>/failures.log and the others go on. With --backend ray "
                    "each cell is a Ray task, on a local Ray instance or on the cluster at --address "
                    "(pip install -e '.[cluster]'). Exit code: 0 when every runnable cell is complete, 1 when "
                    "some failed, 130 when interrupted.")
    parser.add_argument("--grid", default="paper", metavar="GRID",
                        help=f"a grid YAML file or a packaged grid: {', '.join(available_grids())} (default paper)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny runs (SAMLP_SMOKE=1): records under results/smoke/, notebooks under runs/smoke/")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="cells run in parallel, each kernel with max(1, cores // N) threads (default 1)")
    parser.add_argument("--backend", choices=["local", "ray"], default="local",
                        help="local: worker processes on this host (default); ray: one Ray task per cell, a GPU "
                             "for the cells of ogbn-arxiv, arxiv-year and ogbn-products (needs the [cluster] extra)")
    parser.add_argument("--address", default=None, metavar="HOST:PORT",
                        help="with --backend ray: the cluster to run on (e.g. HOST:6379 of `ray start --head`); "
                             "default: a local Ray instance with --jobs CPU slots")
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN",
                        help="run only cells whose id matches this shell pattern, e.g. 'cora.*' (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="list the cells and their status; run nothing")
    parser.add_argument("--results", default="results", metavar="DIR", help="records root (default results)")
    parser.add_argument("--runs", default="runs", metavar="DIR", help="executed notebooks root (default runs)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="limit per notebook cell (default: none)")
    parser.add_argument("--notebook", default=None, metavar="PATH",
                        help="the notebook to execute (default notebooks/experiment.ipynb of this checkout)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``reproduce`` sub-command."""
    from pathlib import Path

    from samlp_lite.cli import UserError
    from samlp_lite.runs.batch import (
        EXPERIMENT_NOTEBOOK,
        reproduce_command,
        run_grid,
        threads_per_job,
    )
    from samlp_lite.runs.grid import (
        DONE,
        TO_RUN,
        UNAVAILABLE,
        cell_status,
        expand_grid,
        load_grid,
        select_cells,
    )
    from samlp_lite.runtime import SMOKE_ENV, smoke_mode

    if args.jobs < 1:
        raise UserError("--jobs must be at least 1")
    if args.address and args.backend != "ray":
        raise UserError("--address names a Ray cluster: add --backend ray")
    if args.backend == "ray" and not args.dry_run:
        from samlp_lite.runs.cluster import RayMissing, import_ray

        try:
            import_ray()
        except RayMissing as err:
            raise UserError(str(err)) from None
    if args.smoke:
        os.environ[SMOKE_ENV] = "1"  # for this process (record paths) and every kernel it starts
    smoke = smoke_mode()
    grid = load_grid(args.grid)
    cells = select_cells(expand_grid(grid), args.only)
    if not cells:
        raise UserError(f"no cell of grid {grid.name!r} matches {' or '.join(args.only)}")
    runs_dir = Path(args.runs) / ("smoke" if smoke else "") / grid.name
    notebook = Path(args.notebook) if args.notebook else EXPERIMENT_NOTEBOOK
    if not notebook.is_file():
        raise UserError(f"notebook {notebook} not found: run from a clone of the repository or pass --notebook")

    statuses = [cell_status(cell, args.results) for cell in cells]
    splits = ", ".join(f"{k} {v}" for k, v in grid.splits.items()) if len(grid.splits) > 1 else next(iter(grid.splits.values()))
    counts = Counter(s.state for s in statuses)
    print(f"grid {grid.name} ({grid.path}): {len(cells)} cells; {counts[DONE]} done, {counts[TO_RUN]} to run, "
          f"{counts[UNAVAILABLE]} unavailable here; splits {splits}; smoke mode {'on' if smoke else 'off'}")
    unavailable = sorted({s.cell.dataset for s in statuses if s.state == UNAVAILABLE})
    if unavailable:
        print(f"skipped datasets ({', '.join(unavailable)}): "
              f"{next(s.note for s in statuses if s.state == UNAVAILABLE)}")
    if args.dry_run:
        width = max(len(c.id) for c in cells)
        for status in statuses:
            print(f"  {status.cell.id:<{width}}  {status.state:<11}  {status.note}")
        return 0
    if args.backend == "ray":
        from samlp_lite.runs.cluster import ClusterUnreachable, run_grid_ray
        from samlp_lite.runtime import thread_override

        where = (f"the Ray cluster at {args.address}, {thread_override() or 1} thread(s) per cell" if args.address
                 else f"a local Ray instance, {args.jobs} job(s) x {threads_per_job(args.jobs)} thread(s)")
        print(f"records under {Path(args.results) / ('smoke' if smoke else '')}, executed notebooks under {runs_dir}; "
              f"{where}", flush=True)
        try:
            report = run_grid_ray(cells, runs_dir=runs_dir, results_root=args.results, address=args.address,
                                  jobs=args.jobs, notebook=notebook, timeout=args.timeout,
                                  progress=not args.quiet, command=lambda cell: reproduce_command(args.grid, cell,
                                                                                                   smoke))
        except ClusterUnreachable as err:
            raise UserError(str(err)) from None
    else:
        print(f"records under {Path(args.results) / ('smoke' if smoke else '')}, executed notebooks under {runs_dir}; "
              f"{args.jobs} job(s) x {threads_per_job(args.jobs)} thread(s)", flush=True)
        report = run_grid(cells, runs_dir=runs_dir, results_root=args.results, jobs=args.jobs, notebook=notebook,
                          timeout=args.timeout, progress=not args.quiet,
                          command=lambda cell: reproduce_command(args.grid, cell, smoke))
    print(f"{len(report.done)} run, {len(report.skipped)} already complete (skipped), {len(report.failed)} failed, "
          f"{len(report.unavailable)} unavailable here")
    if report.failed:
        print(f"failed cells (details in {runs_dir / 'failures.log'}):", file=sys.stderr)
        for cell_id, reason in report.failed.items():
            print(f"  {cell_id}: {reason}", file=sys.stderr)
    if report.interrupted:
        return 130
    return 1 if report.failed else 0
