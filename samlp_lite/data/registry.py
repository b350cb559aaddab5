"""The benchmark datasets by name: where their files live and how each one is loaded."""
from __future__ import annotations

import difflib
import socket
import sys
import time
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from samlp_lite.data import loaders
from samlp_lite.data.graph import GraphData, make_graph
from samlp_lite.data.loaders import ChecksumError
from samlp_lite.data.paths import (
    CHECKSUMS_FILE,
    DatasetNotAvailableError,
    corrupt_files,
    mirror_files,
    missing_files,
    network_available,
    not_available_message,
    resolve_root,
    work_root,
)
from samlp_lite.data.splits import random_splits
from samlp_lite.data.synthetic import make_csbm

GEOM_GCN_SPLITS = 10


@dataclass(frozen=True)
class DatasetSpec:
    """One registry entry.

    Attributes:
        name: registry name, e.g. ``"cora"``.
        source: one line naming the origin and the splits, for listings and descriptions.
        files: raw files the loader needs, relative to the data root; empty for synthetic graphs.
        load: ``load(spec, root, work, progress) -> GraphData``; ``work`` is the writable
            folder (``paths.work_root``) holding the raw files or their links.
        url: a download URL; its host is probed before any download is tried.
        hint: extra advice printed when files are missing.
        metric: what is reported and what selects models: ``accuracy``, or ``roc_auc`` for the
            binary, imbalanced graphs (as in the paper that made them).
    """

    name: str
    source: str
    files: tuple[str, ...]
    load: Callable[["DatasetSpec", Path, Path, bool], GraphData]
    url: str = ""
    hint: str = ""
    metric: str = "accuracy"


