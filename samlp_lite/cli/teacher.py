"""``samlp-lite teacher``: train (or read from cache) a GNN teacher and report its accuracy."""
from __future__ import annotations

import argparse

from samlp_lite.models.registry import teachers
from samlp_lite.records import SETTINGS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``teacher`` sub-command."""
    parser = subparsers.add_parser("teacher", help="train a GNN teacher (or read its cached soft labels)",
                                   description="Train a GNN teacher on dataset splits, cache its soft "
                                               "labels and print per-split and mean/std accuracy.")
    add_run_arguments(parser)
    parser.add_argument("--teacher", required=True, choices=teachers(), help="teacher GNN")
    parser.set_defaults(func=run)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by ``teacher`` and ``distill``."""
    parser.add_argument("--dataset", required=True, help="dataset name (see `samlp-lite data list`)")
    parser.add_argument("--splits", default=None, help="e.g. 0-9, 0,3,5 or 2 (default: all splits)")
    parser.add_argument("--setting", default="transductive", choices=SETTINGS)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set lr=0.005 (repeatable)")
    parser.add_argument("--json", dest="json_path", default=None, metavar="PATH",
                        help="write the result record (JSON) to PATH")
    parser.add_argument("--no-cache", action="store_true", help="ignore and do not write the teacher cache")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Run the ``teacher`` sub-command."""
    from samlp_lite.runs.experiment import run_teacher

    run_teacher(args.dataset, args.teacher, splits=args.splits, setting=args.setting,
                overrides=args.overrides, json_path=args.json_path, use_cache=not args.no_cache,
                progress=not args.quiet)
    return 0
