"""Grid runs on a Ray cluster: every cell a Ray task running the same papermill execution as :mod:`~samlp_lite.runs.batch`.

``samlp-lite reproduce --backend ray [--address HOST:6379]`` lands here. Each cell still runs
``notebooks/experiment.ipynb`` through :func:`samlp_lite.runs.batch.execute_cell`, which writes
the record atomically; what changes is where: Ray places each cell on a host of the cluster with
a free CPU slot (and a free GPU for the cells that need one, see :func:`gpus_for`). Everything
else is the batch runner's: complete records are skipped, a half-done cell resumes from its
per-split checkpoint, a failed cell goes to ``failures.log`` while the others go on, a student
cell starts only once its teacher's cell has finished (:meth:`samlp_lite.runs.batch._Scheduler.dependency`),
and SIGINT/SIGTERM stop the running cells and leave a resumable state.

Without an address a local Ray instance is started for the run (``ray.init(num_cpus=...,
include_dashboard=False)``) and stopped after it. With one, the run joins that cluster; every
host needs this repository at the same path, the same Python environment and the data root,
as the cells run the notebook and the package there. The driver's ``SAMLP_*`` variables travel
with each cell. A finished cell's record and executed notebook are sent back to the driver,
which writes them under its own ``results/`` and ``runs/`` (through the same atomic write), so
hosts without a shared filesystem still leave every record where the driver expects it.

Ray is an optional extra: ``pip install -e ".[cluster]"``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import platform
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping, Sequence

from samlp_lite.records import write_text_atomic
from samlp_lite.runs.batch import (
    EXPERIMENT_NOTEBOOK,
    CellFailed,
    RunReport,
    _log_failure,
    _Scheduler,
    current_env_kernel,
    execute_cell,
    threads_per_job,
)
from samlp_lite.runs.grid import DONE, UNAVAILABLE, Cell, cell_status, record_problem

INSTALL_HINT = 'pip install -e ".[cluster]"'
GPU_DATASETS = frozenset({"ogbn-arxiv", "arxiv-year", "ogbn-products"})
"""Datasets whose cells ask Ray for one GPU: the OGB-sized graphs (169k to 2.4M nodes), the ones
the how-to's data table marks "recommended" or "yes" under "Needs a GPU". Every other cell asks
for none, and Ray hides the GPUs from it, so it runs on the CPU, where the small graphs are as fast."""
FORWARDED_ENV = ("SAMLP_SMOKE", "SAMLP_THREADS", "SAMLP_DATA", "SAMLP_CACHE", "SAMLP_OFFLINE")
"""Environment variables of the driver that every cell sees (when set)."""


class RayMissing(ImportError):
    """Ray is not installed; the message names the extra."""


def import_ray() -> Any:
    """``import ray``, or :class:`RayMissing` with a one-line message naming the ``[cluster]`` extra."""
    try:
        import ray
    except ImportError as err:
        raise RayMissing(f"the ray backend needs Ray, an optional extra: {INSTALL_HINT}") from err
    return ray


def gpus_for(cell: Cell) -> int:
    """GPUs a cell asks for: 1 when its dataset is one of :data:`GPU_DATASETS`, else 0."""
    return 1 if cell.dataset in GPU_DATASETS else 0


class ClusterUnreachable(ConnectionError):
    """The cluster at ``--address`` did not answer (or refused the token); the message says what to check."""


def connect(ray: Any, address: str) -> None:
    """Join the cluster at ``address``, with token authentication as ``ray start`` would use it.

    Ray 2.60 clusters started with ``ray start --head`` authenticate with a token when one exists
    (``~/.ray/auth_token``, ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``), but ``ray.init`` turns
    token mode on only when ``RAY_AUTH_MODE=token``; so this calls the function ``ray start``
    uses, which turns it on when a token is there (``RAY_AUTH_MODE`` set by hand still wins).
    """
    host, _, port = address.rpartition(":")
    if host and port.isdigit() and "://" not in address:  # Ray itself would retry for many minutes
        import socket

        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as err:
            raise ClusterUnreachable(f"no Ray cluster answers at {address} ({err.strerror or err}); start one with "
                                     "`ray start --head --port PORT` there, or drop --address for a local "
                                     "instance") from None
    try:  # what `ray start` does; private, hence the guard
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )

        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    except (ImportError, AttributeError, TypeError):
        pass
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, ray.exceptions.RayError) as err:
        text = f"{err} {err.__cause__ or ''}"
        why = ("it refused this host's token" if "InvalidAuthToken" in text or "Unauthenticated" in text
               else str(err).strip().splitlines()[0][:200])
        raise ClusterUnreachable(
            f"cannot join the Ray cluster at {address}: {why}; copy the head's ~/.ray/auth_token to this host "
            "(or set RAY_AUTH_TOKEN), and check that `ray start --head` runs there") from err


# --------------------------------------------------------------------------- one cell, on a worker

def run_cell_task(job: Mapping[str, Any]) -> dict[str, Any]:
    """Body of a cell's Ray task: :func:`~samlp_lite.runs.batch.execute_cell` in this worker; returns the outcome.

    Never raises for a failing notebook (the outcome says ``ok: False``); an interruption
    (``ray.cancel``) propagates. When the worker is not on the driver's host, the outcome
    carries the record's and executed notebook's text for the driver to write.
    """
    import ray

    start = time.perf_counter()
    node = ray.get_runtime_context().get_node_id()
    cell = Cell(**job["cell"])
    threads = str(job["threads"])
    os.environ.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    output = Path(job["output"])
    outcome: dict[str, Any] = {"ok": False}
    try:
        if not Path(job["notebook"]).is_file():
            raise FileNotFoundError(f"{job['notebook']} is not on host {platform.node()}: every host needs the "
                                    "repository at the same path as the driver")
        for stale in output.parent.glob(f".{cell.id}.tmp-*.ipynb"):
            stale.unlink()
        with current_env_kernel():
            execute_cell(cell, job["record"], output, notebook=job["notebook"], timeout=job["timeout"],
                         command=job["command"])
        outcome = {"ok": True}
        if node != job["driver_node"]:
            outcome["record_text"] = Path(job["record"]).read_text()
            outcome["notebook_text"] = output.read_text()
    except CellFailed as err:
        outcome = {"ok": False, "summary": err.summary, "details": err.details,
                   "notebook": str(err.notebook) if err.notebook else None}
    except Exception as err:  # noqa: BLE001 - reported to the driver, never lost
        outcome = {"ok": False, "summary": f"{type(err).__name__}: {err}", "details": ""}
    outcome.update(wall_s=round(time.perf_counter() - start, 1), node=node, host=platform.node())
    return outcome


# --------------------------------------------------------------------------- the grid, on the driver

def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_grid_ray(cells: Sequence[Cell], *, runs_dir: str | Path, results_root: str | Path = "results",
                 address: str | None = None, jobs: int = 1, notebook: str | Path = EXPERIMENT_NOTEBOOK,
                 timeout: float | None = None, command: Callable[[Cell], str] | None = None,
                 progress: bool = True, echo: Callable[[str], None] | None = None) -> RunReport:
    """Run every cell whose record is not complete as a Ray task; same arguments and report as
    :func:`~samlp_lite.runs.batch.run_grid`, plus ``address``.

    Args:
        address: a running cluster (``HOST:6379``, or ``auto``); ``None`` starts a local instance with
            ``jobs * threads`` CPUs, so ``jobs`` cells run at once as with the process pool. When Ray is
            already initialised in this process (tests), that instance is used and left running.
        jobs: parallel cells on a local instance (ignored with ``address``: the cluster's CPUs decide).

    Each cell takes ``T`` CPUs of the cluster and runs ``T`` threads: ``T`` is
    :func:`~samlp_lite.runs.batch.threads_per_job` locally, ``SAMLP_THREADS`` (default 1) on a cluster.
    """
    from tqdm import tqdm

    ray = import_ray()
    runs_dir, results_root = Path(runs_dir).resolve(), Path(results_root).resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    report = RunReport()
    pending: list[tuple[Cell, Path]] = []
    for cell in cells:
        status = cell_status(cell, results_root)
        if status.state == DONE:
            report.skipped.append(cell.id)
        elif status.state == UNAVAILABLE:
            report.unavailable.append(cell.id)
        else:
            pending.append((cell, status.record))
    bar = tqdm(total=len(report.skipped) + len(pending), initial=len(report.skipped), unit="cell", desc="cells",
               disable=not progress, dynamic_ncols=True, file=sys.stderr)
    say = echo or bar.write
    for cell_id in report.skipped:
        say(f"skip     {cell_id} (record complete)")
        _remove_dead_writers_notebooks(runs_dir, cell_id)
    if not pending:
        bar.close()
        return report

    from samlp_lite.runtime import thread_override

    threads = threads_per_job(jobs) if address is None else (thread_override() or 1)
    started_here = not ray.is_initialized()
    if started_here:
        if address is None:  # a private instance: its token-auth notice is noise here
            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
            ray.init(num_cpus=max(1, jobs) * threads, include_dashboard=False, logging_level=logging.WARNING,
                     log_to_driver=False)
        else:
            connect(ray, address)
    resources = ray.cluster_resources()
    have_gpus = resources.get("GPU", 0) >= 1
    wanting = [c.id for c, _ in pending if gpus_for(c)]
    if wanting and not have_gpus:
        say(f"note: {len(wanting)} cell(s) of {', '.join(sorted(GPU_DATASETS))} want a GPU but the Ray cluster has "
            "none; they run on the CPU")
    driver_node = ray.get_runtime_context().get_node_id()
    env = {key: os.environ[key] for key in FORWARDED_ENV if os.environ.get(key)}
    env["SAMLP_THREADS"] = str(threads)
    task = ray.remote(run_cell_task)
    teacher_cells = {(c.dataset, c.setting, c.model): c.id for c, _ in pending if c.is_teacher}
    scheduler = SimpleNamespace(teacher_cells=teacher_cells)  # what _Scheduler.dependency reads
    running: dict[Any, tuple[Cell, Path, float]] = {}
    finished: set[str] = set()
    node_of: dict[str, str] = {}

    def submit(cell: Cell, record: Path, needed: str | None) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        job = {"cell": asdict(cell), "record": str(record), "output": str(runs_dir / f"{cell.id}.ipynb"),
               "notebook": str(Path(notebook).resolve()), "timeout": timeout,
               "command": command(cell) if command else "", "threads": threads, "driver_node": driver_node}
        options: dict[str, Any] = {"num_cpus": threads, "num_gpus": gpus_for(cell) if have_gpus else 0,
                                   "max_retries": 0, "runtime_env": {"env_vars": env}}
        if needed and node_of.get(needed):  # near the teacher's soft-label cache, where possible
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_of[needed], soft=True)
        running[task.options(**options).remote(job)] = (cell, record, time.perf_counter())
        say(f"submit   {cell.id}")

    def fail(cell_id: str, outcome: Mapping[str, Any]) -> None:
        finished.add(cell_id)
        report.failed[cell_id] = outcome["summary"]
        _log_failure(runs_dir / "failures.log", cell_id, outcome)
        say(f"FAILED   {cell_id} ({outcome.get('wall_s', 0)} s): {outcome['summary']}")
        bar.update()

    def collect(ref: Any) -> None:
        cell, record, started = running.pop(ref)
        try:
            outcome = ray.get(ref)
        except Exception as err:  # noqa: BLE001 - the worker died, the node went away...
            outcome = {"ok": False, "summary": f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300]}",
                       "details": str(err), "wall_s": round(time.perf_counter() - started, 1)}
        if outcome.get("record_text") is not None:
            if not record.exists() or record.read_text() != outcome["record_text"]:
                write_text_atomic(record, outcome["record_text"])
            write_text_atomic(runs_dir / f"{cell.id}.ipynb", outcome["notebook_text"])
        problem = record_problem(record, cell) if outcome["ok"] else None
        if problem:
            outcome = {**outcome, "ok": False, "summary": f"notebook ran but the record is incomplete: {problem}"}
        if not outcome["ok"]:
            fail(cell.id, outcome)
            return
        finished.add(cell.id)
        node_of[cell.id] = outcome.get("node", "")
        report.done.append(cell.id)
        where = f" on {outcome['host']}" if outcome.get("host") and outcome.get("node") != driver_node else ""
        say(f"done     {cell.id} ({outcome['wall_s']} s{where})")
        bar.update()

    def submit_ready() -> None:
        for item in list(pending):
            cell, record = item
            needed = _Scheduler.dependency(scheduler, cell)  # type: ignore[arg-type]
            if needed and needed not in finished:
                continue
            pending.remove(item)
            if needed in report.failed:
                fail(cell.id, {"summary": f"not run: its teacher cell {needed} failed", "wall_s": 0})
            else:
                submit(cell, record, needed)

    with contextlib.ExitStack() as stack:
        if started_here:
            stack.callback(ray.shutdown)
        try:
            previous = signal.signal(signal.SIGTERM, _raise_interrupt)
            stack.callback(signal.signal, signal.SIGTERM, previous)
        except ValueError:  # not the main thread: SIGTERM keeps its default
            pass
        try:
            while pending or running:
                submit_ready()
                if running:
                    ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                    for ref in ready:
                        collect(ref)
                bar.set_postfix_str(f"running {len(running)}, failed {len(report.failed)}", refresh=False)
        except KeyboardInterrupt:
            report.interrupted = True
            stopped = _stop(ray, running, runs_dir, report, say)
            say(f"interrupted: stopped {len(stopped)} running cell(s) ({', '.join(stopped) or 'none'}); their "
                "finished splits are checkpointed; run the same command again to resume")
        finally:
            bar.set_postfix_str(f"running 0, failed {len(report.failed)}")
            bar.close()
    return report


def _remove_dead_writers_notebooks(runs_dir: Path, cell_id: str) -> None:
    """Delete ``.<cell id>.tmp-<pid>.ipynb`` files whose writer is gone (a run killed after the record was
    complete but before papermill renamed the executed notebook); a live writer's file is kept."""
    for stale in runs_dir.glob(f".{cell_id}.tmp-*.ipynb"):
        pid = stale.name[len(f".{cell_id}.tmp-"):-len(".ipynb")]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            stale.unlink(missing_ok=True)
        except (ValueError, PermissionError):
            continue


def _stop(ray: Any, running: dict[Any, tuple[Cell, Path, float]], runs_dir: Path, report: RunReport,
          say: Callable[[str], None]) -> list[str]:
    """Cancel the running cells (KeyboardInterrupt in the task, so nbclient shuts its kernel down; killed
    after 20 s); return the ids of those left unfinished. A record completed meanwhile counts as done."""
    for ref in running:
        ray.cancel(ref, force=False)
    deadline = time.monotonic() + 20
    left = list(running)
    while left and time.monotonic() < deadline:
        _, left = ray.wait(left, num_returns=len(left), timeout=max(0.1, deadline - time.monotonic()))
    for ref in left:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)
    unfinished = []
    for cell, record, _ in running.values():
        for stale in runs_dir.glob(f".{cell.id}.tmp-*.ipynb"):
            stale.unlink()
        if record_problem(record, cell) is None:
            report.done.append(cell.id)
            say(f"done     {cell.id} (record completed while stopping; no executed notebook kept)")
        else:
            unfinished.append(cell.id)
    return unfinished
