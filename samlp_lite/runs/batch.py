"""Batch runs: papermill over a grid of experiments, with resume and failure isolation.

A grid (:mod:`samlp_lite.runs.grid`) expands into cells, one per result record; each cell is
run by executing ``notebooks/experiment.ipynb`` with papermill, which writes the record under
``results/`` (:func:`samlp_lite.records.default_record_path`) and leaves the executed
notebook under ``runs/``. A cell whose record is already complete is skipped, a half-done
cell resumes from its per-split checkpoint, and a failing cell is logged while the others go on.
``samlp-lite reproduce`` is the command-line front end.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from samlp_lite.records import PACKAGE_ROOT
from samlp_lite.runs.grid import DONE, UNAVAILABLE, Cell, cell_status, record_problem

EXPERIMENT_NOTEBOOK = PACKAGE_ROOT / "notebooks" / "experiment.ipynb"
KERNEL_NAME = "python3"
"""Kernel name papermill asks for; :func:`current_env_kernel` points it at this interpreter."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# --------------------------------------------------------------------------- one cell

class CellFailed(Exception):
    """A cell's notebook raised; ``summary`` is one line, ``details`` the traceback."""

    def __init__(self, summary: str, details: str = "", notebook: Path | None = None):
        super().__init__(summary)
        self.summary, self.details, self.notebook = summary, details, notebook


@contextlib.contextmanager
def current_env_kernel() -> Iterator[dict[str, str]]:
    """Make the ``python3`` kernel papermill starts run *this* interpreter (and its ``samlp_lite``).

    Writes a kernelspec whose command is ``sys.executable -m ipykernel_launcher`` into a
    temporary folder and puts that folder first on ``JUPYTER_PATH`` (restored on exit), so a
    ``python3`` kernelspec of another environment (e.g. in ``~/.local/share/jupyter``) cannot
    win. Yields the environment variables that child processes need to see the same kernel.
    """
    with tempfile.TemporaryDirectory(prefix="samlp-kernel-") as folder:
        spec_dir = Path(folder) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)", "language": "python",
                "metadata": {"debugger": True}}
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
        previous = os.environ.get("JUPYTER_PATH")
        value = os.pathsep.join([folder, *([previous] if previous else [])])
        os.environ["JUPYTER_PATH"] = value
        try:
            yield {"JUPYTER_PATH": value}
        finally:
            if previous is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = previous


def execute_cell(cell: Cell, record: str | Path, output: str | Path, *,
                 notebook: str | Path = EXPERIMENT_NOTEBOOK, timeout: float | None = None,
                 command: str = "") -> Path:
    """Run ``notebook`` with papermill for ``cell``; return the executed notebook's path.

    The executed notebook is written to a temporary file and renamed to ``output`` only when
    every notebook cell succeeded, so ``output`` is never half a run. On failure it is kept as
    ``<output stem>.failed.ipynb`` for inspection and :class:`CellFailed` is raised.

    Args:
        cell: the experiment.
        record: where the notebook writes the record (absolute, or relative to the notebook's folder).
        output: the executed notebook.
        notebook: the template (one ``parameters`` cell).
        timeout: seconds per notebook cell (``None``: no limit).
        command: provenance of the record, e.g. the ``samlp-lite reproduce`` line that re-creates it.
    """
    try:
        import papermill as pm
    except ImportError as err:  # a dev extra
        raise RuntimeError("papermill is not installed: pip install -e '.[dev]'") from err

    notebook, output = Path(notebook).resolve(), Path(output).resolve()
    if not notebook.is_file():
        raise FileNotFoundError(f"experiment notebook {notebook} not found; run from a clone of the "
                                "repository or pass --notebook")
    output.parent.mkdir(parents=True, exist_ok=True)
    failed = output.with_name(output.stem + ".failed.ipynb")
    tmp = output.with_name(f".{output.stem}.tmp-{os.getpid()}.ipynb")
    try:
        try:
            pm.execute_notebook(str(notebook), str(tmp), parameters=cell.parameters(record, command),
                                kernel_name=KERNEL_NAME, cwd=str(notebook.parent), progress_bar=False,
                                log_output=False, execution_timeout=timeout)
        except Exception as err:  # noqa: BLE001 - every failure of the run is the cell's failure
            if tmp.exists():
                os.replace(tmp, failed)
            ename = getattr(err, "ename", type(err).__name__)
            evalue = getattr(err, "evalue", str(err))
            trace = getattr(err, "traceback", None)
            details = "\n".join(_ANSI.sub("", line) for line in trace) if trace else str(err)
            summary = f"{ename}: {evalue}".strip().splitlines()[0] if evalue else ename
            raise CellFailed(summary[:500], details, failed if failed.exists() else None) from err
        os.replace(tmp, output)
        if failed.exists():
            failed.unlink()
    finally:
        if tmp.exists():
            tmp.unlink()
    return output


