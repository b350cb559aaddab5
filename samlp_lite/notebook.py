"""The one set-up call of every notebook: Colab install, quiet warnings, seed, threads, device.

Every notebook starts with the same tiny bootstrap cell (:func:`bootstrap_source`): on Colab,
where ``samlp_lite`` is not installed yet, it clones the repository named by
``repository: url`` (and ``branch``) in ``_config.yml``; then it calls :func:`setup`. On
Colab :func:`setup` installs the clone with ``pip install --no-deps -e`` plus the few pinned
packages Colab lacks (never ``torch``: Colab's own build, with its GPU, stays), and changes
into the clone's ``notebooks/`` folder so that relative paths such as ``../results`` (the
committed result records) resolve as they do locally. Everywhere it then silences known
noisy warnings, seeds, fixes the thread count, picks the device and prints one line.

``SAMLP_SIMULATE_COLAB=1`` makes :func:`on_colab` true without Colab, so tests can drive the
Colab branch with a recording ``runner`` instead of running the commands.
"""
from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from samlp_lite.runtime import apply_threads, pick_device, seed_everything, smoke_mode

if TYPE_CHECKING:
    import torch

__all__ = ["COLAB_CLONE", "SIMULATE_COLAB_ENV", "bootstrap_source", "colab_install_commands", "colab_requirements",
           "glue", "on_colab", "prepare_colab", "project_root", "quiet_warnings", "repository", "setup"]

SIMULATE_COLAB_ENV = "SAMLP_SIMULATE_COLAB"
"""Set to ``1`` to take the Colab branch of :func:`setup` anywhere (tests)."""
COLAB_CLONE = Path("/content/samlp-lite")
"""Where the bootstrap clones the repository on Colab (``/content`` is Colab's working folder)."""
NEVER_INSTALL = frozenset({"torch", "torchvision", "torchaudio"})
"""Distributions the Colab install leaves alone: Colab's own CUDA builds must stay."""
ALWAYS_INSTALL = ("torch-geometric", "ogb")
"""Dependencies Colab does not ship; installed at the versions ``pyproject.toml`` pins."""

Runner = Callable[[Sequence[str]], object]
_PREPARED = False  # the Colab install ran in this kernel already


def project_root() -> Path:
    """The folder holding the package, ``_config.yml`` and ``pyproject.toml`` (a clone or checkout)."""
    return Path(__file__).resolve().parent.parent


def on_colab() -> bool:
    """True inside Google Colab, or when ``SAMLP_SIMULATE_COLAB=1``."""
    return "google.colab" in sys.modules or os.environ.get(SIMULATE_COLAB_ENV, "").strip() == "1"


def repository(config_path: str | Path | None = None) -> tuple[str, str]:
    """``(url, branch)`` of the repository, from ``repository:`` in the book's ``_config.yml``.

    That block is the one place the project's address is set: the book's launch buttons,
    the notebooks' bootstrap and the Colab install all read it.
    """
    import yaml

    path = Path(config_path) if config_path is not None else project_root() / "_config.yml"
    block = (yaml.safe_load(path.read_text()) or {}).get("repository") or {}
    url = str(block.get("url") or "").strip()
    if not url:
        raise ValueError(f"{path} has no `repository: url:`; set it to the project's git address")
    return url, str(block.get("branch") or "main").strip()


def _dependencies(pyproject: Path) -> list[str]:
    text = pyproject.read_text()
    try:
        import tomllib
    except ImportError:  # Python 3.10: read the one array we need
        block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M)
        return re.findall(r"[\"']([^\"']+)[\"']", block.group(1)) if block else []
    return list(tomllib.loads(text).get("project", {}).get("dependencies", []))


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def colab_requirements(pyproject: str | Path | None = None, *,
                       installed: Callable[[str], bool] = _installed) -> list[str]:
    """The requirements (as pinned in ``pyproject.toml``) that Colab lacks.

    :data:`ALWAYS_INSTALL` (PyTorch Geometric, OGB) always, plus any other dependency that
    ``installed`` says is absent; never ``torch`` (:data:`NEVER_INSTALL`).
    """
    path = Path(pyproject) if pyproject is not None else project_root() / "pyproject.toml"
    wanted = []
    for requirement in _dependencies(path):
        name = _name(requirement)
        if name in NEVER_INSTALL:
            continue
        if name in ALWAYS_INSTALL or not installed(name):
            wanted.append(requirement.replace(" ", ""))
    return wanted


def colab_install_commands(clone_dir: str | Path = COLAB_CLONE, *, url: str | None = None,
                           branch: str | None = None, python: str = sys.executable,
                           installed: Callable[[str], bool] = _installed) -> list[list[str]]:
    """The shell commands that make ``samlp_lite`` available on Colab, without running them.

    A shallow ``git clone`` of the configured repository into ``clone_dir`` (left out when a
    clone is already there), ``pip install --no-deps -e <clone>`` (the package, without
    touching Colab's PyTorch) and ``pip install`` of :func:`colab_requirements`.
    """
    clone_dir = Path(clone_dir)
    # the checkout this package was imported from, else the clone (a package installed without its repository)
    root = next((r for r in (project_root(), clone_dir) if (r / "_config.yml").is_file()
                 and (r / "pyproject.toml").is_file()), None)
    if root is None:
        raise FileNotFoundError(f"neither {project_root()} nor {clone_dir} holds the project's _config.yml and "
                                "pyproject.toml; run the notebook's first cell, which clones the repository")
    if url is None or branch is None:
        configured_url, configured_branch = repository(root / "_config.yml")
        url, branch = url or configured_url, branch or configured_branch
    commands: list[list[str]] = []
    if not (clone_dir / "pyproject.toml").is_file():
        commands.append(["git", "clone", "--depth", "1", "--branch", branch, url, str(clone_dir)])
    commands.append([python, "-m", "pip", "install", "-q", "--no-deps", "-e", str(clone_dir)])
    requirements = colab_requirements(root / "pyproject.toml", installed=installed)
    if requirements:
        commands.append([python, "-m", "pip", "install", "-q", *requirements])
    return commands


