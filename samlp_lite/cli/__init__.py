"""The ``samlp-lite`` command line: one sub-command per module of this package."""
from __future__ import annotations

import argparse
import importlib
import sys

# Each module defines ``register(subparsers)``, which adds its sub-command and sets
# ``func`` on the parser to a callable taking the parsed arguments and returning an exit code.
COMMAND_MODULES = ["data", "teacher", "distill", "advise", "tune", "book", "bench", "speed", "reproduce", "results", "scale"]


_TINY = "split 0 only, 5 epochs (the smoke: section of hyperparameters.yaml), records under results/smoke/"
SMOKE_NOTES = {
    "teacher": _TINY, "distill": _TINY, "tune": _TINY, "advise": _TINY, "reproduce": "tiny cells, " + _TINY,
    "bench": "one tiny graph (csbm-2k) instead of the graphs asked for, 2 timed repeats, records under "
             "results/smoke/",
    "speed": "at most 2 epochs per run",
    "results": "tables of the smoke records (results/smoke/)",
    "book": "a tiny build under _build/smoke/",
}
"""What smoke mode changes, per command, as printed when it is on."""


class UserError(Exception):
    """An error caused by the user's input; printed as one line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="samlp-lite",
        description="SA-MLP: distil GNN teachers into structure-aware MLP students.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``samlp-lite`` console script.

    ``SAMLP_THREADS`` fixes PyTorch's CPU thread count (on a small or shared machine, 1 is
    often fastest; each run records the count it used).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    from samlp_lite.runtime import apply_threads, smoke_mode

    try:
        apply_threads()
    except ValueError as err:
        print(f"samlp-lite: error: {err}", file=sys.stderr)
        return 2
    if smoke_mode() and args.command in SMOKE_NOTES:
        print(f"samlp-lite {args.command}: smoke mode is on (SAMLP_SMOKE): {SMOKE_NOTES[args.command]}; "
              "unset SAMLP_SMOKE for real results", file=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"\nsamlp-lite {args.command}: interrupted; re-run the same command to resume "
              "(finished splits and cells are kept)", file=sys.stderr)
        return 130
    except (UserError, FileNotFoundError, KeyError, ValueError, PermissionError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"samlp-lite {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
