"""``samlp-lite reproduce --backend ray``: the GPU rule, the missing-extra error, and (with Ray installed) the
same records as the process pool, failure isolation, and a resume after the driver is killed.

The tests that run cells need Ray (the ``[cluster]`` extra) and share one local Ray instance.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from samlp_lite.cli import main
from samlp_lite.runs.batch import run_grid
from samlp_lite.runs.cluster import GPU_DATASETS, gpus_for, run_grid_ray
from samlp_lite.runs.grid import (
    DONE,
    Cell,
    cell_status,
    expand_grid,
    load_grid,
    select_cells,
)


def test_the_big_ogb_graphs_ask_for_a_gpu():
    cells = expand_grid(load_grid("paper"))
    assert {c.dataset for c in cells if gpus_for(c)} == set(GPU_DATASETS) == {"ogbn-arxiv", "arxiv-year",
                                                                             "ogbn-products"}
    assert gpus_for(Cell("cora", "sage", "transductive", None, "0")) == 0


def test_the_ray_backend_without_ray_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the extra
    code = main(["reproduce", "--grid", "smoke", "--backend", "ray", "--only", "csbm.transductive.mlp",
                 "--results", str(tmp_path / "results"), "--runs", str(tmp_path / "runs")])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2 and errors == ['samlp-lite reproduce: error: the ray backend needs Ray, an optional extra: '
                                    'pip install -e ".[cluster]"']
    assert not (tmp_path / "runs").exists()


def test_an_address_needs_the_ray_backend(capsys):
    assert main(["reproduce", "--grid", "smoke", "--address", "head:6379"]) == 2
    assert "--address names a Ray cluster: add --backend ray" in capsys.readouterr().err


# --------------------------------------------------------------------------- with Ray

@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs) for the tests of this module."""
    ray = pytest.importorskip("ray")
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()


WALL_KEYS = ("provenance", "teacher_entries")  # where and when, not what


def _comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in WALL_KEYS and "wall_s" not in k}


@pytest.mark.slow
def test_ray_writes_the_records_of_the_process_pool_and_isolates_a_failure(local_ray, tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    monkeypatch.setenv("SAMLP_THREADS", "1")
    cells = select_cells(expand_grid(load_grid("smoke")), ["csbm.transductive.*"])
    assert [c.id for c in cells] == ["csbm.transductive.gcn", "csbm.transductive.mlp",
                                     "csbm.transductive.gcn.glnn", "csbm.transductive.gcn.sa-mlp"]
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache-pool"))
    pool = run_grid(cells, runs_dir=tmp_path / "runs-pool", results_root=tmp_path / "results-pool", jobs=1,
                    progress=False, echo=lambda line: None)
    assert sorted(pool.done) == sorted(c.id for c in cells) and pool.ok

    bad_teacher = Cell("no-such-graph", "gcn", "transductive", None, "0")
    its_student = Cell("no-such-graph", "glnn", "transductive", "gcn", "0", "gcn")
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path / "cache-ray"))  # the teacher is trained again, not read
    events: list[str] = []
    runs = tmp_path / "runs-ray"
    report = run_grid_ray([bad_teacher, its_student, *cells], runs_dir=runs, results_root=tmp_path / "results-ray",
                          jobs=2, progress=False, echo=events.append,
                          command=lambda cell: f"samlp-lite reproduce --backend ray --only {cell.id}")
    assert sorted(report.done) == sorted(c.id for c in cells) and not report.interrupted
    assert list(report.failed) == [bad_teacher.id, its_student.id]
    assert "unknown dataset 'no-such-graph'" in report.failed[bad_teacher.id]
    assert report.failed[its_student.id] == f"not run: its teacher cell {bad_teacher.id} failed"
    log = (runs / "failures.log").read_text()
    assert f"FAILED {bad_teacher.id}" in log and f"FAILED {its_student.id}" in log
    # a student starts only after its teacher's cell is done
    assert events.index("submit   csbm.transductive.gcn.glnn") > next(
        i for i, e in enumerate(events) if e.startswith("done     csbm.transductive.gcn "))

    for cell in cells:
        mine = json.loads(cell.record_path(tmp_path / "results-ray").read_text())
        theirs = json.loads(cell.record_path(tmp_path / "results-pool").read_text())
        assert set(mine) == set(theirs), cell.id
        assert _comparable(mine) == _comparable(theirs), cell.id
        assert mine["provenance"]["command"] == f"samlp-lite reproduce --backend ray --only {cell.id}"
        assert (runs / f"{cell.id}.ipynb").is_file()
    assert not list(runs.glob(".*tmp*"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_a_killed_ray_run_resumes(local_ray, tmp_path):
    """The CLI starts its own local Ray; it is killed (SIGKILL) once a record is complete; the re-run skips the
    finished cells and completes the rest."""
    results, runs = tmp_path / "results", tmp_path / "runs"
    env = {**os.environ, "SAMLP_CACHE": str(tmp_path / "cache"), "SAMLP_THREADS": "1"}
    env.pop("SAMLP_SMOKE", None)
    command = [sys.executable, "-m", "samlp_lite", "reproduce", "--grid", "smoke", "--smoke", "--backend", "ray",
               "--jobs", "1", "--only", "csbm.transductive.*", "--results", str(results), "--runs", str(runs),
               "--quiet"]
    cells = select_cells(expand_grid(load_grid("smoke")), ["csbm.transductive.*"])
    with open(tmp_path / "driver.log", "w") as log:
        driver = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SAMLP_SMOKE", "1")
            while not any(cell_status(c, results).state == DONE for c in cells):
                assert driver.poll() is None, (tmp_path / "driver.log").read_text()
                assert time.monotonic() < deadline, "no record within 240 s"
                time.sleep(0.5)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        try:  # what the killed driver leaves behind (Ray's agents) is in its session
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 60  # the driver's Ray workers (named in their notebooks' temporary files) go too
    while any(_alive(int(tmp.name.rsplit("-", 1)[1].split(".")[0])) for tmp in runs.rglob(".*.tmp-*.ipynb")):
        assert time.monotonic() < deadline, "the killed run's workers are still running"
        time.sleep(0.5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAMLP_SMOKE", "1")
        patch.setenv("SAMLP_CACHE", str(tmp_path / "cache"))
        patch.setenv("SAMLP_THREADS", "1")
        done_before = [c.id for c in cells if cell_status(c, results).state == DONE]
        assert 1 <= len(done_before) < len(cells)
        events: list[str] = []
        again = run_grid_ray(cells, runs_dir=runs / "smoke" / "smoke", results_root=results, jobs=2, progress=False,
                             echo=events.append)
        assert again.ok and again.skipped == done_before
        assert sorted(again.done + again.skipped) == sorted(c.id for c in cells)
        assert all(cell_status(c, results).state == DONE for c in cells)
    assert not list((runs / "smoke" / "smoke").glob(".*tmp*"))