def _worker(job_file: str) -> int:
    """Body of ``python -m samlp_lite.runs.batch JOB``: run one cell, write its outcome next to the job."""
    job = json.loads(Path(job_file).read_text())
    cell = Cell(**job["cell"])
    outcome: dict[str, Any] = {"ok": False}
    start = time.perf_counter()
    try:
        execute_cell(cell, job["record"], job["output"], notebook=job["notebook"], timeout=job["timeout"],
                     command=job["command"])
        outcome = {"ok": True}
    except CellFailed as err:
        outcome = {"ok": False, "summary": err.summary, "details": err.details,
                   "notebook": str(err.notebook) if err.notebook else None}
    except Exception as err:  # noqa: BLE001 - reported to the parent, never lost
        outcome = {"ok": False, "summary": f"{type(err).__name__}: {err}", "details": ""}
    outcome["wall_s"] = round(time.perf_counter() - start, 1)
    tmp = Path(job["outcome"] + ".tmp")
    tmp.write_text(json.dumps(outcome))
    os.replace(tmp, job["outcome"])
    return 0 if outcome["ok"] else 1


# --------------------------------------------------------------------------- the grid

@dataclass
class RunReport:
    """What :func:`run_grid` did. ``failed`` maps cell ids to a one-line reason."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """No failure and not interrupted."""
        return not self.failed and not self.interrupted


def threads_per_job(jobs: int) -> int:
    """CPU threads each of ``jobs`` parallel kernels gets: ``SAMLP_THREADS`` when set, else ``max(1, cores // jobs)``."""
    from samlp_lite.runtime import thread_override

    fixed = thread_override()
    if fixed:
        return fixed
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, jobs))


def _log_failure(log: Path, cell_id: str, outcome: Mapping[str, Any]) -> None:
    stamp = _dt.datetime.now().isoformat(timespec="seconds")
    lines = [f"[{stamp}] FAILED {cell_id} after {outcome.get('wall_s', '?')} s: {outcome.get('summary')}"]
    if outcome.get("notebook"):
        lines.append(f"  executed notebook: {outcome['notebook']}")
    details = (outcome.get("details") or "").strip()
    lines += ["  " + line for line in details.splitlines()[-40:]]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle:
        handle.write("\n".join(lines) + "\n\n")


@dataclass
class _Running:
    cell: Cell
    record: Path
    proc: subprocess.Popen
    log: Any
    started: float


