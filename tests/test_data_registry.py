"""Registry, offline errors, the read-only data root, OGB and LINKX loaders (on tiny fakes), Cora."""
from __future__ import annotations

import builtins
import os
from pathlib import Path
import gzip
import hashlib
import time
import urllib.error

import numpy as np
import pytest
import torch
from torch_geometric.utils import is_undirected

from samlp_lite.data import (
    ChecksumError,
    DatasetNotAvailableError,
    data_root,
    dataset_available,
    even_quantile_labels,
    list_datasets,
    load_dataset,
    loaders,
    paths,
    registry,
)

requires_cora = pytest.mark.skipif(not dataset_available("cora"),
                                   reason="Cora raw files not under $SAMLP_DATA (see shared/data/SOURCES.md)")
PAPER_DATASETS = {"cora", "citeseer", "pubmed", "chameleon", "squirrel", "amazon-computers",
                  "amazon-photo", "ogbn-arxiv", "ogbn-products", "arxiv-year"}


@pytest.fixture
def offline(monkeypatch):
    """No network: every probe says the download site is unreachable, and sockets refuse."""
    monkeypatch.setattr(registry, "network_available", lambda url, timeout=3.0: False)

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")
    monkeypatch.setattr("socket.create_connection", refuse)


def test_registry_names():
    assert PAPER_DATASETS <= set(list_datasets())


def test_unknown_dataset_names_closest_match_and_valid_names():
    with pytest.raises(ValueError) as err:
        load_dataset("chamelon")
    message = str(err.value)
    assert "unknown dataset 'chamelon'" in message and "closest valid name is 'chameleon'" in message
    for name in PAPER_DATASETS:
        assert name in message


def test_data_root_from_environment(tmp_path, monkeypatch, tmp_cache):
    monkeypatch.setenv("SAMLP_DATA", str(tmp_path / "raw"))
    assert data_root() == (tmp_path / "raw").resolve()
    monkeypatch.delenv("SAMLP_DATA")
    assert data_root() == (tmp_cache / "data").resolve()


def test_missing_files_error_names_folder_and_files(tmp_path, monkeypatch, tmp_cache, offline):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("SAMLP_DATA", str(empty))
    started = time.perf_counter()
    with pytest.raises(DatasetNotAvailableError) as err:
        load_dataset("cora")
    assert time.perf_counter() - started < 5
    assert isinstance(err.value, FileNotFoundError)
    message = str(err.value)
    assert f"{empty / 'pyg' / 'Cora' / 'geom-gcn' / 'raw'}/" in message
    assert "ind.cora.allx" in message and "cora_split_0.6_0.2_9.npz" in message
    assert "'cora'" in message and "SAMLP_DATA" in message


def test_missing_ogb_and_arxiv_year_fail_fast(tmp_path, tmp_cache, offline):
    for name in ("ogbn-arxiv", "arxiv-year"):
        with pytest.raises(DatasetNotAvailableError) as err:
            load_dataset(name, root=tmp_path)
        assert f"{tmp_path / 'ogb' / 'ogbn_arxiv' / 'raw'}/" in str(err.value)
        assert "node_year.csv.gz" in str(err.value)
    assert "linkx/splits" in str(err.value)


def test_offline_environment_switch(monkeypatch):
    monkeypatch.setenv("SAMLP_OFFLINE", "1")
    assert not paths.network_available("https://github.com/")


def test_failed_download_becomes_clear_error(tmp_path, monkeypatch, tmp_cache):
    monkeypatch.setattr(registry, "network_available", lambda url, timeout=3.0: True)

    def fail(*args, **kwargs):
        raise urllib.error.URLError("name resolution failed")
    monkeypatch.setattr(loaders, "load_planetoid", fail)
    with pytest.raises(DatasetNotAvailableError, match="downloading the missing files failed"):
        load_dataset("citeseer", root=tmp_path)


