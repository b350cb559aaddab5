"""Run-time helpers shared by every module: seeding, device choice, smoke mode, paths."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


SMOKE_ENV = "SAMLP_SMOKE"
CACHE_ENV = "SAMLP_CACHE"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so splits, inits and sampling repeat.

    Args:
        seed: any non-negative integer.
    """
    import numpy as np
    import torch

    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def pick_device(device: "str | torch.device | None" = None) -> "torch.device":
    """Return the requested device, or ``cuda`` when present and the CPU otherwise.

    Args:
        device: ``None`` or ``"auto"`` to choose automatically, else ``"cpu"``, ``"cuda"``,
            ``"cuda:1"``...
    """
    import torch

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {device} was requested but CUDA is not available on this machine; "
            "pass device='auto' or 'cpu'."
        )
    return device


def thread_override() -> int | None:
    """The CPU thread count fixed by ``SAMLP_THREADS``, or ``None`` when unset.

    Raises:
        ValueError: when it is set to anything but a positive integer.
    """
    threads = os.environ.get("SAMLP_THREADS", "").strip()
    if not threads:
        return None
    if not threads.isdigit() or int(threads) < 1:
        raise ValueError(f"SAMLP_THREADS must be a positive integer, got {threads!r}")
    return int(threads)


def apply_threads(default: int | None = None) -> int:
    """Fix PyTorch's CPU thread count: ``SAMLP_THREADS`` when set, else ``default`` (``None``
    keeps PyTorch's own choice). Returns the count in force.

    One thread per process degrades gracefully when other work shares the cores (PyTorch's
    default of one thread per core collapses as soon as one core is busy), and the count
    changes the last digits of sparse kernels' results, so records store it.
    """
    import torch

    threads = thread_override() or default
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def smoke_mode() -> bool:
    """True when ``SAMLP_SMOKE`` is set to a true value (tiny runs for CI and nbval)."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def cache_dir() -> Path:
    """Writable cache folder (``SAMLP_CACHE``, default ``~/.cache/samlp_lite``); created.

    Raises:
        PermissionError: the folder cannot be created or written, with a one-line fix.
    """
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "samlp_lite").expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cache folder {path} cannot be created ({err.strerror or err}); set {CACHE_ENV} "
                              "to a writable folder") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"cache folder {path} is not writable; set {CACHE_ENV} to a writable folder")
    return path
