"""Datasets, splits and graph statistics (METHOD.md sections 4 and 5).

Every graph, registered or read from a file or generated, is normalised the same way
(undirected, coalesced, no self-loops, float32 features, long labels) and carries its splits.
"""
from .files import load_graph_file
from .graph import GraphData, Split, make_graph, normalize_graph, splits_from_masks
from .inductive import InductiveSplit, inductive_split
from .loaders import ChecksumError, even_quantile_labels
from .paths import DatasetNotAvailableError, data_root
from .registry import REGISTRY, DatasetSpec, dataset_available, dataset_spec, list_datasets, load_dataset
from .splits import random_splits
from .stats import STATISTICS_KEYS, graph_statistics
from .synthetic import make_csbm

__all__ = [
    "ChecksumError", "DatasetNotAvailableError", "DatasetSpec", "GraphData", "InductiveSplit",
    "REGISTRY", "STATISTICS_KEYS", "Split", "data_root", "dataset_available", "dataset_spec",
    "even_quantile_labels", "graph_statistics", "inductive_split", "list_datasets",
    "load_dataset", "load_graph_file", "make_csbm", "make_graph", "normalize_graph",
    "random_splits", "splits_from_masks",
]
