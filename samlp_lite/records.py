"""Result records (METHOD.md section 8): provenance and atomic JSON writes."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from .runtime import smoke_mode

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def git_commit(repo: Path = PACKAGE_ROOT) -> str:
    """The current git commit of the project, with ``-dirty`` when files differ from it."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=repo, capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_description() -> str:
    """One line naming the host, CPU, core count, and GPU when present."""
    cpu = platform.processor() or platform.machine()
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
    return {
        "command": command if command is not None else current_command(),
        "commit": git_commit(),
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
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
