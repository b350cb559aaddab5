"""``samlp-lite tune``: the tuning protocol (same budget for every model, validation only)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tune`` sub-command."""
    parser = subparsers.add_parser(
        "tune", help="tune a model (or all) by the protocol in config/tuning.yaml",
        description="Draw the model's budget of configurations from its space in samlp_lite/config/tuning.yaml, "
                    "train each on the tuning splits and keep the best by mean validation metric. Records go "
                    "to results/tuning/<dataset>/[<teacher>/]<model>.json; --apply writes the winners into the "
                    "tuned: section of hyperparameters.yaml. Interrupted searches resume: finished configurations are "
                    "checkpointed next to the record (<model>.json.partial.json), and with --model all a model "
                    "whose record exists is skipped.")
    parser.add_argument("--dataset", help="dataset (registry name or .pt/.npz file); not needed with --apply")
    parser.add_argument("--model", help="a teacher (gcn, sage, gat, appnp), a student (mlp, glnn, linkx, sa-mlp; "
                                        "sa-mlp also tunes sa-mlp-nomix, paired), or 'all'")
    parser.add_argument("--teacher", action="append", default=None,
                        help="teacher of a distilled student (repeatable; default sage, and with --model all "
                             "both sage and gcn)")
    parser.add_argument("--splits", default=None, help="tuning splits (default the protocol's)")
    parser.add_argument("--json", dest="json_path", default=None, metavar="PATH", help="record path (one model)")
    parser.add_argument("--apply", action="store_true",
                        help="write the winners of every tuning record into hyperparameters.yaml, and stop")
    parser.add_argument("--budgets", action="store_true", help="print the budget table of the protocol, and stop")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``tune`` sub-command."""
    from samlp_lite.cli import UserError
    from samlp_lite.runs.tuning import budget_table, tune, tune_all, tuned_values, write_tuned_section

    if args.budgets:
        for row in budget_table():
            print(f"{row['model']:<13} budget {row['budget']:>3} of {row['grid']:>4}  knobs: {row['knobs']}"
                  + (f"  ({row['note']})" if row["note"] else ""))
        return 0
    if args.apply:
        values = tuned_values()
        if not values:
            raise UserError("no tuning records under results/tuning; run `samlp-lite tune --dataset D --model all`")
        print(f"wrote tuned values for {', '.join(sorted(values))} into {write_tuned_section(values)}")
        return 0
    if not args.dataset or not args.model:
        raise UserError("--dataset and --model are required (or --apply, --budgets)")
    if args.model == "all":
        tune_all(args.dataset, teachers=args.teacher or ("sage", "gcn"), splits=args.splits)
        return 0
    for teacher in args.teacher or ["sage"]:
        tune(args.dataset, args.model, teacher=teacher, splits=args.splits, json_path=args.json_path)
    return 0
