"""``samlp-lite scale``: a products-sized graph end to end on one machine, in resumable stages."""
from __future__ import annotations

import argparse
import sys

STAGE_NAMES = "graph,teacher,soft-labels,glnn,sa-mlp,serve"
"""The stages of :mod:`samlp_lite.runs.scale_local` (kept here so that ``--help`` does not import torch)."""


def _csv_ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``scale`` sub-command (defaults of unset options: :class:`samlp_lite.runs.scale_local.ScaleOptions`)."""
    parser = subparsers.add_parser(
        "scale", help="a products-sized graph end to end: teacher, soft labels, students, serving (resumable)",
        description="Train a GraphSAGE teacher on sampled mini-batches, compute every node's soft labels by "
                    "layer-wise full-neighbour inference, train GLNN and SA-MLP (sparse W_A gradients, a sparse Adam) on "
                    "mini-batches, and time serving, on a graph stored on disk; each stage in its own process "
                    "(its peak RSS measured), checkpointed per epoch, so re-running the same command resumes. "
                    "Writes a scale record (default results/scale/<graph>.json).")
    parser.add_argument("--graph", default="products-synthetic",
                        help="products-synthetic (ogbn-products' size and shape, synthetic), "
                             "products-synthetic-<size> (e.g. -100k), or a dataset: ogbn-products, ogbn-arxiv, "
                             "cora... (default %(default)s)")
    parser.add_argument("--nodes", type=int, default=None, help="nodes of a synthetic graph (default from --graph)")
    options = [("--teacher-epochs", int, "teacher epochs (default 3)"),
               ("--teacher-batch-size", int, "teacher seed nodes per batch (default 1024)"),
               ("--teacher-hidden", int, "teacher hidden size (default 256)"),
               ("--teacher-lr", float, "teacher learning rate (default 0.005)"),
               ("--student-epochs", int, "epochs per student (default 4)"),
               ("--student-batch-size", int, "student nodes per batch (default 4096)"),
               ("--student-hidden", int, "student hidden size (default 128)"),
               ("--student-lr", float, "students' Adam learning rate (default 0.01)"),
               ("--sparse-lr", float, "the sparse Adam's learning rate for SA-MLP's structure table (default 0.01)"),
               ("--student-dropout", float, "students' dropout (default 0.2)")]
    for flag, kind, text in options:
        parser.add_argument(flag, type=kind, default=None, help=text)
    parser.add_argument("--adj-norm", choices=("row", "none", "sym"), default=None,
                        help="SA-MLP's adjacency rows: none (the sum of the neighbours' rows, default), row (their mean), sym")
    parser.add_argument("--fanouts", type=_csv_ints, default=None,
                        help="sampled neighbours per layer of the teacher (default 10,5)")
    parser.add_argument("--serve-batch-sizes", type=_csv_ints, default=None,
                        help="target-node counts of the serving benchmark (default 1,256)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu",
                        help="where the models run: cpu (default), cuda or auto; sampling and the stored graph stay "
                             "on the host")
    parser.add_argument("--stages", default=None, metavar="S,S,...",
                        help=f"run only these of {STAGE_NAMES} (earlier ones must be done)")
    parser.add_argument("--fresh", action="store_true", help="forget a previous run of this graph first "
                        "(the stored graph is kept when it matches); without it, changed options re-run only "
                        "the stages they touch")
    parser.add_argument("--workdir", default=None, help="work folder (default $SAMLP_CACHE/scale/<graph>)")
    parser.add_argument("--json", dest="json_path", default=None, metavar="PATH",
                        help="record path (default results/scale/<graph>.json)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the stages in this process (peak RSS is then the process's, not each stage's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``scale`` sub-command."""
    from samlp_lite.cli import UserError
    from samlp_lite.records import check_output_path, current_command, record_path
    from samlp_lite.runs.scale_local import ScaleOptions, default_record, format_table, run_scale
    from samlp_lite.runtime import smoke_mode

    values = {key: value for key, value in dict(
        num_nodes=args.nodes, teacher_epochs=args.teacher_epochs, teacher_batch_size=args.teacher_batch_size,
        teacher_hidden=args.teacher_hidden, teacher_lr=args.teacher_lr, student_epochs=args.student_epochs,
        student_batch_size=args.student_batch_size, student_hidden=args.student_hidden, student_lr=args.student_lr,
        sparse_lr=args.sparse_lr, student_dropout=args.student_dropout, adj_norm=args.adj_norm, fanouts=tuple(args.fanouts) if args.fanouts else None,
        serve_batch_sizes=tuple(args.serve_batch_sizes) if args.serve_batch_sizes else None).items()
        if value is not None}
    values.update(graph=args.graph, seed=args.seed, device=args.device)
    if smoke_mode():
        print("smoke mode: a 2,000-node synthetic products graph, one epoch per stage, small models, records "
              "under results/smoke/", file=sys.stderr)
        values.update(graph="products-synthetic-2k", teacher_epochs=1, student_epochs=1, teacher_batch_size=256,
                      student_batch_size=512, teacher_hidden=32, student_hidden=32)
        values.pop("num_nodes", None)
    try:
        options = ScaleOptions(**values)
    except ValueError as err:
        raise UserError(str(err)) from None
    stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None
    record = record_path(args.json_path) if args.json_path else default_record(options.graph)
    check_output_path(record, "scale record")
    result = run_scale(options, workdir=args.workdir, record=record, stages=stages, fresh=args.fresh,
                       in_process=args.in_process, progress=not args.quiet, command=current_command())
    if result is None:
        print("scale: the stages asked for are done; run without --stages to finish the others")
        return 0
    print(format_table(result))
    print(f"wrote {record}")
    return 0
