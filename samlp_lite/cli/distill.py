"""``samlp-lite distill``: train a student (MLP, GLNN, LINKX, SA-MLP) and report its accuracy."""
from __future__ import annotations

import argparse

from samlp_lite.cli.teacher import add_run_arguments
from samlp_lite.models.registry import students, teachers


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``distill`` sub-command."""
    parser = subparsers.add_parser(
        "distill", help="train a student from cached teacher soft labels",
        description="Train a student on dataset splits from the teacher's cached soft labels (training the "
                    "teacher first if absent) and print per-split and mean/std accuracy.")
    add_run_arguments(parser)
    parser.add_argument("--teacher", default="sage", choices=teachers(), help="teacher GNN (default sage)")
    parser.add_argument("--student", required=True, metavar="STUDENT",
                        help=f"one of {', '.join(students())}, or an ablation sa-mlp-... defined in the YAML")
    parser.add_argument("--teacher-set", dest="teacher_overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a key of the teacher's config (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``distill`` sub-command."""
    from samlp_lite.runs.experiment import run_student

    run_student(args.dataset, args.student, args.teacher, splits=args.splits, setting=args.setting,
                overrides=args.overrides, teacher_overrides=args.teacher_overrides, json_path=args.json_path,
                use_cache=not args.no_cache, progress=not args.quiet)
    return 0