def _planetoid_files(pyg_name: str) -> tuple[str, ...]:
    folder = f"pyg/{pyg_name}/geom-gcn/raw"
    lower = pyg_name.lower()
    names = [f"ind.{lower}.{part}" for part in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")]
    names += [f"{lower}_split_0.6_0.2_{i}.npz" for i in range(GEOM_GCN_SPLITS)]
    return tuple(f"{folder}/{name}" for name in names)


def _wikipedia_files(name: str) -> tuple[str, ...]:
    names = ["out1_node_feature_label.txt", "out1_graph_edges.txt"]
    names += [f"{name}_split_0.6_0.2_{i}.npz" for i in range(GEOM_GCN_SPLITS)]
    return tuple(f"pyg/{name}/geom_gcn/raw/{file}" for file in names)


def _ogb_files(name: str, split_type: str, extra_node_files: tuple[str, ...] = ()) -> tuple[str, ...]:
    folder = "ogb/" + name.replace("-", "_")
    raw = ("edge", "node-feat", "node-label", "num-node-list", "num-edge-list") + extra_node_files
    return ((f"{folder}/RELEASE_v1.txt",) + tuple(f"{folder}/raw/{file}.csv.gz" for file in raw)
            + tuple(f"{folder}/split/{split_type}/{part}.csv.gz" for part in ("train", "valid", "test")))


def _load_planetoid(pyg_name: str):
    def load(spec: DatasetSpec, root: Path, work: Path, progress: bool) -> GraphData:
        x, y, edge_index, splits = loaders.load_planetoid(work, pyg_name, progress)
        return make_graph(spec.name, x, y, edge_index, splits, source=spec.source)
    return load


def _load_wikipedia(spec: DatasetSpec, root: Path, work: Path, progress: bool) -> GraphData:
    x, y, edge_index, splits = loaders.load_wikipedia(work, spec.name, progress)
    return make_graph(spec.name, x, y, edge_index, splits, source=spec.source)


def _load_heterophilous(pyg_name: str):
    def load(spec: DatasetSpec, root: Path, work: Path, progress: bool) -> GraphData:
        x, y, edge_index, splits = loaders.load_heterophilous(work, pyg_name, progress)
        return make_graph(spec.name, x, y, edge_index, splits, source=spec.source, metric=spec.metric)
    return load


def _load_filtered(spec: DatasetSpec, root: Path, work: Path, progress: bool) -> GraphData:
    x, y, edge_index, splits = loaders.load_platonov_npz(work / spec.files[0])
    return make_graph(spec.name, x, y, edge_index, splits, source=spec.source, metric=spec.metric)


def _load_amazon(pyg_name: str):
    def load(spec: DatasetSpec, root: Path, work: Path, progress: bool) -> GraphData:
        x, y, edge_index = loaders.load_amazon(work, pyg_name, progress)
        splits = random_splits(y, num_splits=10, train=0.48, val=0.32, seed=0)
        return make_graph(spec.name, x, y, edge_index, splits, source=spec.source)
    return load


def _load_ogb(spec: DatasetSpec, root: Path, work: Path, progress: bool) -> GraphData:
    data, split_idx = loaders.load_ogb(work, spec.name, progress)
    return make_graph(spec.name, data.x, data.y, data.edge_index, [loaders.ogb_split(split_idx)],
                      source=spec.source, num_nodes=int(data.num_nodes))


def _load_arxiv_year(spec: DatasetSpec, root: Path, work: Path, progress: bool) -> GraphData:
    data, _ = loaders.load_ogb(work, "ogbn-arxiv", progress)
    y = loaders.even_quantile_labels(data.node_year.view(-1).numpy(), 5)
    splits_path = loaders.fetch_linkx_splits(root, work, progress)
    splits = loaders.load_linkx_splits(splits_path, int(data.num_nodes))
    return make_graph(spec.name, data.x, y, data.edge_index, splits, source=spec.source,
                      num_classes=5, num_nodes=int(data.num_nodes))


def _load_csbm(homophily: float):
    def load(spec: DatasetSpec, root: Path, work: Path, progress: bool) -> GraphData:
        return make_csbm(homophily=homophily, name=spec.name)
    return load


_GEOM = "ten Geom-GCN 48/32/20 splits"
_OGB_HINT = ("Download {url}, unzip it and rename the extracted folder '{zip_dir}' to '{dir}' "
             "(OGB's layout), or run once with internet access.")
_SPECS = [
    DatasetSpec("cora", f"PyG Planetoid('Cora', split='geom-gcn'); {_GEOM}", _planetoid_files("Cora"),
                _load_planetoid("Cora"), url="https://github.com/kimiyoung/planetoid/raw/master/data"),
    DatasetSpec("citeseer", f"PyG Planetoid('CiteSeer', split='geom-gcn'); {_GEOM}", _planetoid_files("CiteSeer"),
                _load_planetoid("CiteSeer"), url="https://github.com/kimiyoung/planetoid/raw/master/data"),
    DatasetSpec("pubmed", f"PyG Planetoid('PubMed', split='geom-gcn'); {_GEOM}", _planetoid_files("PubMed"),
                _load_planetoid("PubMed"), url="https://github.com/kimiyoung/planetoid/raw/master/data"),
    DatasetSpec("chameleon", f"PyG WikipediaNetwork('chameleon', geom_gcn_preprocess=True); {_GEOM}",
                _wikipedia_files("chameleon"), _load_wikipedia, url="https://raw.githubusercontent.com/"),
    DatasetSpec("squirrel", f"PyG WikipediaNetwork('squirrel', geom_gcn_preprocess=True); {_GEOM}",
                _wikipedia_files("squirrel"), _load_wikipedia, url="https://raw.githubusercontent.com/"),
    DatasetSpec("chameleon-filtered", "Chameleon without duplicated nodes (Platonov et al., ICLR 2023); their "
                "ten fixed splits", ("heterophilous-graphs/chameleon_filtered.npz",), _load_filtered,
                url="https://github.com/yandex-research/heterophilous-graphs/raw/main/data/"),
    DatasetSpec("squirrel-filtered", "Squirrel without duplicated nodes (Platonov et al., ICLR 2023); their "
                "ten fixed splits", ("heterophilous-graphs/squirrel_filtered.npz",), _load_filtered,
                url="https://github.com/yandex-research/heterophilous-graphs/raw/main/data/"),
    DatasetSpec("minesweeper", "PyG HeterophilousGraphDataset('Minesweeper'); ten fixed 50/25/25 splits; ROC AUC",
                ("pyg/minesweeper/raw/minesweeper.npz",), _load_heterophilous("Minesweeper"),
                url="https://github.com/yandex-research/heterophilous-graphs/raw/main/data/", metric="roc_auc"),
    DatasetSpec("tolokers", "PyG HeterophilousGraphDataset('Tolokers'); ten fixed 50/25/25 splits; ROC AUC",
                ("pyg/tolokers/raw/tolokers.npz",), _load_heterophilous("Tolokers"),
                url="https://github.com/yandex-research/heterophilous-graphs/raw/main/data/", metric="roc_auc"),
    DatasetSpec("amazon-computers", "PyG Amazon('Computers'); ten seeded class-stratified 48/32/20 random splits",
                ("pyg/Amazon/Computers/raw/amazon_electronics_computers.npz",), _load_amazon("Computers"),
                url="https://github.com/shchur/gnn-benchmark/raw/master/data/npz/"),
    DatasetSpec("amazon-photo", "PyG Amazon('Photo'); ten seeded class-stratified 48/32/20 random splits",
                ("pyg/Amazon/Photo/raw/amazon_electronics_photo.npz",), _load_amazon("Photo"),
                url="https://github.com/shchur/gnn-benchmark/raw/master/data/npz/"),
    DatasetSpec("ogbn-arxiv", "OGB PygNodePropPredDataset('ogbn-arxiv'); official time split",
                _ogb_files("ogbn-arxiv", "time", ("node_year",)), _load_ogb,
                url="http://snap.stanford.edu/ogb/data/nodeproppred/arxiv.zip",
                hint=_OGB_HINT.format(url="http://snap.stanford.edu/ogb/data/nodeproppred/arxiv.zip",
                                      zip_dir="arxiv", dir="ogbn_arxiv")),
    DatasetSpec("ogbn-products", "OGB PygNodePropPredDataset('ogbn-products'); official sales-ranking split",
                _ogb_files("ogbn-products", "sales_ranking"), _load_ogb,
                url="http://snap.stanford.edu/ogb/data/nodeproppred/products.zip",
                hint=_OGB_HINT.format(url="http://snap.stanford.edu/ogb/data/nodeproppred/products.zip",
                                      zip_dir="products", dir="ogbn_products")),
    DatasetSpec("arxiv-year", "ogbn-arxiv graph, labels = node_year in 5 even quantile bins (LINKX); "
                "LINKX's five 50/25/25 splits",
                _ogb_files("ogbn-arxiv", "time", ("node_year",)) + (loaders.LINKX_SPLITS_FILE,),
                _load_arxiv_year, url="http://snap.stanford.edu/ogb/data/nodeproppred/arxiv.zip",
                hint=_OGB_HINT.format(url="http://snap.stanford.edu/ogb/data/nodeproppred/arxiv.zip",
                                      zip_dir="arxiv", dir="ogbn_arxiv")
                + f" The splits file comes from {loaders.LINKX_SPLITS_URL}."),
    DatasetSpec("csbm", "synthetic contextual SBM, homophilous (make_csbm defaults: homophily 0.8)",
                (), _load_csbm(0.8)),
    DatasetSpec("csbm-hetero", "synthetic contextual SBM, heterophilous (make_csbm with homophily 0.2)",
                (), _load_csbm(0.2)),
]
REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def metric_key(dataset: str, key: str) -> str:
    """``key`` (an accuracy key such as ``test_acc``) in ``dataset``'s own metric: the ROC AUC key
    on the binary graphs whose registry metric is ``roc_auc`` (as :func:`samlp_lite.records.metric_names` spells
    it), ``key`` itself otherwise (also for names outside the registry)."""
    spec = REGISTRY.get(dataset)
    return key.replace("_acc", "_roc_auc") if spec is not None and spec.metric == "roc_auc" else key


def list_datasets() -> list[str]:
    """Names accepted by ``load_dataset``: the paper's eight, GLNN's two Amazon graphs, two CSBMs."""
    return list(REGISTRY)


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry of ``name``.

    Raises:
        ValueError: unknown name; the message lists valid names and the closest match.
    """
    key = name.strip().lower()
    if key in REGISTRY:
        return REGISTRY[key]
    close = difflib.get_close_matches(key, list(REGISTRY), n=1, cutoff=0.0)
    suggestion = f" The closest valid name is {close[0]!r}." if close else ""
    raise ValueError(f"unknown dataset {name!r}.{suggestion} Valid names: {', '.join(REGISTRY)}")


def dataset_available(name: str, root: str | Path | None = None) -> bool:
    """True when every raw file of ``name`` is under the data root (or already in the cache)."""
    spec = dataset_spec(name)
    return not missing_files(resolve_root(root), spec.files)


def _not_available(spec: DatasetSpec, root: Path, missing: list[str], reason: str) -> DatasetNotAvailableError:
    folders: dict[str, list[str]] = {}
    for rel in missing:
        folder, _, file = rel.rpartition("/")
        folders.setdefault(folder, []).append(file)
    hint = spec.hint
    top, dataset_folder = spec.files[0].split("/")[:2]
    partial = root / "incomplete" / dataset_folder
    if partial.is_dir():
        hint = (f"{hint} A partial copy is in {partial} (SOURCES.md in the data root says what it "
                f"lacks): complete it and move the {dataset_folder} folder into {root / top}/.").strip()
    return DatasetNotAvailableError(not_available_message(spec.name, root, folders, reason, hint))


GRAPH_FILE_SUFFIXES = (".pt", ".npz")


def is_graph_file(name: str | Path) -> bool:
    """Whether ``name`` names a graph file (``.pt``/``.npz``) rather than a registered dataset."""
    return Path(str(name)).suffix.lower() in GRAPH_FILE_SUFFIXES


def load_dataset(name: str | Path, root: str | Path | None = None, *, progress: bool = False) -> GraphData:
    """Load a registered dataset, normalised, with its benchmark splits.

    Raw files are read from ``root`` (default ``data_root()``, i.e. ``$SAMLP_DATA``); PyG and
    OGB process them in a writable mirror under ``cache_dir()``. Missing files are downloaded
    when the source is reachable.

    Args:
        name: a name from ``list_datasets()``, case-insensitive, or the path of your own graph
            file (``.pt`` or ``.npz``, see :func:`~samlp_lite.data.load_graph_file`).
        root: data root; default ``$SAMLP_DATA`` or ``<cache_dir()>/data``.
        progress: show stages and download/processing progress on stderr.

    Returns:
        the ``GraphData``; its ``description`` names the source and the preprocessing.

    Raises:
        ValueError: unknown name.
        DatasetNotAvailableError: files missing and no download possible (a ``FileNotFoundError``
            naming the files and the folder they belong in).
    """
    if is_graph_file(name):
        from samlp_lite.data.files import load_graph_file

        return load_graph_file(name)
    spec = dataset_spec(name)
    root = resolve_root(root)
    stages = tqdm(total=3, desc=f"load {spec.name}", unit="stage", file=sys.stderr,
                  disable=not progress, leave=True)
    started = time.perf_counter()
    try:
        stages.set_postfix_str("checking files")
        missing = missing_files(root, spec.files)
        if missing and not network_available(spec.url):
            raise _not_available(spec, root, missing, f"{len(missing)} of {len(spec.files)} raw files "
                                 "are missing and the download site cannot be reached (offline?)")
        corrupt = corrupt_files(root, spec.files)
        if corrupt:
            rel, expected, actual = corrupt[0]
            raise ChecksumError(f"{root / rel} does not match {root / CHECKSUMS_FILE} (sha256 {actual[:12]}..., "
                                f"listed {expected[:12]}...): the file is corrupt or was changed; restore it "
                                f"from its source ({spec.url or 'see the data folder'})"
                                + (f" ({len(corrupt) - 1} more file(s) differ)" if len(corrupt) > 1 else ""))
        work = mirror_files(root, spec.files) if spec.files else work_root(root)
        stages.update()
        stages.set_postfix_str("downloading and processing" if missing else "reading and processing")
        try:
            graph = spec.load(spec, root, work, progress)
        except (urllib.error.URLError, ConnectionError, socket.timeout) as err:
            raise _not_available(spec, root, missing_files(root, spec.files),
                                 f"downloading the missing files failed ({err})") from err
        stages.update()
        stages.set_postfix_str("done")
        stages.update()
    finally:
        stages.close()
    if progress:
        print(f"loaded {graph!r} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return graph

