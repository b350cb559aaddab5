"""``samlp-lite book``: build the Jupyter Book (see :mod:`samlp_lite.book`)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``book`` sub-command."""
    parser = subparsers.add_parser(
        "book",
        help="build the Jupyter Book into _build/html",
        description="Build the book with jupyter-book, executing notebooks whose code or whose "
                    "samlp_lite dependencies changed since the last build (others come from "
                    "the execution cache), each kernel with one PyTorch thread unless "
                    "SAMLP_THREADS says otherwise. Prints every chapter's execution time and "
                    "status. A chapter that fails or times out does not stop the build: its "
                    "page keeps the outputs up to the failing cell, the summary names it, and "
                    "the next build runs it again. Fetches a local MathJax copy on first use.",
    )
    parser.add_argument("--smoke", action="store_true",
                        help="execute notebooks with SAMLP_SMOKE=1 into _build/smoke/_build/html, "
                             "with a cache of its own")
    parser.add_argument("--strict", action="store_true",
                        help="fail on any warning, broken reference or failed chapter "
                             "(-W -n --keep-going), as CI does")
    parser.add_argument("--path", default=".", metavar="ROOT",
                        help="the book root, holding _config.yml and _toc.yml (default: .)")
    parser.add_argument("--timeout", type=int, default=None, metavar="SECONDS",
                        help="per-cell execution limit (default: $SAMLP_BOOK_TIMEOUT or "
                             "execute.timeout in _config.yml; -1 for none)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the book; 0 when it was built (non-zero on a failed chapter only with --strict)."""
    from samlp_lite.book import BookError, build_book
    from samlp_lite.cli import UserError

    try:
        return build_book(args.path, smoke=args.smoke, strict=args.strict, timeout=args.timeout)
    except BookError as err:
        raise UserError(str(err)) from err
