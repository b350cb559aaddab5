#!/usr/bin/env python3
"""Fail when a committed notebook has outputs or execution counts, or lacks exactly one parameters cell."""
from __future__ import annotations

import json
import subprocess
import sys


def problems(path: str) -> list[str]:
    """What is wrong with one notebook file."""
    notebook = json.load(open(path))
    found = []
    cells = notebook.get("cells", [])
    if any(cell.get("outputs") or cell.get("execution_count") for cell in cells):
        found.append("has outputs or execution counts (clear them before committing)")
    tagged = sum("parameters" in cell.get("metadata", {}).get("tags", []) for cell in cells)
    if tagged != 1:
        found.append(f"has {tagged} cells tagged 'parameters' (papermill needs exactly one)")
    return found


def main() -> int:
    """Check every tracked ``.ipynb``; print the problems and return 1 if any."""
    paths = subprocess.run(["git", "ls-files", "*.ipynb"], capture_output=True, text=True, check=True).stdout.split()
    failures = [f"{path}: {issue}" for path in paths for issue in problems(path)]
    print("\n".join(failures) or f"{len(paths)} notebooks clean")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
