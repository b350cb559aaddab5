"""``samlp-lite advise``: on a new graph, which teacher to distil from and how much to trust it."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``advise`` sub-command."""
    parser = subparsers.add_parser(
        "advise", help="choose a teacher and label weight for a new graph on validation",
        description="Train an MLP and the candidate teachers on one split, keep the best teacher, and try a few "
                    "label weights for the student (plus an MLP-like fallback), all on validation; print the "
                    "distill command that applies the choice. Meant for graphs without tuned values.")
    parser.add_argument("--dataset", required=True, help="registry name or a .pt/.npz graph file")
    parser.add_argument("--student", default="sa-mlp", help="the distilled student (default sa-mlp)")
    parser.add_argument("--teacher", action="append", default=None, help="candidate teacher (repeatable; default sage, gcn)")
    parser.add_argument("--split", type=int, default=0, help="the split whose validation nodes decide (default 0)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config change for every run, e.g. --set max_epochs=200")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``advise`` sub-command."""
    from samlp_lite.config import parse_overrides
    from samlp_lite.models.registry import model_spec
    from samlp_lite.runs.advice import advise

    if not model_spec(args.student, "student").uses_teacher:
        raise ValueError(f"{args.student} does not learn from a teacher; advise is for distilled students")
    advise(args.dataset, args.student, teachers=args.teacher or ("sage", "gcn"), split=args.split,
           overrides=parse_overrides(args.overrides))
    return 0
