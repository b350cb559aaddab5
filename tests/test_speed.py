"""The training-speed benchmark: both paths train the same model, and only the fast one uses the fast products."""
import json

import pytest

from samlp_lite.cli import main
from samlp_lite.data import make_csbm
from samlp_lite.models import sparse_ops
from samlp_lite.models.sparse_ops import fast_products_enabled, reference_products
from samlp_lite.records import load_records
from samlp_lite.report.tables import speed_table
from samlp_lite.runs.speed import SPEED_FIELDS, time_model, training_speed


@pytest.fixture(scope="module")
def graph():
    return make_csbm(num_nodes=120, num_classes=3, avg_degree=6, num_features=8, homophily=0.3, num_splits=1,
                     name="csbm")


def test_reference_products_switch_off_the_fast_paths_and_restore_them():
    assert fast_products_enabled()
    with pytest.raises(RuntimeError):
        with reference_products():
            assert not fast_products_enabled()
            raise RuntimeError("boom")
    assert fast_products_enabled()


def test_both_paths_take_their_own_products(graph, monkeypatch):
    calls = {"rows_times": 0, "symmetric": 0}
    original_rows, original_apply = sparse_ops._RowsTimes.apply, sparse_ops._SymmetricSpMM.apply

    def count(name, original):
        def wrapped(*args):
            calls[name] += 1
            return original(*args)
        return wrapped

    monkeypatch.setattr(sparse_ops._RowsTimes, "apply", count("rows_times", original_rows))
    monkeypatch.setattr(sparse_ops._SymmetricSpMM, "apply", count("symmetric", original_apply))
    for model in ("sa-mlp", "gcn"):
        row = time_model(graph, model, epochs=2, device="cpu")
        assert set(row) == set(SPEED_FIELDS)
        assert row["fast_s_per_epoch"] > 0 and row["reference_s_per_epoch"] > 0
        assert row["max_abs_diff"] < 1e-4  # same seed, same model, up to rounding
    assert calls["rows_times"] > 0 and calls["symmetric"] > 0
    before = dict(calls)
    with reference_products():
        time_model(graph, "sa-mlp", epochs=1, device="cpu")
    assert calls["rows_times"] == before["rows_times"]  # inside the block even the "fast" run is the reference


def test_training_speed_writes_a_record(graph, tmp_path):
    lines = []
    record = training_speed(graph, ["mlp", "glnn"], epochs=1, device="cpu", json_path=tmp_path / "speed.json",
                            echo=lines.append)
    saved = json.loads((tmp_path / "speed.json").read_text())
    assert saved["kind"] == "training_speed" and [r["model"] for r in saved["rows"]] == ["mlp", "glnn"]
    assert saved["graph_fingerprint"] == graph.fingerprint and "commit" in saved["provenance"]
    assert record["rows"][1]["epochs"] == 1 and any("glnn" in line for line in lines)
    with pytest.raises(ValueError, match="epochs"):
        time_model(graph, "mlp", epochs=0)
    read_back = load_records(tmp_path, kind="training_speed")
    assert len(read_back) == 1 and load_records(tmp_path) == []  # not an accuracy record
    table = speed_table(read_back)
    assert list(table["model"]) == ["MLP", "GLNN"]
    assert table["speed-up"].tolist() == pytest.approx([r["speedup"] for r in saved["rows"]])


def test_cli_rejects_unknown_models(capsys):
    assert main(["speed", "--dataset", "csbm", "--models", "gcn,transformer"]) == 2
    assert "transformer" in capsys.readouterr().err
