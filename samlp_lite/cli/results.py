"""``samlp-lite results``: summarise the result records into tables (see :mod:`samlp_lite.report.tables`)."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``results`` sub-command."""
    parser = subparsers.add_parser(
        "results", help="summarise result records into accuracy tables (Markdown, CSV)",
        description="Read every accuracy record under the results folder (results/smoke/ only with --smoke) "
                    "and print the paper's tables: per setting and teacher, rows are datasets and columns "
                    "the teacher, MLP, GLNN, LINKX, SA-MLP w/o mixing and SA-MLP, as mean ± std (percent) "
                    "over splits. Inductive tables show tran, ind, prod and SA-MLP's isolated ind.")
    parser.add_argument("--root", default="results", metavar="DIR", help="records root (default results)")
    parser.add_argument("--smoke", action="store_true", help="summarise the smoke records (<root>/smoke) instead (default when SAMLP_SMOKE is set)")
    parser.add_argument("--setting", action="append", choices=["transductive", "inductive"], default=None,
                        help="only this setting (repeatable; default both)")
    parser.add_argument("--teacher", action="append", default=None, metavar="TEACHER",
                        help="only the tables of this teacher (repeatable; default every teacher with records)")
    parser.add_argument("--markdown", default=None, metavar="PATH", help="also write the tables to PATH")
    parser.add_argument("--csv", default=None, metavar="PATH",
                        help="write every record's mean/std per metric (long form, percent) to PATH")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``results`` sub-command."""
    from samlp_lite.records import latency_records, load_records, write_text_atomic
    from samlp_lite.report.tables import results_markdown, summary_frame
    from samlp_lite.runtime import smoke_mode

    args.smoke = args.smoke or smoke_mode()
    records = load_records(args.root, smoke=args.smoke)
    settings = args.setting or ["transductive", "inductive"]
    records = [r for r in records if r.get("setting") in settings]
    where = Path(args.root) / ("smoke" if args.smoke else "")
    if not records:
        print(f"no accuracy records under {where}" + ("" if args.smoke else " (smoke records: add --smoke)"))
        return 0
    text = results_markdown(records, settings, args.teacher)
    latency = latency_records(args.root, smoke=args.smoke)
    print(f"{len(records)} accuracy records under {where}"
          + (f"; {len(latency)} latency records (not tabulated here)" if latency else "") + "\n")
    print(text or "no table: no record matches the chosen teachers")
    if args.markdown:
        write_text_atomic(args.markdown, text)
        print(f"tables written to {args.markdown}")
    if args.csv:
        write_text_atomic(args.csv, summary_frame(records).to_csv(index=False))
        print(f"summary written to {args.csv}")
    return 0
