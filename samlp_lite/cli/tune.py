"""``samlp-lite tune``: a small grid search on validation accuracy for a teacher or a student."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tune`` sub-command."""
    parser = subparsers.add_parser("tune", help="grid-search a teacher or student on validation accuracy",
                                   description="Try every combination of the search space in "
                                               "samlp_lite/config/tuning.yaml on a few splits and report the "
                                               "best by mean validation accuracy.")
    parser.add_argument("--dataset", help="dataset to tune on (not needed with --apply)")
    parser.add_argument("--apply", action="store_true",
                        help="write the winners of the tuning records (results/tuning/<teacher> for students, "
                             "results/tuning/teachers for GNNs) into the tuned: section of "
                             "samlp_lite/config/hyperparameters.yaml, and stop")
    parser.add_argument("--model",
                        help="teacher (gcn, sage, gat, appnp), student name, or 'students' for the whole student "
                             "sequence (GLNN, LINKX, SA-MLP without and with mixing)")
    parser.add_argument("--stage", choices=["model", "distillation"], default="model",
                        help="for a distilled student: 'model' searches its own space, 'distillation' the "
                             "temperature and label weight on top of the 'model' winner (default model)")
    parser.add_argument("--teacher", default="sage", help="teacher of a distilled student (default sage)")
    parser.add_argument("--splits", default="0-2", help="splits to average over (default 0-2)")
    parser.add_argument("--min-gain", type=float, default=None, metavar="POINTS",
                        help="validation points by which a candidate must beat the configured values to win "
                             "(default 0.5 for teachers, 0 for students)")
    parser.add_argument("--json", dest="json_path", default=None, metavar="PATH",
                        help="record path (with --model students: the folder, default results/tuning)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``tune`` sub-command."""
    from samlp_lite.cli import UserError
    from samlp_lite.runs.tuning import (
        STUDENT_SEQUENCE,
        tune,
        tune_student,
        tune_students,
        tuned_values,
        write_tuned_section,
    )

    if args.apply:
        values = tuned_values(args.json_path or "results/tuning", args.teacher)
        if not values:
            raise UserError(f"no tuning records under {args.json_path or 'results/tuning'}/{args.teacher}")
        path = write_tuned_section(values)
        print(f"wrote tuned values for {', '.join(sorted(values))} into {path}")
        return 0
    if not args.dataset or not args.model:
        raise UserError("--dataset and --model are required (or --apply)")
    if args.model == "students":
        best = tune_students(args.dataset, args.teacher, splits=args.splits, root=args.json_path or "results/tuning")
        print("best overrides (for the tuned: section of hyperparameters.yaml):")
        for model, overrides in best.items():
            print(f"  {model}: {overrides}")
        return 0
    min_gain = None if args.min_gain is None else args.min_gain / 100
    if args.model in STUDENT_SEQUENCE and args.json_path is None:  # its record goes where --apply reads it
        tune_student(args.dataset, args.model, args.teacher, splits=args.splits, stage=args.stage,
                     min_gain=min_gain)
        return 0
    if args.stage != "model":
        raise UserError(f"--stage {args.stage} is for the distilled students {', '.join(STUDENT_SEQUENCE)} "
                        f"(without --json), whose earlier stage's record it builds on")
    tune(args.dataset, args.model, teacher=args.teacher, splits=args.splits, json_path=args.json_path,
         min_gain=min_gain)
    return 0
