"""Datasets, splits, features, adjacency rows and neighbour sampling: the graphs every model reads.

Stage 1 of the pipeline (with :mod:`samlp_lite.config`, :mod:`samlp_lite.runtime` and
:mod:`samlp_lite.records` below it). Every graph, registered or read from a file or generated, is normalised the same way
(undirected, coalesced, no self-loops, float32 features, long labels) and carries its splits.
"""
from samlp_lite.data.files import load_graph_file
from samlp_lite.data.graph import (
    GraphData,
    Split,
    make_graph,
    normalize_graph,
    splits_from_masks,
)
from samlp_lite.data.inductive_split import InductiveSplit, inductive_split
from samlp_lite.data.loaders import ChecksumError, even_quantile_labels
from samlp_lite.data.paths import DatasetNotAvailableError, data_root
from samlp_lite.data.registry import (
    REGISTRY,
    DatasetSpec,
    dataset_available,
    dataset_spec,
    is_graph_file,
    list_datasets,
    load_dataset,
)
from samlp_lite.data.splits import random_splits
from samlp_lite.data.stats import STATISTICS_KEYS, graph_statistics
from samlp_lite.data.synthetic import make_csbm

__all__ = [
    "ChecksumError", "DatasetNotAvailableError", "DatasetSpec", "GraphData", "InductiveSplit",
    "REGISTRY", "STATISTICS_KEYS", "Split", "data_root", "dataset_available", "dataset_spec",
    "even_quantile_labels", "graph_statistics", "inductive_split", "is_graph_file", "list_datasets",
    "load_dataset", "load_graph_file", "make_csbm", "make_graph", "normalize_graph",
    "random_splits", "splits_from_masks",
]
