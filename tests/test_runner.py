"""The grid runner: expansion, resume, availability and failure isolation (one real papermill run)."""
import json
from collections import Counter
from pathlib import Path

import pytest

from samlp_lite.records import checkpoint_code, write_json_atomic
from samlp_lite.runs import batch as runner
from samlp_lite.runs.batch import run_grid
from samlp_lite.runs.grid import (
    DONE,
    TO_RUN,
    UNAVAILABLE,
    Cell,
    cell_status,
    expand_grid,
    load_grid,
    models_on,
    record_problem,
    select_cells,
)


def test_paper_grid_expands_once_per_record():
    grid = load_grid("paper")
    cells = expand_grid(grid)
    ids = [c.id for c in cells]
    assert len(ids) == len(set(ids)) == 22 * 14 - 1  # 22 cells per dataset (both settings), 14 datasets; no GAT on tolokers
    per_model = Counter((c.model, c.teacher) for c in cells)
    # 14 datasets x 2 settings; no-KD students are not repeated per teacher
    assert per_model[("mlp", None)] == per_model[("linkx", None)] == 28
    assert per_model[("sage", None)] == per_model[("gcn", None)] == 28
    assert per_model[("appnp", None)] == 14 == per_model[("gat", None)] + 1  # transductive only; GAT skips tolokers
    assert "tolokers.transductive.gat" not in ids and "minesweeper.transductive.gat" in ids
    assert models_on(grid, "tolokers") == ["sage", "gcn", "appnp", "mlp", "glnn", "linkx", "sa-mlp-nomix", "sa-mlp"]
    for student in ("glnn", "sa-mlp-nomix", "sa-mlp"):
        assert per_model[(student, "sage")] == per_model[(student, "gcn")] == 28
    assert not any(c.setting == "inductive" and c.model in ("gat", "appnp") for c in cells)
    # within a dataset and setting, teacher cells come before the students that read them
    first = ids.index("cora.transductive.sage")
    assert first < ids.index("cora.transductive.sage.glnn") and ids[0] == "cora.transductive.sage"
    mlp = next(c for c in cells if c.id == "cora.inductive.mlp")
    assert mlp.teacher is None and mlp.source_teacher == "sage"
    # splits per dataset: ten Geom-GCN splits, LINKX's five for arxiv-year, OGB's one
    assert {c.dataset: c.splits for c in cells if c.model == "mlp"} == {
        **{d: "0-9" for d in grid.datasets}, "arxiv-year": "0-4", "ogbn-arxiv": "0", "ogbn-products": "0"}


def test_smoke_grid_and_selection():
    cells = expand_grid(load_grid("smoke"))
    assert len(cells) == 2 * 2 * 4
    assert {c.dataset for c in cells} == {"csbm", "csbm-hetero"} and {c.splits for c in cells} == {"0-1"}
    assert [c.id for c in select_cells(cells, ["csbm.inductive.*"])] == [
        "csbm.inductive.gcn", "csbm.inductive.mlp", "csbm.inductive.gcn.glnn", "csbm.inductive.gcn.sa-mlp"]


@pytest.mark.parametrize("text, message", [
    ("datasets: [cora]\nstudents: [mlp]\nsettings: [transductive]\nsplits: 0\ncolour: red\n", "unknown key"),
    ("datasets: [cora]\nstudents: [{model: mlp, skip_datasets: [coraa]}]\nsettings: [transductive]\nsplits: 0\n",
     "closest valid name is 'cora'"),
    ("datasets: [coraa]\nstudents: [mlp]\nsettings: [transductive]\nsplits: 0\n", "closest valid name is 'cora'"),
    ("datasets: [cora]\nstudents: [glnn]\nsettings: [transductive]\nsplits: 0\n", "needs a teacher"),
    ("datasets: [cora]\nteachers: [gcn]\nstudents: [gcn, mlp]\nsettings: [online]\nsplits: 0\n", "unknown setting"),
    ("datasets: [cora]\nteachers: [gcn]\nstudents: [gcn]\nsettings: [transductive]\nsplits: a-b\n", "cannot read splits"),
    ("datasets: [cora, squirrel]\nteachers: [gcn]\nstudents: [gcn]\nsettings: [transductive]\nsplits: {cora: 0}\n",
     "needs a 'default' entry for \\['squirrel'\\]"),
])
def test_bad_grids_are_rejected_with_the_fix(tmp_path, text, message):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_grid(path)
    with pytest.raises(FileNotFoundError, match="paper, smoke"):
        load_grid("no-such-grid")


def test_unavailable_datasets_are_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLP_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMLP_OFFLINE", "1")
    cora = Cell("cora", "mlp", "transductive", None, "0-9", "sage")
    csbm = Cell("csbm", "mlp", "transductive", None, "0-9", "sage")
    assert cell_status(cora, tmp_path / "results").state == UNAVAILABLE
    assert "not available offline" in cell_status(cora, tmp_path / "results").note
    assert cell_status(csbm, tmp_path / "results").state == TO_RUN
    report = run_grid([cora], runs_dir=tmp_path / "runs", results_root=tmp_path / "results", progress=False,
                      echo=lambda s: None)
    assert report.unavailable == ["cora.transductive.mlp"] and report.ok and not report.done


