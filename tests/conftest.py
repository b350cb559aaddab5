"""Shared fixtures: small synthetic graphs and a throw-away cache folder."""
from __future__ import annotations

import pytest
import torch

from samlp_lite.data import GraphData, make_csbm, make_graph, random_splits


@pytest.fixture
def tiny_graph() -> GraphData:
    """5 nodes, path 0-1-2-3 plus isolated node 4; labels [0, 0, 1, 1, 0]; rows 1 and 3 repeat row 0."""
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    y = torch.tensor([0, 0, 1, 1, 0])
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    return make_graph("tiny", x, y, edge_index, random_splits(y, num_splits=2), source="hand-built")


@pytest.fixture(scope="session")
def small_csbm() -> GraphData:
    """A 400-node homophilous CSBM with 3 splits (do not modify it in tests)."""
    return make_csbm(num_nodes=400, num_classes=4, avg_degree=6, num_features=8, num_splits=3, seed=7)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """Point ``SAMLP_CACHE`` at an empty temporary folder and return it."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SAMLP_CACHE", str(cache))
    return cache