class _Scheduler:
    """Starts cells as worker processes (at most ``jobs`` at once), a student only after its teacher's cell."""

    def __init__(self, pending: list[tuple[Cell, Path]], report: RunReport, *, runs_dir: Path, jobs: int,
                 notebook: Path, timeout: float | None, command: Callable[[Cell], str] | None,
                 env: dict[str, str], work: Path, say: Callable[[str], None], advance: Callable[[], None]):
        self.pending, self.report, self.runs_dir, self.jobs = list(pending), report, runs_dir, max(1, jobs)
        self.notebook, self.timeout, self.command, self.env, self.work = notebook, timeout, command, env, work
        self.say, self.advance = say, advance
        self.running: dict[str, _Running] = {}
        self.finished: set[str] = set()
        self.teacher_cells = {(c.dataset, c.setting, c.model): c.id for c, _ in pending if c.is_teacher}

    def dependency(self, cell: Cell) -> str | None:
        """The pending teacher cell whose soft labels ``cell`` reads, if any."""
        from samlp_lite.models.registry import uses_teacher

        if cell.is_teacher or not (uses_teacher(cell.model) or cell.setting == "inductive"):
            return None
        return self.teacher_cells.get((cell.dataset, cell.setting, cell.source_teacher))

    def step(self) -> None:
        """Collect finished workers, then start ready cells while slots are free."""
        for cell_id, run in list(self.running.items()):
            if run.proc.poll() is not None:
                del self.running[cell_id]
                self.collect(run)
        for item in list(self.pending):
            if len(self.running) >= self.jobs:
                break
            cell, record = item
            needed = self.dependency(cell)
            if needed and needed not in self.finished:
                continue
            self.pending.remove(item)
            if needed in self.report.failed:
                self.fail(cell.id, {"summary": f"not run: its teacher cell {needed} failed", "wall_s": 0})
            else:
                self.start(cell, record)

    def start(self, cell: Cell, record: Path) -> None:
        for stale in self.runs_dir.glob(f".{cell.id}.tmp-*.ipynb"):
            stale.unlink()
        job = {"cell": asdict(cell), "record": str(record), "output": str(self.runs_dir / f"{cell.id}.ipynb"),
               "notebook": str(self.notebook), "timeout": self.timeout,
               "command": self.command(cell) if self.command else "",
               "outcome": str(self.work / f"{cell.id}.outcome.json")}
        job_file = self.work / f"{cell.id}.job.json"
        job_file.write_text(json.dumps(job))
        log = open(self.work / f"{cell.id}.log", "w+")
        proc = subprocess.Popen([sys.executable, "-m", "samlp_lite.runs.batch", str(job_file)], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.running[cell.id] = _Running(cell, record, proc, log, time.perf_counter())
        self.say(f"start    {cell.id}")

    def collect(self, run: _Running) -> None:
        outcome_file = self.work / f"{run.cell.id}.outcome.json"
        if outcome_file.exists():
            outcome = json.loads(outcome_file.read_text())
        else:
            run.log.seek(0)
            outcome = {"ok": False, "summary": f"worker exited with code {run.proc.returncode} without a result",
                       "details": "".join(run.log.readlines()[-40:]),
                       "wall_s": round(time.perf_counter() - run.started, 1)}
        run.log.close()
        problem = record_problem(run.record, run.cell) if outcome["ok"] else None
        if problem:
            outcome = {**outcome, "ok": False, "summary": f"notebook ran but the record is incomplete: {problem}"}
        if outcome["ok"]:
            self.finished.add(run.cell.id)
            self.report.done.append(run.cell.id)
            self.say(f"done     {run.cell.id} ({outcome['wall_s']} s)")
            self.advance()
        else:
            self.fail(run.cell.id, outcome)

    def fail(self, cell_id: str, outcome: Mapping[str, Any]) -> None:
        self.finished.add(cell_id)
        self.report.failed[cell_id] = outcome["summary"]
        _log_failure(self.runs_dir / "failures.log", cell_id, outcome)
        self.say(f"FAILED   {cell_id} ({outcome.get('wall_s', 0)} s): {outcome['summary']}")
        self.advance()

    def stop(self) -> list[str]:
        """Terminate running workers (their nbclient shuts the kernels down); return the ids of cells left unfinished.

        A cell whose record got completed while its kernel was shutting down counts as done.
        """
        for run in self.running.values():
            if run.proc.poll() is None:
                run.proc.terminate()
        deadline = time.monotonic() + 20
        for cell_id, run in self.running.items():
            try:
                run.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                run.proc.kill()
                run.proc.wait()
            run.log.close()
            for stale in self.runs_dir.glob(f".{cell_id}.tmp-*.ipynb"):
                stale.unlink()
            if record_problem(run.record, run.cell) is None:
                self.report.done.append(cell_id)
                self.say(f"done     {cell_id} (record completed while stopping; no executed notebook kept)")
        return [cell_id for cell_id in self.running if cell_id not in self.report.done]


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_grid(cells: Sequence[Cell], *, runs_dir: str | Path, results_root: str | Path = "results", jobs: int = 1,
             notebook: str | Path = EXPERIMENT_NOTEBOOK, timeout: float | None = None,
             command: Callable[[Cell], str] | None = None, progress: bool = True,
             echo: Callable[[str], None] | None = None) -> RunReport:
    """Run every cell whose record is not complete, ``jobs`` at a time, each in its own process.

    Args:
        cells: from :func:`~samlp_lite.runs.grid.expand_grid` (possibly filtered by :func:`~samlp_lite.runs.grid.select_cells`).
        runs_dir: folder of the executed notebooks (``<cell id>.ipynb``) and ``failures.log``.
        results_root: root of the records (``results``; smoke mode redirects to ``results/smoke``).
        jobs: parallel cells; each kernel gets ``max(1, cores // jobs)`` threads.
        notebook: the experiment notebook papermill executes.
        timeout: seconds per notebook cell (``None``: no limit).
        command: the provenance command line of a cell's record.
        progress: a progress bar over cells (on stderr).
        echo: where one-line events go (default: above the progress bar).

    Returns:
        A :class:`RunReport`. SIGINT or SIGTERM stops the running cells and returns with
        ``interrupted`` set: records are written atomically, finished splits stay checkpointed,
        and a re-run resumes.
    """
    from tqdm import tqdm

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
    threads = str(threads_per_job(jobs))
    with contextlib.ExitStack() as stack:
        kernel_env = stack.enter_context(current_env_kernel())
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="samlp-reproduce-")))
        env = {**os.environ, **kernel_env, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               "OPENBLAS_NUM_THREADS": threads}
        scheduler = _Scheduler(pending, report, runs_dir=runs_dir, jobs=jobs, notebook=Path(notebook).resolve(),
                               timeout=timeout, command=command, env=env, work=work, say=say, advance=bar.update)
        try:
            previous = signal.signal(signal.SIGTERM, _raise_interrupt)
            stack.callback(signal.signal, signal.SIGTERM, previous)
        except ValueError:  # not the main thread: SIGTERM keeps its default
            pass
        try:
            while scheduler.pending or scheduler.running:
                scheduler.step()
                bar.set_postfix_str(f"running {len(scheduler.running)}, failed {len(report.failed)}", refresh=False)
                time.sleep(0.2)
        except KeyboardInterrupt:
            report.interrupted = True
            stopped = scheduler.stop()
            say(f"interrupted: stopped {len(stopped)} running cell(s) ({', '.join(stopped) or 'none'}); their "
                "finished splits are checkpointed; run the same command again to resume")
        finally:
            bar.set_postfix_str(f"running 0, failed {len(report.failed)}")
            bar.close()
    return report


def reproduce_command(grid: str, cell: Cell, smoke: bool) -> str:
    """The command line that re-creates ``cell``'s record (stored as the record's provenance)."""
    return shlex.join(["samlp-lite", "reproduce", "--grid", grid, *(["--smoke"] if smoke else []),
                       "--only", cell.id])


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
