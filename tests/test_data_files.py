"""load_graph_file: .pt and .npz round trips and one test per validation error."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from samlp_lite.data import load_graph_file

N = 6


def arrays(**changes) -> dict:
    base = {
        "edge_index": np.array([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]], dtype=np.int64),
        "x": np.arange(N * 3, dtype=np.float64).reshape(N, 3),
        "y": np.array([0, 1, 0, 1, 0, 1], dtype=np.int64),
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def write_npz(tmp_path, name="graph.npz", **changes):
    path = tmp_path / name
    np.savez(path, **arrays(**changes))
    return path


def test_pt_round_trip_with_masks(tmp_path):
    train = torch.zeros(N, 2, dtype=torch.bool)
    val, test = train.clone(), train.clone()
    train[[0, 1], 0], val[2, 0], test[[3, 4], 0] = True, True, True
    train[[4, 5], 1], val[0, 1], test[1, 1] = True, True, True
    data = Data(x=torch.randn(N, 3), y=torch.tensor([0, 1, 0, 1, 0, 1]),
                edge_index=torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]]),
                train_mask=train, val_mask=val, test_mask=test)
    path = tmp_path / "mine.pt"
    torch.save(data, path)
    graph = load_graph_file(path)
    assert graph.name == "mine" and graph.num_nodes == N and graph.num_classes == 2
    assert torch.equal(graph.data.x, data.x)
    assert graph.data.edge_index.size(1) == 10
    assert graph.num_splits == 2
    assert graph.split(0).train.tolist() == [0, 1] and graph.split(1).test.tolist() == [1]
    assert "2 split(s) from the file's masks" in graph.description
    assert "directed edges symmetrised" in graph.description


def test_pt_dict_of_tensors(tmp_path):
    path = tmp_path / "d.pt"
    torch.save({key: torch.from_numpy(value) for key, value in arrays().items()}, path)
    graph = load_graph_file(path, num_splits=3, name="custom")
    assert graph.name == "custom" and graph.num_splits == 3


def test_pt_with_arbitrary_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"edge_index": torch.zeros(2, 1, dtype=torch.long), "obj": ValueError("x")}, path)
    with pytest.raises(ValueError, match="holds Python objects other than tensors") as info:
        load_graph_file(path)
    assert "weights_only=False" not in str(info.value)  # never advise turning the protection off


def test_npz_round_trip_without_masks_makes_random_splits(tmp_path):
    graph = load_graph_file(write_npz(tmp_path), num_splits=4, seed=2)
    assert graph.num_splits == 4
    assert graph.data.x.dtype == torch.float32 and graph.data.x.shape == (N, 3)
    assert graph.data.y.tolist() == [0, 1, 0, 1, 0, 1]
    assert "4 class-stratified 48/32/20 random splits (seed 2)" in graph.description
    again = load_graph_file(write_npz(tmp_path, "again.npz"), num_splits=4, seed=2)
    assert torch.equal(graph.split(3).train, again.split(3).train)


def test_npz_one_dimensional_masks(tmp_path):
    masks = {"train_mask": np.array([1, 1, 0, 0, 0, 0], bool), "val_mask": np.array([0, 0, 1, 0, 0, 0], bool),
             "test_mask": np.array([0, 0, 0, 1, 1, 1], bool)}
    graph = load_graph_file(write_npz(tmp_path, **masks))
    assert graph.num_splits == 1 and graph.split(0).test.tolist() == [3, 4, 5]


BAD_CASES = {
    "edge_index_shape": (dict(edge_index=np.zeros((3, 4), np.int64)), r"shape \[2, E\]"),
    "edge_index_float": (dict(edge_index=np.zeros((2, 4), np.float32)), "integer array"),
    "edge_index_too_big": (dict(edge_index=np.array([[0], [6]])), r"outside \[0, 6\)"),
    "edge_index_negative": (dict(edge_index=np.array([[0], [-1]])), r"outside \[0, 6\)"),
    "x_one_dimensional": (dict(x=np.zeros(N)), "x must be 2-D"),
    "x_wrong_rows": (dict(x=np.zeros((N + 1, 2))), "x has 7 rows but y has 6 labels"),
    "x_longer_than_edges_reach": (dict(y=np.array([0, 1, 0, 1, 0])), "x has 6 rows but y has 5 labels"),
    "x_nan": (dict(x=np.array([[0.0], [1.0], [np.nan], [0.0], [np.inf], [1.0]])),
              r"x holds 2 NaN or infinite value\(s\) \(first in row 2\)"),
    "mask_empty_train": (dict(train_mask=np.zeros(N, bool), val_mask=np.array([1, 0, 0, 0, 0, 0], bool),
                              test_mask=np.array([0, 1, 0, 0, 0, 0], bool)), "train_mask selects no node"),
    "x_not_numeric": (dict(x=np.array([["a", "b"]] * N)), "plain numeric array"),
    "y_two_dimensional": (dict(y=np.zeros((N, 2), np.int64)), "y must be 1-D"),
    "y_float": (dict(y=np.zeros(N, np.float32)), "integer class labels"),
    "y_negative": (dict(y=np.array([0, 1, -1, 1, 0, 1])), "negative labels"),
    "y_single_class": (dict(y=np.zeros(N, np.int64)), "at least 2 classes"),
    "mask_not_bool": (dict(train_mask=np.ones(N, np.int64), val_mask=np.zeros(N, bool),
                           test_mask=np.zeros(N, bool)), "train_mask must be boolean"),
    "mask_wrong_length": (dict(train_mask=np.ones(N - 1, bool), val_mask=np.zeros(N, bool),
                               test_mask=np.zeros(N, bool)), r"shape \[N\] or \[N, S\] with N=6"),
    "mask_partial": (dict(train_mask=np.ones(N, bool)), "give all three masks or none"),
    "mask_overlap": (dict(train_mask=np.array([1, 1, 0, 0, 0, 0], bool), val_mask=np.array([0, 1, 0, 0, 0, 0], bool),
                          test_mask=np.zeros(N, bool)), "node 1 is in more than one of train/val/test in split 0"),
    "missing_key": (dict(y=None), "missing 'y'"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_invalid_files_raise_clear_value_errors(tmp_path, case):
    changes, message = BAD_CASES[case]
    with pytest.raises(ValueError, match=message):
        load_graph_file(write_npz(tmp_path, **changes))


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_graph_file(tmp_path / "nope.npz")
    other = tmp_path / "graph.csv"
    other.write_text("0,1\n")
    with pytest.raises(ValueError, match="unsupported file type '.csv'"):
        load_graph_file(other)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"garbage that is no archive at all"])
def test_corrupt_npz_gives_one_line_naming_the_file(tmp_path, content):
    good = write_npz(tmp_path)
    path = tmp_path / "broken.npz"
    path.write_bytes(content or good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ValueError, match=r"broken\.npz is not a readable \.npz archive") as info:
        load_graph_file(path)
    assert "\n" not in str(info.value) and "pickle" not in str(info.value)


def test_truncated_pt_gives_one_line_naming_the_file(tmp_path):
    path = tmp_path / "graph.pt"
    torch.save({"edge_index": torch.zeros(2, 1, dtype=torch.long), "x": torch.ones(2, 2), "y": torch.tensor([0, 1])},
               path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"graph\.pt is not a readable torch file") as info:
        load_graph_file(path)
    assert "Invalid argument" not in str(info.value)
