"""``samlp-lite speed``: seconds per training epoch with the fast sparse products and without them."""
from __future__ import annotations

import argparse

from samlp_lite.models.registry import students, teachers


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``speed`` sub-command."""
    parser = subparsers.add_parser(
        "speed", help="time training epochs with and without the fast sparse products",
        description="Train each model for a fixed number of epochs on one split, once with the package's fast "
                    "sparse products (a GNN layer's A @ X, a GAT layer's attention sum, the structure encoder's "
                    "rows @ W_A) and once with PyG's spmm, GATConv and embedding_bag, and print seconds per epoch and the speed-up. Distilled "
                    "students learn from seeded random teacher logits (the cost is the same).")
    parser.add_argument("--dataset", required=True, help="dataset name (see `samlp-lite data list`)")
    parser.add_argument("--models", default="gcn,sage,appnp,sa-mlp",
                        help=f"comma-separated, from {', '.join(teachers() + students())} "
                             "(default gcn,sage,appnp,sa-mlp)")
    parser.add_argument("--teacher", default="sage", choices=teachers(),
                        help="whose tuned student config to use (default sage)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per run (default 20; 2 in smoke mode)")
    parser.add_argument("--split", type=int, default=0, help="split to train on (default 0)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--json", dest="json_path", default=None, metavar="PATH", help="write the speed record to PATH")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``speed`` sub-command."""
    from samlp_lite.cli import UserError
    from samlp_lite.runs.speed import training_speed
    from samlp_lite.runtime import smoke_mode

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    known = set(teachers()) | set(students())
    unknown = [m for m in models if m not in known]
    if unknown or not models:
        raise UserError(f"unknown model(s) {unknown or args.models!r}; choose from {', '.join(sorted(known))}")
    epochs = min(args.epochs, 2) if smoke_mode() else args.epochs
    training_speed(args.dataset, models, teacher=args.teacher, epochs=epochs, split=args.split, device=args.device,
                   json_path=args.json_path)
    return 0
