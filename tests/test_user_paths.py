"""What a new user meets first: the command line on their own graph, bad paths, smoke mode, Ctrl-C."""
import subprocess
import sys

import numpy as np
import pytest

from samlp_lite.cli import main
from samlp_lite.data import make_csbm
from samlp_lite.runs.experiment import parse_splits


@pytest.fixture
def graph_file(tmp_path):
    """A small homophilous graph saved as .npz, as a user would bring one."""
    graph = make_csbm(num_nodes=150, num_classes=3, num_features=8, homophily=0.9, num_splits=2, seed=3)
    path = tmp_path / "my_graph.npz"
    split = graph.split(0)
    masks = {k: np.zeros(graph.num_nodes, bool) for k in ("train_mask", "val_mask", "test_mask")}
    for key, ids in zip(masks, (split.train, split.val, split.test)):
        masks[key][ids.numpy()] = True
    np.savez(path, edge_index=graph.data.edge_index.numpy(), x=graph.data.x.numpy(), y=graph.data.y.numpy(), **masks)
    return path


def test_teacher_and_distill_take_a_graph_file(graph_file, tmp_cache, tmp_path, capsys):
    fast = ["--set", "max_epochs=20", "--set", "hidden=16"]
    assert main(["teacher", "--dataset", str(graph_file), "--teacher", "sage", *fast]) == 0
    record = tmp_path / "out" / "sa-mlp.json"
    assert main(["distill", "--dataset", str(graph_file), "--student", "sa-mlp", "--teacher", "sage", *fast,
                 "--teacher-set", "max_epochs=20", "--teacher-set", "hidden=16", "--json", str(record)]) == 0
    assert record.is_file() and "my_graph" in record.read_text()


def test_a_folder_or_unwritable_json_path_fails_before_training(graph_file, tmp_cache, tmp_path, capsys, monkeypatch):
    import samlp_lite.runs.experiment as experiment

    monkeypatch.setattr(experiment, "get_teacher_outputs", lambda *a, **k: pytest.fail("trained before checking"))
    assert main(["teacher", "--dataset", str(graph_file), "--teacher", "sage", "--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("")
    assert main(["teacher", "--dataset", str(graph_file), "--teacher", "sage",
                 "--json", str(not_a_folder / "r.json")]) == 2
    assert "is not writable" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.partial.json"))


def test_a_read_only_cache_fails_at_once_with_one_line(graph_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "file-not-folder"))
    (tmp_path / "file-not-folder").write_text("")
    assert main(["teacher", "--dataset", str(graph_file), "--teacher", "sage"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "cache folder" in errors[0] and "SAMLP_CACHE" in errors[0]


def test_ctrl_c_says_how_to_resume_and_exits_130(graph_file, tmp_cache, monkeypatch, capsys):
    import samlp_lite.runs.experiment as experiment

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "run_teacher", interrupted)
    assert main(["teacher", "--dataset", str(graph_file), "--teacher", "sage"]) == 130
    assert "interrupted; re-run the same command to resume" in capsys.readouterr().err


def test_smoke_mode_announces_itself(graph_file, tmp_cache, monkeypatch, capsys):
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    assert main(["results", "--root", str(tmp_cache)]) == 0
    captured = capsys.readouterr()
    assert "smoke mode is on" in captured.err and "smoke" in captured.out


def test_papermill_splits_may_be_an_int():
    assert parse_splits(0, 10) == [0] and parse_splits("0-2", 10) == [0, 1, 2] and parse_splits([3, 1], 10) == [1, 3]
    with pytest.raises(ValueError, match="cannot read splits"):
        parse_splits(True, 10)


def test_help_does_not_import_torch():
    code = "import sys; from samlp_lite.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.slow
def test_advice_never_puts_the_student_below_the_mlp_where_structure_misleads(tmp_cache):
    from samlp_lite.runs.advice import advise

    # random structure (homophily 1/C) and strong features: neighbour averaging dilutes the signal
    graph = make_csbm(num_nodes=300, num_classes=3, avg_degree=8, num_features=16, homophily=0.33,
                      feature_signal=2.0, num_splits=1, seed=2)
    advice = advise(graph, "sa-mlp", overrides={"max_epochs": 60, "patience": 30, "hidden": 32}, echo=lambda s: None)
    assert advice.mlp_val > max(advice.val["sage"], advice.val["gcn"])  # the teachers are misled here
    assert advice.overrides["lam"] >= 0.7  # so the student leans on the labels
    assert advice.student_val >= advice.mlp_val
    assert advice.command("g.npz", "sa-mlp").startswith("samlp-lite distill --dataset g.npz --student sa-mlp")