def _record(cell: Cell, splits: list[int], smoke: bool = True, **extra) -> dict:
    return {"kind": "accuracy", "dataset": cell.dataset, "model": cell.model, "teacher": cell.teacher,
            "setting": cell.setting, "splits": splits, "val_acc": [0.5] * len(splits),
            "test_acc": [0.6] * len(splits), "config": {"lr": 0.01}, "provenance": {"smoke": smoke}, **extra}


def test_a_record_completes_a_cell_only_when_valid(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    cell = Cell("csbm", "glnn", "transductive", "gcn", "0-1", "gcn", overrides={"lr": 0.01})
    path = cell.record_path(tmp_path / "results")
    assert path == tmp_path / "results" / "smoke" / "transductive" / "csbm" / "gcn" / "glnn.json"
    assert record_problem(path, cell) == "no record"
    write_json_atomic(path, _record(cell, [0, 1]))
    assert record_problem(path, cell) is None and cell_status(cell, tmp_path / "results").state == DONE
    write_json_atomic(path, _record(cell, [0]))
    assert "splits [0], expected [0, 1]" in record_problem(path, cell)
    write_json_atomic(path, {**_record(cell, [0, 1]), "config": {"lr": 0.1}})
    assert "lr=0.1, the grid sets 0.01" in record_problem(path, cell)
    write_json_atomic(path, {**_record(cell, [0, 1]), "config": {"lr": 0.01, "hidden": 3}})
    assert "hidden=3, the config now resolves to" in record_problem(path, cell)  # e.g. a re-tuned YAML
    write_json_atomic(path, {**_record(cell, [0, 1]), "teacher_config": {"hidden": 3}})
    assert "teacher's hidden=3" in record_problem(path, cell)
    write_json_atomic(path, {**_record(cell, [0, 1]), "test_acc": [0.6]})
    assert "test_acc" in record_problem(path, cell)
    write_json_atomic(path, _record(cell, [0, 1], smoke=False))
    assert "smoke" in record_problem(path, cell)
    path.write_text('{"kind": "accuracy", "dataset"')  # a torn file (not written by write_json_atomic)
    status = cell_status(cell, tmp_path / "results")
    assert status.state == TO_RUN and "unreadable" in status.note
    partial = path.with_name("glnn.json.partial.json")
    write_json_atomic(partial, {"fingerprint": "x", "code": checkpoint_code(), "splits": {"0": {}}})
    assert "resumes from a checkpoint with 1 split(s) done" in cell_status(cell, tmp_path / "results").note
    write_json_atomic(partial, {"fingerprint": "x", "code": {"commit": "0" * 40, "sources": "f" * 16},
                                "splits": {"0": {}}})
    assert "done by other code is set aside" in cell_status(cell, tmp_path / "results").note


@pytest.mark.slow
def test_grid_run_isolates_a_failure_reruns_a_corrupt_record_and_resumes(tmp_path, monkeypatch):
    """Two cells through papermill in parallel: one fails (unknown dataset), the other completes."""
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
    results, runs = tmp_path / "results", tmp_path / "runs"
    good = Cell("csbm", "mlp", "transductive", None, "0", "gcn", overrides={"max_epochs": 3})
    bad = Cell("no-such-graph", "mlp", "transductive", None, "0", "gcn")
    good.record_path(results).parent.mkdir(parents=True)
    good.record_path(results).write_text("{not json")  # a corrupt record is not "done": the cell reruns
    events: list[str] = []
    report = run_grid([bad, good], runs_dir=runs, results_root=results, jobs=2, progress=False,
                      echo=events.append, command=lambda cell: f"samlp-lite reproduce --only {cell.id}")
    assert report.done == [good.id] and list(report.failed) == [bad.id] and not report.interrupted
    assert "unknown dataset 'no-such-graph'" in report.failed[bad.id]
    record = json.loads(good.record_path(results).read_text())
    assert record["splits"] == [0] and record["config"]["max_epochs"] == 3
    assert record["provenance"]["command"] == f"samlp-lite reproduce --only {good.id}"
    log = (runs / "failures.log").read_text()
    assert f"FAILED {bad.id}" in log and "unknown dataset" in log
    assert (runs / f"{good.id}.ipynb").is_file() and (runs / f"{bad.id}.failed.ipynb").is_file()
    assert not list(runs.glob(".*tmp*")) and not (runs / f"{bad.id}.ipynb").exists()
    # the kernel ran this interpreter and this checkout's package
    outputs = "".join("".join(o.get("text", "")) for c in json.loads((runs / f"{good.id}.ipynb").read_text())["cells"]
                      for o in c.get("outputs", []))
    import sys

    import samlp_lite
    assert f"from {Path(samlp_lite.__file__).parent};" in outputs and f"python {sys.executable}" in outputs
    # re-running skips the finished cell without starting anything
    monkeypatch.setattr(runner.subprocess, "Popen", lambda *a, **k: pytest.fail("nothing should run"))
    again = run_grid([good], runs_dir=runs, results_root=results, progress=False, echo=events.append)
    assert again.skipped == [good.id] and not again.done and again.ok
    assert f"skip     {good.id} (record complete)" in events


def test_kernel_threads_follow_samlp_threads(monkeypatch):
    monkeypatch.delenv("SAMLP_THREADS", raising=False)
    assert runner.threads_per_job(10**6) == 1
    monkeypatch.setenv("SAMLP_THREADS", "3")
    assert runner.threads_per_job(1) == 3 and runner.threads_per_job(8) == 3
