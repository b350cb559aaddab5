"""``samlp-lite data list`` and ``samlp-lite data info``."""
from __future__ import annotations

import json

import numpy as np
import pytest

from samlp_lite.cli import main
from samlp_lite.data import STATISTICS_KEYS, dataset_available, list_datasets

requires_cora = pytest.mark.skipif(not dataset_available("cora"),
                                   reason="Cora raw files not under $SAMLP_DATA (see shared/data/SOURCES.md)")


def test_data_list_shows_every_name_and_availability(capsys, tmp_path, tmp_cache):
    assert main(["data", "list", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"data root: {tmp_path.resolve()}" in out
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:]}
    assert set(lines) == set(list_datasets())
    assert lines["cora"] == "no" and lines["csbm"] == "synthetic"


@requires_cora
def test_data_list_reports_cora_available(capsys):
    assert main(["data", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("cora "))
    assert row.split()[1] == "yes"


@requires_cora
def test_data_info_cora_json(capsys, tmp_cache):
    assert main(["data", "info", "cora", "--json"]) == 0
    captured = capsys.readouterr()
    stats = json.loads(captured.out)
    assert tuple(stats) == STATISTICS_KEYS
    assert (stats["name"], stats["num_nodes"], stats["num_edges"]) == ("cora", 2708, 10556)
    assert 0.80 < stats["edge_homophily"] < 0.82


def test_data_info_synthetic_table_and_json(capsys):
    assert main(["data", "info", "csbm-hetero", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "synthetic CSBM" in out and "edge_homophily" in out
    assert main(["data", "info", "csbm", "--json"]) == 0
    captured = capsys.readouterr()
    assert set(json.loads(captured.out)) == set(STATISTICS_KEYS)
    assert "load csbm" in captured.err


def test_data_info_file(capsys, tmp_path):
    path = tmp_path / "g.npz"
    np.savez(path, edge_index=np.array([[0, 1], [1, 2]]), x=np.eye(3), y=np.array([0, 1, 1]))
    assert main(["data", "info", str(path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["name"], stats["num_edges"], stats["isolated_nodes"]) == ("g", 4, 0)


def test_data_info_missing_dataset_exit_code_and_message(capsys, tmp_path, tmp_cache, monkeypatch):
    monkeypatch.setenv("SAMLP_OFFLINE", "1")
    assert main(["data", "info", "pubmed", "--root", str(tmp_path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "dataset 'pubmed' is not available" in captured.err
    assert str(tmp_path / "pyg" / "PubMed" / "geom-gcn" / "raw") in captured.err


def test_data_info_unknown_name(capsys):
    assert main(["data", "info", "coraa"]) == 2
    assert "closest valid name is 'cora'" in capsys.readouterr().err
