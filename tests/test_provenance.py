"""Provenance that pins the code and the data: graph fingerprints, held-out sets, dirty files."""
import subprocess

import pytest
import torch

from samlp_lite import records
from samlp_lite.data import make_csbm, make_graph
from samlp_lite.runs.experiment import run_student, run_teacher

FAST = {"max_epochs": 30, "patience": 30, "hidden": 16}


def _relabelled(graph, name):
    """Same name and shape, labels rotated: a different graph a name-keyed cache would confuse."""
    y = (graph.data.y + 1) % graph.num_classes
    return make_graph(name, graph.data.x, y, graph.data.edge_index, graph.splits, source="test")


def test_an_edited_graph_with_the_same_name_never_reuses_a_teacher(tmp_cache):
    first = make_csbm(num_nodes=200, num_classes=3, num_features=8, homophily=0.9, seed=1, name="mine")
    second = _relabelled(first, "mine")
    assert first.fingerprint != second.fingerprint and first.fingerprint == make_csbm(
        num_nodes=200, num_classes=3, num_features=8, homophily=0.9, seed=1, name="mine").fingerprint
    a = run_teacher(first, "sage", splits="0", overrides=FAST, progress=False, echo=lambda s: None)
    b = run_teacher(second, "sage", splits="0", overrides=FAST, progress=False, echo=lambda s: None)
    assert a["from_cache"] == [False] and b["from_cache"] == [False]
    assert a["graph_fingerprint"] == first.fingerprint and b["graph_fingerprint"] == second.fingerprint
    again = run_teacher(first, "sage", splits="0", overrides=FAST, progress=False, echo=lambda s: None)
    assert again["from_cache"] == [True] and again["test_acc"] == a["test_acc"]


def test_records_name_the_teacher_entry_and_the_code_that_trained_it(tmp_cache):
    graph = make_csbm(num_nodes=150, num_classes=3, num_features=8, seed=2)
    record = run_student(graph, "glnn", "sage", splits="0", overrides=FAST, teacher_overrides=FAST,
                         progress=False, echo=lambda s: None)
    entry = record["teacher_entries"][0]
    assert entry["path"].startswith(str(tmp_cache)) and entry["code"]["sources"] == records.sources_hash()[:16]
    assert record["provenance"]["sources"] == records.sources_hash()[:16]


def test_a_student_whose_held_out_set_differs_from_its_teachers_fails_loudly(tmp_cache):
    graph = make_csbm(num_nodes=200, num_classes=3, num_features=8, seed=3)
    run_student(graph, "glnn", "sage", splits="0", setting="inductive", overrides=FAST, teacher_overrides=FAST,
                progress=False, echo=lambda s: None)
    with pytest.raises(ValueError, match="held-out nodes differ"):
        run_student(graph, "glnn", "sage", splits="0", setting="inductive", overrides={**FAST, "seed": 5},
                    teacher_overrides=FAST, progress=False, echo=lambda s: None)


def test_multi_split_runs_report_each_split_and_resumed_ones(tmp_cache, tmp_path):
    graph = make_csbm(num_nodes=150, num_classes=3, num_features=8, num_splits=3, seed=4)
    lines: list[str] = []
    path = tmp_path / "results" / "mlp.json"
    run_student(graph, "mlp", splits="0-1", overrides=FAST, json_path=path, progress=False, echo=lines.append)
    assert [line.split(":")[0] for line in lines if " done:" in line] == ["split 0 done", "split 1 done"]
    lines.clear()
    records.SplitCheckpoint(path, "unused")  # reading a checkpoint never changes it
    path.with_name(path.name + ".partial.json").write_text(path.with_name("x").name)  # garbage: ignored
    run_student(graph, "mlp", splits="0-1", overrides=FAST, json_path=path, progress=False, echo=lines.append)
    assert not any(line.startswith("resuming") for line in lines)
    checkpoint = records.SplitCheckpoint(path, "x")  # a stale fingerprint: nothing reused
    assert checkpoint.done == {}


def test_split_checkpoint_resumes_only_the_same_code(tmp_path):
    record = tmp_path / "r.json"
    here = {"commit": "a" * 40, "sources": "1" * 16}
    records.SplitCheckpoint(record, "fp", code=here).save(0, {"test_acc": 0.5})
    assert records.SplitCheckpoint(record, "fp", code=here).done == {0: {"test_acc": 0.5}}
    other = records.SplitCheckpoint(record, "fp", code={**here, "sources": "2" * 16})
    assert other.done == {} and "made by other code" in other.stale and "sources 1111" in other.stale
    assert records.SplitCheckpoint(record, "another fingerprint", code=here).stale is None
    record.with_name("r.json.partial.json").write_text('{"fingerprint": "fp", "splits": {"0": {}}}')
    legacy = records.SplitCheckpoint(record, "fp", code=here)  # written before checkpoints named their code
    assert legacy.done == {} and "no code version" in legacy.stale
    assert records.checkpoint_code()["sources"] == records.sources_hash()[:16]