def _run(command: Sequence[str]) -> None:
    subprocess.run(list(command), check=True)


def prepare_colab(clone_dir: str | Path = COLAB_CLONE, *, runner: Runner | None = None,
                  chdir: bool = True) -> list[list[str]]:
    """Install the package on Colab and move into the clone's ``notebooks/`` folder.

    Args:
        clone_dir: where the repository is (or goes).
        runner: runs one command (default: :func:`subprocess.run` with ``check=True``); a test
            passes a function that records the commands instead.
        chdir: change into ``<clone_dir>/notebooks`` when it exists, so that ``../results``
            resolves to the clone's committed records.

    Returns:
        The commands, in the order they were handed to ``runner``.
    """
    clone_dir = Path(clone_dir)
    commands = colab_install_commands(clone_dir)
    for command in commands:
        (runner or _run)(command)
    if str(clone_dir) not in sys.path and (clone_dir / "samlp_lite").is_dir():
        sys.path.insert(0, str(clone_dir))
    if chdir and (clone_dir / "notebooks").is_dir():
        os.chdir(clone_dir / "notebooks")
    return commands


NOISY_WARNINGS = (
    # tqdm's notebook progress bar without ipywidgets (training runs pass progress=False)
    ("ignore", "IProgress not found", Warning),
    ("ignore", "Sparse CSR tensor support is in beta", UserWarning),
    ("ignore", "Sparse invariant checks are implicitly disabled", UserWarning),
    ("ignore", "The given NumPy array is not writable", UserWarning),
    # ogb checks PyPI for a newer version on import
    ("ignore", "The OGB package is out of date", Warning),
)


def quiet_warnings() -> None:
    """Silence the warnings that third-party imports print in every notebook and carry no news."""
    for action, message, category in NOISY_WARNINGS:
        warnings.filterwarnings(action, message=message, category=category)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch_geometric\..*")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch_geometric\..*")


def _inline_figures() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "kernel"):  # a Jupyter kernel, not a terminal IPython
        shell.run_line_magic("matplotlib", "inline")


def setup(seed: int = 0, *, threads: int | None = 1, device: "str | torch.device | None" = "auto",
          runner: Runner | None = None, clone_dir: str | Path = COLAB_CLONE, verbose: bool = True) -> "torch.device":
    """Prepare a notebook: Colab install (on Colab only), quiet warnings, seed, threads, device.

    Args:
        seed: for :func:`samlp_lite.runtime.seed_everything` (a notebook with a ``seed``
            parameter seeds again after its parameters cell).
        threads: PyTorch CPU threads unless ``SAMLP_THREADS`` says otherwise
            (:func:`samlp_lite.runtime.apply_threads`); ``None`` keeps PyTorch's choice, as
            does a set ``OMP_NUM_THREADS`` (a batch runner's per-kernel share).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
        runner: on Colab, what runs each install command (see :func:`prepare_colab`).
        clone_dir: on Colab, where the repository is cloned.
        verbose: print the one-line summary.

    Returns:
        The device notebooks put their models on.
    """
    import samlp_lite

    global _PREPARED
    if on_colab() and (runner is not None or not _PREPARED):
        prepare_colab(clone_dir, runner=runner)
        _PREPARED = runner is None
    quiet_warnings()
    _inline_figures()
    seed_everything(seed)
    # A batch runner that sized the kernel with OMP_NUM_THREADS (samlp-lite reproduce --jobs N)
    # keeps its choice; SAMLP_THREADS, when set, wins over both (see apply_threads).
    count = apply_threads(default=None if os.environ.get("OMP_NUM_THREADS", "").strip() else threads)
    chosen = pick_device(device)
    if verbose:
        print(f"samlp_lite {samlp_lite.__version__} | device {chosen} | {count} CPU thread{'s' * (count != 1)} "
              f"| smoke mode {'on' if smoke_mode() else 'off'}")
    return chosen


def glue(name: str, value: Any, *, display: bool = False) -> None:
    """Make a computed value quotable in the book's prose as ``{glue:text}`name``` (myst-nb's glue).

    NumPy and PyTorch scalars become plain Python numbers first, so that format specs such
    as ``{glue:text}`name:.1%``` work. Where myst-nb is not installed (Colab), nothing happens.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    myst_glue(name, value, display=display)


BOOTSTRAP_TEMPLATE = '''\
# Set-up. On Colab, first fetch samlp_lite from the repository (`repository:` in _config.yml);
# samlp_lite.notebook.setup then installs it, seeds, and picks threads and device.
import importlib.util, os, subprocess, sys
if "google.colab" in sys.modules and importlib.util.find_spec("samlp_lite") is None:
    if not os.path.isdir("{clone}"):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "{branch}", "{url}", "{clone}"], check=True)
    sys.path.insert(0, "{clone}")
from samlp_lite.notebook import setup
device = setup()'''


def bootstrap_source(config_path: str | Path | None = None) -> str:
    """The first code cell of every notebook, with the repository of ``_config.yml`` filled in.

    Changing ``repository: url`` means regenerating this cell in every notebook; the tests
    check that each notebook's first code cell equals this text.
    """
    url, branch = repository(config_path)
    return BOOTSTRAP_TEMPLATE.format(url=url, branch=branch, clone=COLAB_CLONE.as_posix())
