"""Root conftest: marks every notebook that nbval collects as ``slow``.

A notebook is not a Python test, so it cannot carry ``@pytest.mark.slow``; and
``tests/conftest.py`` is not loaded when only ``notebooks/`` is collected. This hook, at
the repository root, covers both ``pytest`` and ``pytest notebooks``, so that
``pytest -m "not slow"`` leaves the notebooks out.
"""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
