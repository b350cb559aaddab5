"""Result records: the one home of everything about a run's result file.

A record is one JSON file under ``results/`` (any depth) describing one experiment: its
kind (``accuracy``, ``latency``, ``tuning``), per-split metrics, resolved config and
provenance (command, commit, machine, date). This module holds the schema helpers
(:func:`metric_names`, :func:`accuracy_record`), where records go
(:func:`default_record_path`, :func:`record_path`, smoke routing), per-split checkpoints of
unfinished runs (:class:`SplitCheckpoint`), provenance, atomic writes, loading
(:func:`load_records`, :func:`pick_record`) and the mean ± std every table shows.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from samlp_lite.runtime import smoke_mode

if TYPE_CHECKING:
    from samlp_lite.config import RunConfig

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


CODE_PATHS = ("samlp_lite", "notebooks", "pyproject.toml", "_config.yml", "_toc.yml")
"""What a result depends on: a modified file here makes a record's commit ``-dirty``; edits
elsewhere (``results/``, the book's prose, tests) do not."""


def dirty_files(repo: Path = PACKAGE_ROOT) -> list[str]:
    """Tracked files under :data:`CODE_PATHS` that differ from the commit (empty when clean or not a repo)."""
    try:
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
                                cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(line[3:] for line in status.stdout.splitlines() if line.strip())


def git_commit(repo: Path = PACKAGE_ROOT) -> str:
    """The current git commit of the project, with ``-dirty`` when code files differ from it
    (see :data:`CODE_PATHS`); ``unknown`` outside a git checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty_files(repo) else "")


SOURCE_SUFFIXES = (".py", ".yaml")


def source_files(package_dir: str | Path = PACKAGE_ROOT / "samlp_lite") -> list[Path]:
    """The package's ``.py`` and ``.yaml`` files, sorted, without ``__pycache__`` contents."""
    package_dir = Path(package_dir)
    return sorted(path for path in package_dir.rglob("*")
                  if path.suffix in SOURCE_SUFFIXES and path.is_file()
                  and "__pycache__" not in path.relative_to(package_dir).parts)


def sources_hash(package_dir: str | Path = PACKAGE_ROOT / "samlp_lite") -> str:
    """SHA-256 over the relative path and bytes of every file in :func:`source_files`.

    Renaming, adding or deleting a file changes the hash, as does editing one; timestamps
    and ``__pycache__`` do not. It pins the code even where git cannot (an installed copy).
    """
    package_dir = Path(package_dir)
    digest = hashlib.sha256()
    for path in source_files(package_dir):
        digest.update(path.relative_to(package_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def code_version() -> dict[str, Any]:
    """The code that produced a result: ``commit`` (``-dirty`` when modified), ``sources`` (a hash of
    the package source, 16 hex digits) and, when dirty, ``dirty_files``."""
    dirty = dirty_files()
    version: dict[str, Any] = {"commit": git_commit(), "sources": sources_hash()[:16]}
    if dirty:
        version["dirty_files"] = dirty
    return version


def machine_description() -> str:
    """One line naming the host, CPU, core count, and GPU when present."""
    cpu = platform.processor() or platform.machine()
    import torch

    text = f"{platform.node()} ({platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)}"
    return text + ")"


def current_command() -> str:
    """The command line of this process, quoted so it can be pasted into a shell."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("samlp-lite", "__main__.py", "cli.py")):
        argv[0] = "samlp-lite"
    return " ".join(shlex.quote(a) for a in argv)


def provenance(*, wall_s: float, device: str, command: str | None = None,
               smoke: bool | None = None, **extra: Any) -> dict[str, Any]:
    """Provenance block of a result record: command, commit, machine, date, device, wall time."""
    import torch

    return {
        "command": command if command is not None else current_command(),
        **code_version(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "wall_s": round(float(wall_s), 3),
        "smoke": smoke_mode() if smoke is None else bool(smoke),
        **extra,
    }


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically (see :func:`write_text_atomic`)."""
    return write_text_atomic(path, json.dumps(payload, indent=1, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file, naming the file in the error when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it and re-run the command that made it") from err


def _json_default(obj: Any) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


RESULTS_DIR = Path("results")


def record_path(path: str | Path | None) -> Path | None:
    """Where a record goes: in smoke mode ``.../results/X`` becomes ``.../results/smoke/X``.

    Smoke runs thereby never overwrite paper-scale records; paths outside a ``results``
    folder are kept as given.
    """
    if path is None:
        return None
    path = Path(path)
    parts = path.parts
    if smoke_mode() and "results" in parts:
        at = len(parts) - 1 - parts[::-1].index("results")
        if parts[at + 1:at + 2] != ("smoke",):
            path = Path(*parts[:at + 1], "smoke", *parts[at + 1:])
    return path


def check_output_path(path: str | Path | None, what: str = "record") -> Path | None:
    """Fail at once, before any training, when ``path`` cannot be written as a file.

    Returns the path (``None`` stays ``None``).

    Raises:
        ValueError: ``path`` is a folder, or its folder is not writable (one line, with the fix).
    """
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"the {what} path {path} is a folder; give a file path such as {path / 'record.json'}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write the {what} {path}: folder {folder} is not writable; choose another path")
    return path


def default_record_path(dataset: str, model: str, teacher: str | None, setting: str,
                        root: str | Path = RESULTS_DIR) -> Path:
    """Conventional place of a record: ``results/<setting>/<dataset>/[<teacher>/]<model>.json``."""
    folder = Path(root) / setting / dataset
    return (folder / teacher / f"{model}.json") if teacher else folder / f"{model}.json"


class SplitCheckpoint:
    """Per-split results of an unfinished run, kept next to its record as ``<record>.partial.json``.

    A re-run with the same fingerprint (dataset, model, teacher, setting, configs) made by the
    same code (commit and sources hash, see :func:`checkpoint_code`) skips the splits already
    done; a checkpoint from another code version is set aside (``stale`` says why), so a
    record never mixes code versions. The file goes away once the full record is written.
    """

    def __init__(self, record: Path | None, fingerprint: str, code: Mapping[str, Any] | None = None):
        self.path = record.with_name(record.name + ".partial.json") if record is not None else None
        self.fingerprint = fingerprint
        self.code = dict(checkpoint_code() if code is None else code)
        self.done: dict[int, dict] = {}
        self.stale: str | None = None
        if self.path is not None and self.path.exists():
            try:
                saved = read_json(self.path)
            except ValueError:
                saved = {}
            if not isinstance(saved, dict) or saved.get("fingerprint") != fingerprint:
                return
            if saved.get("code") != self.code:
                self.stale = (f"{self.path} was made by other code ({_code_text(saved.get('code'))}, "
                              f"now {_code_text(self.code)}): its splits are run again")
                return
            self.done = {int(k): v for k, v in saved.get("splits", {}).items()}

    def save(self, split: int, metrics: dict) -> None:
        """Record one finished split (atomically)."""
        self.done[split] = metrics
        if self.path is not None:
            write_json_atomic(self.path, {"fingerprint": self.fingerprint, "code": self.code,
                                          "splits": {str(k): v for k, v in self.done.items()}})

    def finish(self) -> None:
        """Remove the checkpoint once the record is complete."""
        if self.path is not None and self.path.exists():
            self.path.unlink()


def checkpoint_code() -> dict[str, str]:
    """The code identity a checkpoint must share to be resumed: ``commit`` and ``sources``."""
    version = code_version()
    return {"commit": version["commit"], "sources": version["sources"]}


def _code_text(code: Any) -> str:
    if not isinstance(code, Mapping):
        return "no code version"
    return f"commit {str(code.get('commit', '?'))[:12]}, sources {code.get('sources', '?')}"


SETTINGS = ("transductive", "inductive")
"""The two evaluation settings: every node observed, or part of the test nodes held out."""
ACCURACY_METRICS = ("val_acc", "test_acc", "tran_acc", "ind_acc", "prod_acc", "ind_isolated_acc")
"""Every per-split accuracy key a record may hold, in display order."""


ROC_AUC_METRICS = ("val_roc_auc", "test_roc_auc", "tran_roc_auc", "ind_roc_auc", "prod_roc_auc",
                   "ind_isolated_roc_auc")
"""Per-split ROC AUC keys of records on binary graphs (next to the accuracies)."""
TWIN_METRICS = ("twin_share", "test_acc_twin", "test_acc_no_twin", "ind_twin_share", "ind_acc_twin",
                "ind_acc_no_twin")
"""Per-split row-twin keys: the share of evaluation nodes with a training row twin and the
accuracy on twin and non-twin nodes (see :mod:`samlp_lite.data.twins`)."""
EXTRA_METRICS = ROC_AUC_METRICS + TWIN_METRICS


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def metric_names(setting: str, *, isolated: bool = False, validation: bool = True,
                 metric: str = "accuracy") -> list[str]:
    """The per-split metric keys of a record of ``setting``.

    Transductive: ``test_acc``; inductive: ``tran_acc``, ``ind_acc``, ``prod_acc`` and, with
    ``isolated``, SA-MLP's ``ind_isolated_acc``; ``val_acc`` first when ``validation``. With
    ``metric="roc_auc"`` the same keys with ``roc_auc`` for ``acc``.
    """
    if setting not in ("transductive", "inductive"):
        raise ValueError(f"unknown setting {setting!r}; choose transductive or inductive")
    names = ["val_acc"] if validation else []
    names += ["test_acc"] if setting == "transductive" else ["tran_acc", "ind_acc", "prod_acc"]
    names += ["ind_isolated_acc"] if isolated and setting == "inductive" else []
    return [n.replace("_acc", "_roc_auc") for n in names] if metric == "roc_auc" else names


def production_accuracy(tran_acc: float, ind_acc: float, held_out_rate: float) -> float:
    """GLNN's production accuracy: observed and held-out test accuracy weighted by their shares
    (``0.8 * tran + 0.2 * ind`` at the default ``held_out_rate`` of 0.2)."""
    return (1.0 - held_out_rate) * tran_acc + held_out_rate * ind_acc


def accuracy_record(*, dataset: str, model: str, teacher: str | None, setting: str, splits: list[int],
                    per_split: list[dict[str, float]], config: "RunConfig | Mapping[str, Any]",
                    wall_s: float, device: str, extra: Mapping[str, Any] | None = None,
                    command: str | None = None) -> dict[str, Any]:
    """Build an accuracy record; ``per_split`` holds one dict of metrics per split.

    ``command`` is the provenance command line (default: this process's own, see
    :func:`current_command`); batch runs pass the command that re-creates the record.
    """
    names = metric_names(setting, isolated=any("ind_isolated_acc" in m for m in per_split))
    record: dict[str, Any] = {"kind": "accuracy", "dataset": dataset, "model": model, "teacher": teacher,
                              "setting": setting, "splits": splits}
    for name in names:
        record[name] = [float(m[name]) for m in per_split]
    for name in EXTRA_METRICS:  # ROC AUC graphs and row-twin splits; None where a split lacks it or it is NaN
        if any(name in m for m in per_split):
            record[name] = [_finite_or_none(m.get(name)) for m in per_split]
    record["wall_s_per_split"] = [round(float(m.get("wall_s", float("nan"))), 3) for m in per_split]
    record["config"] = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    if extra:
        record.update(extra)
    record["provenance"] = provenance(wall_s=wall_s, device=device, command=command)
    return record


def print_summary(title: str, splits: list[int], per_split: list[dict[str, float]], metrics: list[str],
                  echo: Callable[[str], None] = print) -> None:
    """Print per-split metrics and their mean ± std as a small table (percent)."""
    echo(title)
    echo("split  " + "  ".join(f"{m:>10}" for m in metrics) + "      wall_s")
    for split, row in zip(splits, per_split):
        echo(f"{split:>5}  " + "  ".join(f"{100 * float(row[m]):>10.2f}" for m in metrics)
             + f"  {row.get('wall_s', float('nan')):>10.1f}")
    cells = []
    for m in metrics:
        mean, std = mean_std([row[m] for row in per_split])
        cells.append(f"{100 * mean:5.2f}±{100 * std:4.2f}".rjust(10))
    echo(" mean  " + "  ".join(cells))


SMOKE_DIR = "smoke"


RECORD_KINDS = ("accuracy", "latency", "training_speed")
"""The kinds of result record :func:`load_records` reads (tuning records live apart, under ``results/tuning``)."""


def _is_smoke_path(path: Path, root: Path) -> bool:
    return SMOKE_DIR in path.relative_to(root).parts[:-1]


def load_records(root: str | Path = "results", *, smoke: bool = False, kind: str | None = "accuracy") -> list[dict]:
    """Read every record under ``root`` (any depth), sorted by path.

    Args:
        root: the results folder.
        smoke: read only ``<root>/smoke`` (smoke runs); by default smoke records are skipped.
        kind: ``"accuracy"``, ``"latency"``, ``"training_speed"`` or ``None`` for every kind.

    Returns:
        The records, each with an added ``"_path"`` (where it was read). Checkpoints of
        unfinished runs (``*.partial.json``) and JSON files that are not records are skipped.

    Raises:
        ValueError: a ``.json`` file is not valid JSON (its path is named).
    """
    root = Path(root)
    if smoke and root.name != SMOKE_DIR:
        root = root / SMOKE_DIR
    if not root.is_dir():
        return []
    records = []
    for path in sorted(root.rglob("*.json")):
        if path.name.endswith(".partial.json") or path.name.startswith("."):
            continue
        if not smoke and _is_smoke_path(path, root):
            continue
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); delete it and re-run the command that made it") from err
        if not isinstance(record, dict) or record.get("kind") not in RECORD_KINDS:
            continue
        if kind is None or record["kind"] == kind:
            records.append({**record, "_path": str(path)})
    return records


def latency_records(root: str | Path = "results", *, smoke: bool = False, device: str | None = None) -> list[dict]:
    """The latency records under ``root`` (any depth), smallest graph first.

    Written by :func:`samlp_lite.serve.bench.run_bench` (``results/latency/<graph>.json`` on the CPU,
    ``results/latency/cuda/<graph>.json`` on a GPU); kept out of the accuracy tables. Same
    arguments and ``"_path"`` key as :func:`load_records`; ``device`` (``"cpu"``, ``"cuda"``)
    keeps only the records measured there, so that one graph's CPU and GPU timings never mix.
    """
    records = load_records(root, smoke=smoke, kind="latency")
    if device is not None:
        records = [r for r in records if str(r.get("device", "")).split(":")[0] == device]
    return sorted(records, key=lambda r: (r.get("num_nodes") or 0, str(r.get("graph"))))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation of per-split values (NaN for none)."""
    values = [float(v) for v in values]
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _date(record: dict) -> str:
    return str((record.get("provenance") or {}).get("date", ""))


def pick_record(records: Iterable[dict], *, dataset: str, model: str, teacher: str | None,
                setting: str) -> dict | None:
    """The record of one table cell; of several, the one with the most splits, then the newest."""
    matches = [r for r in records if r.get("kind") == "accuracy" and r.get("dataset") == dataset
               and r.get("model") == model and r.get("teacher") == teacher and r.get("setting") == setting]
    return max(matches, key=lambda r: (len(r.get("splits", [])), _date(r)), default=None)