def test_progress_goes_to_stderr(capsys):
    graph = load_dataset("csbm", progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "load csbm" in captured.err and graph.num_nodes == 1000


# --- fake OGB files -----------------------------------------------------------------------

def write_csv_gz(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as handle:
        handle.write("".join(",".join(str(v) for v in row) + "\n" for row in rows))


def make_fake_arxiv(root, num_nodes=20, with_release=True):
    """A tiny graph in ogbn-arxiv's raw layout: a directed ring plus one self-loop."""
    folder = root / "ogb" / "ogbn_arxiv"
    edges = [(i, (i + 1) % num_nodes) for i in range(num_nodes)] + [(3, 3)]
    write_csv_gz(folder / "raw" / "edge.csv.gz", edges)
    write_csv_gz(folder / "raw" / "node-feat.csv.gz", [(i * 0.5, 1.0, -i) for i in range(num_nodes)])
    write_csv_gz(folder / "raw" / "node-label.csv.gz", [(i % 4,) for i in range(num_nodes)])
    write_csv_gz(folder / "raw" / "node_year.csv.gz", [(2000 + i,) for i in range(num_nodes)])
    write_csv_gz(folder / "raw" / "num-node-list.csv.gz", [(num_nodes,)])
    write_csv_gz(folder / "raw" / "num-edge-list.csv.gz", [(len(edges),)])
    parts = {"train": range(0, 10), "valid": range(10, 15), "test": range(15, num_nodes)}
    for part, ids in parts.items():
        write_csv_gz(folder / "split" / "time" / f"{part}.csv.gz", [(i,) for i in ids])
    if with_release:
        (folder / "RELEASE_v1.txt").write_text("fake\n")
    return folder


@pytest.fixture
def no_prompts(monkeypatch):
    def refuse(*args):
        raise AssertionError("input() was called")
    monkeypatch.setattr(builtins, "input", refuse)


def snapshot(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_fake_ogbn_arxiv_loads_without_prompts_or_writing_to_root(tmp_path, tmp_cache, offline, no_prompts):
    root = tmp_path / "root"
    make_fake_arxiv(root)
    before = snapshot(root)
    graph = load_dataset("ogbn-arxiv", root=root)
    assert snapshot(root) == before
    assert (tmp_cache / "datasets" / "ogb" / "ogbn_arxiv" / "processed").is_dir()
    assert graph.num_nodes == 20 and graph.num_classes == 4 and graph.num_splits == 1
    assert graph.data.edge_index.size(1) == 40 and is_undirected(graph.data.edge_index)
    assert graph.split(0).val.tolist() == list(range(10, 15))
    assert "directed edges symmetrised" in graph.description and "1 self-loop removed" in graph.description
    assert torch.equal(load_dataset("ogbn-arxiv", root=root).data.x, graph.data.x)


def test_ogb_update_prompt_is_answered_without_blocking(tmp_path, no_prompts):
    make_fake_arxiv(tmp_path, with_release=False)
    data, split_idx = loaders.load_ogb(tmp_path, "ogbn-arxiv", progress=False)
    assert int(data.num_nodes) == 20 and split_idx["test"].numel() == 5


def write_linkx_splits(path, num_nodes):
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = list(range(num_nodes))
    entries = np.empty(2, dtype=object)
    for i in range(2):
        entries[i] = {"train": ids[i::2][:5], "valid": ids[1 - i::2][:3], "test": ids[10:]}
    np.save(path, entries, allow_pickle=True)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fake_arxiv_year_labels_and_splits(tmp_path, tmp_cache, offline, no_prompts, monkeypatch):
    make_fake_arxiv(tmp_path)
    digest = write_linkx_splits(tmp_path / loaders.LINKX_SPLITS_FILE, 20)
    monkeypatch.setattr(loaders, "LINKX_SPLITS_SHA256", digest)
    graph = load_dataset("arxiv-year", root=tmp_path)
    assert graph.num_classes == 5 and graph.num_splits == 2
    assert torch.bincount(graph.data.y).tolist() == [4, 4, 4, 4, 4]
    assert graph.data.y.tolist() == sorted(graph.data.y.tolist())
    assert graph.split(1).val.tolist() == [0, 2, 4]


def test_linkx_splits_with_wrong_checksum_are_not_unpickled(tmp_path, monkeypatch):
    path = tmp_path / "arxiv-year-splits.npy"
    write_linkx_splits(path, 20)

    def no_unpickling(*args, **kwargs):
        raise AssertionError("np.load was called on an unverified file")
    monkeypatch.setattr(np, "load", no_unpickling)
    with pytest.raises(ChecksumError, match="Refusing to unpickle"):
        loaders.load_linkx_splits(path, 20)


def test_even_quantile_labels_match_linkx_rule():
    years = np.array([2001, 2000, 2003, 2002, 2005, 2004, 2007, 2006, 2009, 2008])
    assert even_quantile_labels(years, 5).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert even_quantile_labels(np.array([1, 1, 1, 2]), 2).tolist() == [1, 1, 1, 1]


def test_real_linkx_splits_file_if_present():
    path = data_root() / loaders.LINKX_SPLITS_FILE
    if not path.is_file():
        pytest.skip("LINKX arxiv-year splits not under $SAMLP_DATA")
    splits = loaders.load_linkx_splits(path, 169_343)
    assert len(splits) == 5 and splits[0].sizes() == (84_671, 42_335, 42_337)


def test_fake_amazon_photo_layout_and_random_splits(tmp_path, tmp_cache, offline):
    import scipy.sparse as sp

    num_nodes = 30
    adj = sp.csr_matrix(([1.0] * num_nodes, (list(range(num_nodes)), [(i + 1) % num_nodes for i in range(num_nodes)])),
                        shape=(num_nodes, num_nodes))
    attr = sp.csr_matrix(np.eye(num_nodes, 5, dtype=np.float32))
    path = tmp_path / "pyg" / "Amazon" / "Photo" / "raw" / "amazon_electronics_photo.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, adj_data=adj.data, adj_indices=adj.indices, adj_indptr=adj.indptr, adj_shape=adj.shape,
             attr_data=attr.data, attr_indices=attr.indices, attr_indptr=attr.indptr, attr_shape=attr.shape,
             labels=np.arange(num_nodes) % 3)
    assert dataset_available("amazon-photo", tmp_path)
    graph = load_dataset("amazon-photo", root=tmp_path)
    assert graph.num_nodes == num_nodes and graph.num_splits == 10 and graph.num_classes == 3
    assert graph.split(0).sizes() == (15, 9, 6)
    assert graph.data.edge_index.size(1) == 2 * num_nodes


# --- real Cora (skipped without the files) --------------------------------------------------

@requires_cora
def test_cora_geom_gcn(tmp_cache, monkeypatch):
    root = data_root()
    graph = load_dataset("cora", root=root)
    assert (graph.num_nodes, graph.data.edge_index.size(1), graph.num_features) == (2708, 10556, 1433)
    assert graph.num_classes == 7 and graph.num_splits == 10
    assert graph.split(0).sizes() == (1192, 796, 497)
    assert graph.data.x.dtype == torch.float32 and is_undirected(graph.data.edge_index)
    assert graph.description.startswith("PyG Planetoid('Cora', split='geom-gcn')")
    assert (tmp_cache / "datasets" / "pyg" / "Cora" / "geom-gcn" / "processed").is_dir()


def test_a_raw_file_that_differs_from_sha256sums_is_named(tmp_path):
    import hashlib
    import shutil

    from samlp_lite.data import ChecksumError, load_dataset

    root = tmp_path / "data"
    source = Path(os.environ["SAMLP_DATA"]) if os.environ.get("SAMLP_DATA") else None
    if source is None or not (source / "pyg" / "Cora").is_dir():
        pytest.skip("needs the offline data folder (SAMLP_DATA)")
    shutil.copytree(source / "pyg" / "Cora", root / "pyg" / "Cora")
    raw = root / "pyg" / "Cora" / "geom-gcn" / "raw"
    lines = [f"{hashlib.sha256(f.read_bytes()).hexdigest()}  ./{f.relative_to(root).as_posix()}"
             for f in sorted(raw.iterdir())]
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    target = raw / "ind.cora.y"
    target.write_bytes(target.read_bytes()[:-1] + b"\0")
    with pytest.raises(ChecksumError, match=r"ind\.cora\.y does not match .*SHA256SUMS"):
        load_dataset("cora", root=root)


@pytest.mark.parametrize("name,nodes,classes,metric", [("chameleon-filtered", 890, 5, "accuracy"),
                                                       ("squirrel-filtered", 2223, 5, "accuracy"),
                                                       ("minesweeper", 10000, 2, "roc_auc"),
                                                       ("tolokers", 11758, 2, "roc_auc")])
def test_leak_free_graphs_load_offline_undirected_with_ten_splits(name, nodes, classes, metric):
    from samlp_lite.data import dataset_available, load_dataset

    if not dataset_available(name):
        pytest.skip(f"needs the offline data folder with {name}")
    graph = load_dataset(name)
    assert (graph.num_nodes, graph.num_classes, graph.metric, graph.num_splits) == (nodes, classes, metric, 10)
    assert is_undirected(graph.data.edge_index, num_nodes=graph.num_nodes)
    split = graph.split(0)
    assert len(set(split.train.tolist()) & set(split.test.tolist())) == 0 and split.val.numel() > 0
