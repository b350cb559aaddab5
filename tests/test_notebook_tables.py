"""Table helpers the notebooks use: numeric means, percent formatting, tuning records and sensitivity."""
import json
import math

import pandas as pd
import pytest

from samlp_lite.report.tables import (
    accuracy_table,
    load_tuning_records,
    mean_accuracy,
    percent_style,
    sensitivity_table,
)


def _record(dataset, model, teacher, values, setting="transductive"):
    key = "test_acc" if setting == "transductive" else "prod_acc"
    return {"kind": "accuracy", "dataset": dataset, "model": model, "teacher": teacher, "setting": setting,
            "splits": list(range(len(values))), key: values}


RECORDS = [_record("cora", "sage", None, [0.8, 0.9]), _record("cora", "mlp", None, [0.7, 0.7]),
           _record("cora", "sa-mlp", "sage", [0.85, 0.95]), _record("chameleon", "sa-mlp", "sage", [0.6]),
           _record("cora", "sa-mlp", "gcn", [0.1])]


def test_mean_accuracy_is_the_numbers_behind_accuracy_table():
    means = mean_accuracy(RECORDS, "transductive", "sage", datasets=["cora", "chameleon"])
    assert list(means.columns) == ["cora", "chameleon"] and means.index[0] == "sage"
    assert means.loc["sage", "cora"] == pytest.approx(0.85)
    assert means.loc["sa-mlp", "cora"] == pytest.approx(0.9)    # the SAGE-taught record, not the GCN one
    assert means.loc["mlp", "cora"] == pytest.approx(0.7)
    assert math.isnan(means.loc["glnn", "cora"]) and math.isnan(means.loc["sage", "chameleon"])
    table = accuracy_table(RECORDS, "transductive", "sage")
    assert table.loc["cora", "SA-MLP"].startswith(f"{100 * means.loc['sa-mlp', 'cora']:.2f}")


def test_mean_accuracy_without_teacher_keeps_teacher_free_models():
    means = mean_accuracy(RECORDS, "transductive", None)
    assert "sa-mlp" not in means.index and "mlp" in means.index


def test_percent_style_formats_fractions_and_can_hide_the_index():
    frame = pd.DataFrame({"a": [0.12345, float("nan")], "b": [-0.01, 0.5]})
    html = percent_style(frame, decimals=1).to_html()
    assert "12.3%" in html and "50.0%" in html and "–" in html
    assert "+50.00%" in percent_style(frame, decimals=2, signed=True).to_html()
    hidden = percent_style(frame, index=False).to_html()
    assert "row_heading" not in hidden


def _tuning(dataset, candidates, model="sa-mlp"):
    return {"kind": "tuning", "dataset": dataset, "model": model, "teacher": "sage", "splits": [0, 1],
            "candidates": [{"overrides": o, "val_acc": v, "test_acc": v} for o, v in candidates]}


def test_tuning_records_and_sensitivity(tmp_path):
    (tmp_path / "tuning" / "cora").mkdir(parents=True)
    (tmp_path / "smoke").mkdir()
    grid = [({"beta": 0.5, "lr": 0.01}, 0.70), ({"beta": 0.5, "lr": 0.003}, 0.72), ({"beta": 2.0, "lr": 0.01}, 0.75)]
    (tmp_path / "tuning" / "cora" / "sa-mlp.json").write_text(json.dumps(_tuning("cora", grid)))
    fixed = [({"beta": 16.0, "tau": 1.0}, 0.9), ({"beta": 16.0, "tau": 4.0}, 0.8)]
    (tmp_path / "tuning" / "cora" / "sa-mlp.distillation.json").write_text(json.dumps(_tuning("cora", fixed)))
    (tmp_path / "smoke" / "x.json").write_text(json.dumps(_tuning("cora", grid)))
    (tmp_path / "other.json").write_text(json.dumps({"kind": "accuracy"}))
    tuning = load_tuning_records(tmp_path)
    assert len(tuning) == 2 and all("_path" in r for r in tuning)

    beta = sensitivity_table(tuning, "beta")
    assert list(beta.index) == [0.5, 2.0] and beta.index.name == "beta"   # the fixed beta=16 record is left out
    assert beta.loc[0.5, "cora"] == pytest.approx(0.72) and beta.loc[2.0, "cora"] == pytest.approx(0.75)
    tau = sensitivity_table(tuning, "tau")
    assert tau.loc[1.0, "cora"] == pytest.approx(0.9)
    assert sensitivity_table(tuning, "hidden").empty
    assert sensitivity_table(tuning, "beta", model="glnn").empty
    assert load_tuning_records(tmp_path / "absent") == []
