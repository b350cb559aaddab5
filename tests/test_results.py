"""Result tables from synthetic record files: values, ordering, mean ± std, smoke and latency records kept apart."""
import csv

import pandas as pd
import pytest

from samlp_lite.cli import main
from samlp_lite.records import latency_records, load_records, write_json_atomic
from samlp_lite.report.tables import (
    accuracy_table,
    format_mean_std,
    latency_table,
    per_split_figure,
    per_split_table,
    results_markdown,
    summary_frame,
    to_markdown,
)


def _acc(dataset, model, teacher, test, setting="transductive", splits=None, **extra):
    splits = splits if splits is not None else list(range(len(test)))
    metrics = {"test_acc": test} if setting == "transductive" else {
        "tran_acc": test, "ind_acc": [a - 0.1 for a in test], "prod_acc": [a - 0.02 for a in test]}
    return {"kind": "accuracy", "dataset": dataset, "model": model, "teacher": teacher, "setting": setting,
            "splits": splits, "val_acc": test, **metrics, "config": {},
            "provenance": {"date": "2026-01-01T00:00:00+00:00", "smoke": False, "commit": "abc"}, **extra}


@pytest.fixture
def results_root(tmp_path):
    root = tmp_path / "results"
    put = lambda rel, rec: write_json_atomic(root / rel, rec)  # noqa: E731
    put("transductive/chameleon/sage.json", _acc("chameleon", "sage", None, [0.60, 0.64]))
    put("transductive/chameleon/mlp.json", _acc("chameleon", "mlp", None, [0.45, 0.47]))
    put("transductive/chameleon/sage/sa-mlp.json", _acc("chameleon", "sa-mlp", "sage", [0.70, 0.72]))
    put("transductive/cora/sage.json", _acc("cora", "sage", None, [0.80, 0.90]))
    put("transductive/cora/mlp.json", _acc("cora", "mlp", None, [0.75, 0.75]))
    put("transductive/cora/sage/glnn.json", _acc("cora", "glnn", "sage", [0.81, 0.83]))
    put("transductive/cora/gcn/glnn.json", _acc("cora", "glnn", "gcn", [0.10, 0.10]))  # other teacher's table
    # a second record of the same cell with fewer splits: the fuller one wins
    put("teachers/cora-sage.json", _acc("cora", "sage", None, [0.5]))
    put("inductive/cora/sage/sa-mlp.json", _acc("cora", "sa-mlp", "sage", [0.80, 0.84], setting="inductive",
                                                 ind_isolated_acc=[0.60, 0.62]))
    put("inductive/cora/mlp.json", _acc("cora", "mlp", None, [0.70, 0.70], setting="inductive"))
    put("smoke/transductive/cora/mlp.json", _acc("cora", "mlp", None, [0.33]))
    put("transductive/cora/sage/sa-mlp.json.partial.json", {"fingerprint": "x", "splits": {}})
    put("latency/cora.json", {"kind": "latency", "graph": "cora", "device": "cpu", "threads": 2,
                              "rows": [{"model": "mlp", "gather": "features", "batch_size": 1, "median_ms": 0.1}]})
    put("tuning/notes.json", {"something": "else"})
    return root


def test_format_mean_std_is_percent_with_population_std():
    assert format_mean_std([0.8, 0.9]) == "85.00 ± 5.00"
    assert format_mean_std([0.75]) == "75.00 ± 0.00"
    assert format_mean_std([]) == "–"


