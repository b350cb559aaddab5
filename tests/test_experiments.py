import json
from pathlib import Path

import pytest

from samlp_lite.data import make_csbm
from samlp_lite.records import record_path
from samlp_lite.runs.experiment import parse_splits, run_student, run_teacher


def test_parse_splits():
    assert parse_splits("0-2,5", 10) == [0, 1, 2, 5]
    assert parse_splits([3, 1, 3], 10) == [1, 3]
    with pytest.raises(ValueError, match="splits 0-4"):
        parse_splits("7", 5)
    with pytest.raises(ValueError, match="cannot read splits"):
        parse_splits("a-b", 5)


def test_smoke_records_never_land_on_paper_scale_paths(monkeypatch):
    monkeypatch.delenv("SAMLP_SMOKE", raising=False)
    assert record_path("results/a/b.json") == Path("results/a/b.json")
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    assert record_path("results/a/b.json") == Path("results/smoke/a/b.json")
    assert record_path("/x/results/smoke/b.json") == Path("/x/results/smoke/b.json")
    assert record_path("/tmp/other/b.json") == Path("/tmp/other/b.json")


def test_teacher_and_student_records_follow_method_section_8(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    graph = make_csbm(num_nodes=120, num_classes=3, avg_degree=6, num_features=8, num_splits=3)
    teacher = run_teacher(graph, "gcn", splits="0-1", json_path=tmp_path / "t.json", progress=False, echo=lambda s: None)
    student = run_student(graph, "sa-mlp", "gcn", splits="0-1", json_path=tmp_path / "s.json", progress=False,
                          echo=lambda s: None)
    inductive = run_student(graph, "sa-mlp", "gcn", splits="1", setting="inductive", progress=False,
                            echo=lambda s: None)
    on_disk = json.loads((tmp_path / "s.json").read_text())
    assert on_disk == json.loads(json.dumps(student))
    for record in (teacher, student):
        assert record["kind"] == "accuracy" and record["splits"] == [0, 1] and len(record["test_acc"]) == 2
        assert all(0 <= a <= 1 for a in record["test_acc"])
        assert {"command", "commit", "date", "machine", "device", "wall_s", "smoke"} <= set(record["provenance"])
        assert record["provenance"]["smoke"] is True
    assert teacher["teacher"] is None and student["teacher"] == "gcn" and student["model"] == "sa-mlp"
    assert {"tran_acc", "ind_acc", "prod_acc", "ind_isolated_acc"} <= set(inductive)
    assert "test_acc" not in inductive


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):

    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    graph = make_csbm(num_nodes=120, num_classes=3, avg_degree=6, num_features=8, num_splits=3)
    target = tmp_path / "glnn.json"
    from samlp_lite.train import distill

    calls = []
    original = distill.train_student_on_split

    def flaky(graph, student, split, *args, **kwargs):
        calls.append(split)
        if split == 2 and len(calls) == 3:
            raise KeyboardInterrupt
        return original(graph, student, split, *args, **kwargs)

    monkeypatch.setattr(distill, "train_student_on_split", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_student(graph, "glnn", "gcn", splits="0-2", json_path=target, progress=False, echo=lambda s: None)
    assert not target.exists() and target.with_name("glnn.json.partial.json").exists()
    record = run_student(graph, "glnn", "gcn", splits="0-2", json_path=target, progress=False, echo=lambda s: None)
    assert calls == [0, 1, 2, 2] and record["splits"] == [0, 1, 2] and len(record["test_acc"]) == 3
    assert target.exists() and not target.with_name("glnn.json.partial.json").exists()


@pytest.mark.parametrize("setting", ["transductive", "inductive"])
def test_mix_target_teacher_runs_with_the_cached_teacher_weights(tmp_path, monkeypatch, setting):
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    graph = make_csbm(num_nodes=120, num_classes=3, avg_degree=6, num_features=8, num_splits=1)
    record = run_student(graph, "sa-mlp", "gcn", splits="0", setting=setting, progress=False, echo=lambda s: None,
                         overrides={"mix_target": "teacher", "beta": 1.0, "mix_features": True})
    assert record["config"]["mix_target"] == "teacher"
    assert all(0 <= a <= 1 for a in record["val_acc"])


def test_compare_models_gives_one_row_per_job(tmp_path, monkeypatch):
    from samlp_lite.runs.experiment import compare_models

    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    graph = make_csbm(num_nodes=120, num_classes=3, avg_degree=6, num_features=8, num_splits=2)
    frame = compare_models(graph, [("teacher", "gcn", {}), ("sum", "sa-mlp-sum", {}), ("beta=2", "sa-mlp", {"beta": 2.0})],
                           teacher="gcn", splits="0-1", progress=False)
    assert frame["label"].tolist() == ["teacher", "sum", "beta=2"]
    assert all(len(v) == 2 for v in frame["test_acc"]) and frame["mean"].between(0, 1).all()
