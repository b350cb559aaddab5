"""``samlp-lite data``: list the registered datasets and show a graph's statistics."""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from samlp_lite.data.graph import GraphData


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command with its ``list`` and ``info`` sub-commands."""
    parser = subparsers.add_parser("data", help="list datasets, show graph statistics",
                                   description="Datasets: what is registered, what is available "
                                               "offline under the data root ($SAMLP_DATA), statistics.")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True

    list_parser = actions.add_parser("list", help="registered datasets and whether their files are present")
    list_parser.add_argument("--root", type=Path, default=None,
                             help="data root (default $SAMLP_DATA or <cache>/data)")
    list_parser.set_defaults(func=run_list)

    info_parser = actions.add_parser("info", help="statistics of one dataset (or a .pt/.npz graph file)")
    info_parser.add_argument("name", metavar="NAME", help="a registered name or a path to a .pt/.npz file")
    info_parser.add_argument("--json", action="store_true",
                             help="print one JSON object with the statistics keys only")
    info_parser.add_argument("--root", type=Path, default=None,
                             help="data root (default $SAMLP_DATA or <cache>/data)")
    info_parser.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    info_parser.set_defaults(func=run_info)


def run_list(args: argparse.Namespace) -> int:
    """Print one row per registered dataset: name, offline availability, source."""
    from samlp_lite.data import REGISTRY, data_root, dataset_available

    root = Path(args.root).expanduser().resolve() if args.root else data_root()
    print(f"data root: {root}")
    rows = []
    for name, spec in REGISTRY.items():
        if not spec.files:
            status = "synthetic"
        else:
            status = "yes" if dataset_available(name, root) else "no"
        rows.append((name, status, spec.source))
    width = max(len(row[0]) for row in rows)
    print(f"{'name':<{width}}  {'offline':<9}  source")
    for name, status, source in rows:
        print(f"{name:<{width}}  {status:<9}  {source}")
    return 0


def _load(args: argparse.Namespace) -> "GraphData":
    from samlp_lite.data import load_dataset

    return load_dataset(args.name, root=args.root, progress=not args.quiet)


def _json_value(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_info(args: argparse.Namespace) -> int:
    """Load a graph and print its statistics as a table, or as one JSON object with ``--json``."""
    from samlp_lite.data import graph_statistics

    with contextlib.redirect_stdout(sys.stderr):
        graph = _load(args)
        stats = graph_statistics(graph)
    if args.json:
        print(json.dumps({key: _json_value(value) for key, value in stats.items()}))
        return 0
    width = max(len(key) for key in stats)
    print(graph.description)
    for key, value in stats.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"  {key:<{width}}  {shown}")
    return 0