def test_load_records_skips_smoke_checkpoints_and_latency(results_root):
    records = load_records(results_root)
    assert len(records) == 10 and all(r["kind"] == "accuracy" for r in records)
    assert not any("/smoke/" in r["_path"][len(str(results_root)):] or r["_path"].endswith(".partial.json")
                   for r in records)
    smoke = load_records(results_root, smoke=True)
    assert [r["test_acc"] for r in smoke] == [[0.33]]
    assert [r["graph"] for r in latency_records(results_root)] == ["cora"]
    assert latency_table(latency_records(results_root)).loc[0, "median_ms"] == 0.1
    (results_root / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        load_records(results_root)


def test_transductive_table_values_columns_and_order(results_root):
    table = accuracy_table(load_records(results_root), "transductive", "sage")
    assert list(table.columns) == ["SAGE", "MLP", "GLNN", "LINKX", "SA-MLP w/o mixing", "SA-MLP"]
    assert list(table.index) == ["cora", "chameleon"]  # registry order, not alphabetical
    assert table.loc["cora", "SAGE"] == "85.00 ± 5.00"  # the 2-split record, not the 1-split duplicate
    assert table.loc["cora", "MLP"] == "75.00 ± 0.00"
    assert table.loc["cora", "GLNN"] == "82.00 ± 1.00"  # the SAGE-taught GLNN, not the GCN one
    assert table.loc["cora", "LINKX"] == "–" and table.loc["cora", "SA-MLP"] == "–"
    assert table.loc["chameleon", "SA-MLP"] == "71.00 ± 1.00"
    gcn = accuracy_table(load_records(results_root), "transductive", "gcn")
    assert gcn.loc["cora", "GLNN"] == "10.00 ± 0.00" and gcn.loc["cora", "GCN"] == "–"
    assert gcn.loc["cora", "MLP"] == "75.00 ± 0.00"  # MLP has no teacher: shared by every table


def test_inductive_table_has_tran_ind_prod_and_isolated_rows(results_root):
    table = accuracy_table(load_records(results_root), "inductive", "sage")
    assert list(table.index) == [("cora", "tran"), ("cora", "ind"), ("cora", "prod"), ("cora", "ind, isolated")]
    assert table.loc[("cora", "tran"), "SA-MLP"] == "82.00 ± 2.00"
    assert table.loc[("cora", "ind"), "SA-MLP"] == "72.00 ± 2.00"
    assert table.loc[("cora", "prod"), "MLP"] == "68.00 ± 0.00"
    assert table.loc[("cora", "ind, isolated"), "SA-MLP"] == "61.00 ± 1.00"
    assert table.loc[("cora", "ind, isolated"), "MLP"] == "–"
    one = accuracy_table(load_records(results_root), "inductive", "sage", metric="prod_acc")
    assert list(one.index) == ["cora"] and one.loc["cora", "SA-MLP"] == "80.00 ± 2.00"


def test_markdown_and_summary(results_root):
    df = pd.DataFrame([["85.00 ± 5.00", "–"]], index=pd.Index(["cora"], name="dataset"), columns=["SAGE", "MLP"])
    assert to_markdown(df) == ("| dataset | SAGE | MLP |\n|:---|---:|---:|\n| cora | 85.00 ± 5.00 | – |")
    records = load_records(results_root)
    text = results_markdown(records)
    assert text.index("### Transductive, teacher GCN") < text.index("### Transductive, teacher SAGE") < text.index(
        "### Inductive, teacher SAGE")
    assert "over 1-2 splits" in text and "| cora | 85.00 ± 5.00 | 75.00 ± 0.00 | 82.00 ± 1.00 |" in text
    summary = summary_frame(records)
    row = summary[(summary.dataset == "cora") & (summary.model == "glnn") & (summary.teacher == "sage")
                  & (summary.metric == "test_acc")].iloc[0]
    assert (row["mean"], row["std"], row["num_splits"]) == (82.0, 1.0, 2)


def test_results_command_writes_markdown_and_csv(results_root, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SAMLP_SMOKE", raising=False)  # paper-scale records; smoke mode would read results/smoke
    md, table_csv = tmp_path / "out" / "tables.md", tmp_path / "out" / "summary.csv"
    assert main(["results", "--root", str(results_root), "--setting", "transductive", "--teacher", "sage",
                 "--markdown", str(md), "--csv", str(table_csv)]) == 0
    printed = capsys.readouterr().out
    assert "1 latency records" in printed and "### Transductive, teacher SAGE" in printed and "Inductive" not in printed
    assert md.read_text().startswith("### Transductive, teacher SAGE")
    rows = list(csv.DictReader(table_csv.open()))
    assert {r["setting"] for r in rows} == {"transductive"} and any(r["model"] == "sa-mlp" for r in rows)
    assert main(["results", "--root", str(results_root), "--smoke"]) == 0
    assert "33.00 ± 0.00" in capsys.readouterr().out


def test_per_split_views():
    record = _acc("cora", "glnn", "sage", [0.8, 0.9], splits=[3, 7])
    table = per_split_table(record)
    assert list(table.index) == [3, 7, "mean ± std"] and table.loc[7, "test_acc"] == 90.0
    assert table.loc["mean ± std", "test_acc"] == "85.00 ± 5.00"
    fig = per_split_figure(_acc("cora", "sa-mlp", "sage", [0.8, 0.9], setting="inductive"))
    assert len(fig.axes[0].patches) == 6  # tran, ind, prod for two splits


def test_table_frame_is_the_long_form_of_the_table(results_root):
    from samlp_lite.report.tables import table_frame

    frame = table_frame(load_records(results_root), "transductive", "sage")
    cora = frame[frame.dataset == "cora"].set_index("model")
    assert cora.loc["SAGE", "test_acc"] == pytest.approx(0.85) and cora.loc["GLNN", "test_acc"] == pytest.approx(0.82)
    assert "LINKX" not in cora.index
    assert list(frame.columns) == ["dataset", "model", "test_acc", "std"]


def test_latency_records_keep_cpu_and_gpu_timings_apart(tmp_path):
    from samlp_lite.records import write_json_atomic

    for device, folder in [("cpu", "latency"), ("cuda:0", "latency/cuda")]:
        write_json_atomic(tmp_path / folder / "cora.json", {"kind": "latency", "graph": "cora", "num_nodes": 5,
                                                            "device": device, "rows": []})
    assert len(latency_records(tmp_path)) == 2
    assert [r["device"] for r in latency_records(tmp_path, device="cpu")] == ["cpu"]
    assert [r["device"] for r in latency_records(tmp_path, device="cuda")] == ["cuda:0"]


def test_latency_ratio_table_orders_graphs_by_size_and_batches_numerically():
    import pandas as pd

    from samlp_lite.report.tables import RATIO_NAMES, latency_ratio_table

    ratios = pd.DataFrame([{"graph": g, "num_nodes": n, "batch": b, "sa_mlp_over_mlp": r, "sage_full_over_sa_mlp": 10 * r}
                           for g, n in [("big", 1000), ("small", 10)] for b, r in [("all", 3.0), ("256", 2.0), ("1", 1.0)]])
    table = latency_ratio_table(ratios)
    assert list(table.index.get_level_values("graph")) == ["small", "big"]
    assert list(table[RATIO_NAMES["sa_mlp_over_mlp"]].columns) == ["1", "256", "all"]
    assert table.loc[("big", 1000), (RATIO_NAMES["sage_full_over_sa_mlp"], "256")] == 20.0


def test_binary_graphs_are_tabulated_in_roc_auc():
    records = [_acc("minesweeper", "mlp", None, [0.80, 0.80], test_roc_auc=[0.50, 0.52]),
               _acc("minesweeper", "mlp", None, [0.80, 0.80], setting="inductive", tran_roc_auc=[0.6, 0.6],
                    ind_roc_auc=[0.55, 0.55], prod_roc_auc=[0.59, 0.59]),
               _acc("cora", "mlp", None, [0.75, 0.75])]
    table = accuracy_table(records, "transductive", "sage")
    assert table.loc["minesweeper (ROC AUC)", "MLP"] == "51.00 ± 1.00" and table.loc["cora", "MLP"] == "75.00 ± 0.00"
    inductive = accuracy_table(records, "inductive", "sage")
    assert inductive.loc[("minesweeper (ROC AUC)", "ind"), "MLP"] == "55.00 ± 0.00"
    assert accuracy_table(records, "transductive", "sage", metric="test_acc").loc["minesweeper", "MLP"] == "80.00 ± 0.00"
    from samlp_lite.report.tables import table_frame

    frame = table_frame(records, "transductive", "sage").set_index("dataset")
    assert frame.loc["minesweeper (ROC AUC)", "test_acc"] == pytest.approx(0.51)