def test_a_run_sets_a_checkpoint_of_other_code_aside_and_says_so(tmp_cache, tmp_path, monkeypatch):
    graph = make_csbm(num_nodes=150, num_classes=3, num_features=8, num_splits=2, seed=4)
    path = tmp_path / "mlp.json"
    save = records.SplitCheckpoint.save

    def stop_after_first(self, split, metrics):
        save(self, split, metrics)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(records.SplitCheckpoint, "save", stop_after_first)
        with pytest.raises(KeyboardInterrupt):
            run_student(graph, "mlp", splits="0-1", overrides=FAST, json_path=path, progress=False,
                        echo=lambda s: None)
    partial = path.with_name("mlp.json.partial.json")
    saved = records.read_json(partial)
    assert list(saved["splits"]) == ["0"] and saved["code"] == records.checkpoint_code()
    records.write_json_atomic(partial, {**saved, "code": {"commit": "0" * 40, "sources": "0" * 16}})
    lines: list[str] = []
    record = run_student(graph, "mlp", splits="0-1", overrides=FAST, json_path=path, progress=False,
                         echo=lines.append)
    assert any("made by other code" in line for line in lines)
    assert not any(line.startswith("resuming") for line in lines)
    assert record["splits"] == [0, 1] and not partial.exists()


def test_dirty_check_looks_at_code_not_results(tmp_path):
    repo = tmp_path / "repo"
    (repo / "samlp_lite").mkdir(parents=True)
    (repo / "results").mkdir()
    (repo / "samlp_lite" / "a.py").write_text("x = 1\n")
    (repo / "results" / "r.json").write_text("{}\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    (repo / "results" / "r.json").write_text('{"a": 1}\n')
    assert records.dirty_files(repo) == [] and not records.git_commit(repo).endswith("-dirty")
    (repo / "samlp_lite" / "a.py").write_text("x = 2\n")
    assert records.dirty_files(repo) == ["samlp_lite/a.py"] and records.git_commit(repo).endswith("-dirty")


def test_graph_fingerprint_covers_features_edges_and_splits():
    graph = make_csbm(num_nodes=60, num_classes=2, num_features=4, seed=0)
    x = graph.data.x.clone()
    x[0, 0] += 1.0
    changed = make_graph(graph.name, x, graph.data.y, graph.data.edge_index, graph.splits, source="t")
    keep = (graph.data.edge_index != 0).all(dim=0)  # node 0 loses its edges
    fewer_edges = make_graph(graph.name, graph.data.x, graph.data.y, graph.data.edge_index[:, keep], graph.splits,
                             source="t")
    assert len({graph.fingerprint, changed.fingerprint, fewer_edges.fingerprint}) == 3
    assert torch.equal(graph.data.x, make_csbm(num_nodes=60, num_classes=2, num_features=4, seed=0).data.x)


def test_a_resumed_run_lists_the_splits_it_reuses(tmp_cache, tmp_path, monkeypatch):
    from samlp_lite.train import distill

    graph = make_csbm(num_nodes=120, num_classes=3, num_features=8, num_splits=3, seed=5)
    target = tmp_path / "mlp.json"
    original = distill.train_student_on_split

    def interrupted_on_split_2(graph, student, split, *args, **kwargs):
        if split == 2:
            raise KeyboardInterrupt
        return original(graph, student, split, *args, **kwargs)

    monkeypatch.setattr(distill, "train_student_on_split", interrupted_on_split_2)
    with pytest.raises(KeyboardInterrupt):
        run_student(graph, "mlp", splits="0-2", overrides=FAST, json_path=target, progress=False, echo=lambda s: None)
    monkeypatch.setattr(distill, "train_student_on_split", original)
    lines: list[str] = []
    run_student(graph, "mlp", splits="0-2", overrides=FAST, json_path=target, progress=False, echo=lines.append)
    assert any(line.startswith("resuming: reusing finished split(s) 0, 1") for line in lines), lines
    assert [line.split(":")[0] for line in lines if " done:" in line] == ["split 2 done"]
