"""Build the Jupyter Book: cache invalidation, offline MathJax, and the ``jupyter-book`` call.

The book executes notebooks through jupyter-cache, which keys each notebook on its own
code cells only. A notebook whose code did not change is therefore never re-run, even when
the ``samlp_lite`` functions it calls did. :func:`invalidate_stale_cache` closes that gap:
it hashes the package's ``.py`` and ``.yaml`` files and, when the hash differs from the one
stored by the previous build, deletes the execution cache and Sphinx's saved environment
so every notebook runs again.

:func:`build_book` runs the notebook kernels with one PyTorch thread each (``SAMLP_THREADS``,
see :func:`build_environment`), lets a chapter that fails or times out keep its page (with
the outputs up to the failing cell) instead of stopping the book, and prints a table of every chapter's
execution time and status (executed, cached, failed, timed out) read from myst-nb's
execution data (:func:`chapter_runs`).

Usage: ``samlp-lite book [--smoke] [--strict] [--path ROOT] [--timeout SECONDS]``.
"""
from __future__ import annotations

import importlib.util
import os
import pickle
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from samlp_lite.records import SOURCE_SUFFIXES, source_files, sources_hash  # noqa: F401 (re-exported)
from samlp_lite.runtime import SMOKE_ENV

PACKAGE_DIR = Path(__file__).resolve().parent
#: Files whose contents decide whether cached notebook outputs are still valid.
#: Name of the file, inside a build folder, that holds the hash of the last build's sources.
SOURCES_HASH_FILE = "samlp_lite_sources.sha256"
#: Sub-folders of a build folder that depend on executed notebook outputs.
EXECUTION_STATE_DIRS = (".jupyter_cache", ".doctrees")

MATHJAX_VERSION = "3.2.2"
#: Where, relative to the book root, the local MathJax copy lives (gitignored).
MATHJAX_DIR = Path("book/_static/mathjax")
#: The parts of the npm package that ``tex-chtml.js`` loads at run time.
MATHJAX_MEMBERS = ("es5/tex-chtml.js", "es5/input/tex/extensions/", "es5/output/chtml/fonts/woff-v2/",
                   "es5/ui/", "es5/a11y/", "es5/sre/", "LICENSE")
MATHJAX_CDN = f"https://cdn.jsdelivr.net/npm/mathjax@{MATHJAX_VERSION}/es5/tex-chtml.js"

TIMEOUT_ENV = "SAMLP_BOOK_TIMEOUT"
THREADS_ENV = "SAMLP_THREADS"
#: PyTorch threads per notebook kernel unless ``SAMLP_THREADS`` says otherwise.
DEFAULT_KERNEL_THREADS = 1
PAGE_SUFFIXES = (".md", ".ipynb", ".rst", ".myst")

#: What became of a notebook chapter in a build (see :func:`chapter_runs`).
EXECUTED, CACHED, FAILED, TIMED_OUT, NOT_RUN = "executed", "cached", "failed", "timed out", "not run"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class BookError(RuntimeError):
    """The book cannot be built as asked; the message says what to do."""


# ---------------------------------------------------------------- execution-cache invalidation

def invalidate_stale_cache(build_dir: str | Path, package_dir: str | Path = PACKAGE_DIR) -> bool:
    """Delete cached notebook outputs when the package sources changed since the last build.

    Compares :func:`sources_hash` with the hash stored in ``build_dir/SOURCES_HASH_FILE``.
    When they differ, or no hash is stored but a cache exists (a build made without this
    function, so of unknown sources), removes ``build_dir/.jupyter_cache`` and
    ``build_dir/.doctrees``. The second matters as much as the first: Sphinx only re-reads
    documents whose source file changed, so without its saved environment gone a notebook
    whose cached outputs were deleted would not be executed again. The new hash is written
    only after both are gone, so an interrupted build cannot leave stale outputs behind a
    fresh hash.

    Args:
        build_dir: the Jupyter Book build folder (``<path-output>/_build``).
        package_dir: the ``samlp_lite`` package folder.

    Returns:
        True when a cache was removed.
    """
    build_dir = Path(build_dir)
    hash_file = build_dir / SOURCES_HASH_FILE
    current = sources_hash(package_dir)
    previous = hash_file.read_text().strip() if hash_file.is_file() else None
    if previous == current:
        return False
    stale = [build_dir / name for name in EXECUTION_STATE_DIRS if (build_dir / name).exists()]
    for path in stale:
        shutil.rmtree(path)
    build_dir.mkdir(parents=True, exist_ok=True)
    hash_file.write_text(current + "\n")
    return any(path.name == ".jupyter_cache" for path in stale)


# ------------------------------------------------------------------------------ table of contents

def toc_pages(toc_path: str | Path) -> list[str]:
    """Every page a Jupyter Book ``_toc.yml`` lists, in reading order, without suffixes.

    Understands ``root``, ``parts``, ``chapters``, ``sections`` (any depth), ``file``
    entries and ``glob`` entries (expanded against the book root, sorted); skips ``url``
    entries.

    Args:
        toc_path: path of ``_toc.yml``; globs are resolved relative to its folder.

    Returns:
        Document names such as ``["book/intro", "book/method", "notebooks/01_data"]``; the
        built page of ``name`` is ``<html>/<name>.html``.
    """
    toc_path = Path(toc_path)
    toc = yaml.safe_load(toc_path.read_text())
    if not isinstance(toc, dict) or "root" not in toc:
        raise ValueError(f"{toc_path} has no 'root' entry; is it a Jupyter Book table of contents?")
    root_dir = toc_path.parent
    pages: list[str] = [_strip_suffix(str(toc["root"]))]

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if "file" in node:
                pages.append(_strip_suffix(str(node["file"])))
            elif "glob" in node:
                pages.extend(_expand_glob(root_dir, str(node["glob"])))
            for key in ("parts", "chapters", "sections"):
                if key in node:
                    walk(node[key])

    walk({key: toc[key] for key in ("parts", "chapters", "sections") if key in toc})
    seen: set[str] = set()
    return [page for page in pages if not (page in seen or seen.add(page))]


def _strip_suffix(name: str) -> str:
    for suffix in PAGE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _expand_glob(root_dir: Path, pattern: str) -> list[str]:
    # A toc glob matches document names, which have no suffix; match the files by adding one.
    return sorted({path.relative_to(root_dir).with_suffix("").as_posix()
                   for path in root_dir.glob(pattern + ".*")
                   if path.suffix in PAGE_SUFFIXES and path.is_file()})


# ---------------------------------------------------------------------------------- MathJax copy

def ensure_mathjax(root: str | Path = ".", *, version: str = MATHJAX_VERSION) -> Path | None:
    """Make sure the book has a local MathJax 3 copy; fetch it from npm when absent.

    Runs ``npm pack mathjax@<version>`` in a temporary folder and unpacks the parts that
    ``tex-chtml.js`` needs (about 8 MB) into ``<root>/book/_static/mathjax/``.

    Args:
        root: the book root (the folder holding ``_config.yml``).
        version: MathJax version; 3.2.2 is the last 3.x.

    Returns:
        Path of ``tex-chtml.js``, or None when it is absent and could not be fetched (no
        ``npm``, or no network); a warning saying so is printed to stderr.
    """
    target = Path(root) / MATHJAX_DIR
    entry = target / "tex-chtml.js"
    if entry.is_file():
        return entry
    npm = shutil.which("npm")
    if npm is None:
        _warn("npm is not installed, so the book cannot fetch its local MathJax copy; "
              "pages will load MathJax from a CDN and show raw TeX when offline. "
              "Install Node.js/npm (Debian: apt-get install npm) and build again.")
        return None
    with tempfile.TemporaryDirectory(prefix="samlp-mathjax-") as tmp:
        try:
            result = subprocess.run([npm, "pack", f"mathjax@{version}", "--silent"], cwd=tmp,
                                    capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as err:
            _warn(f"`npm pack mathjax@{version}` failed ({err}); falling back to the MathJax CDN.")
            return None
        tarballs = list(Path(tmp).glob("mathjax-*.tgz"))
        if result.returncode != 0 or not tarballs:
            _warn(f"`npm pack mathjax@{version}` failed (exit {result.returncode}): "
                  f"{(result.stderr or result.stdout).strip()[-500:]}; falling back to the MathJax CDN.")
            return None
        staging = Path(tmp) / "mathjax"
        _extract_mathjax(tarballs[0], staging)
        (staging / "VERSION").write_text(version + "\n")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # a half-finished copy without tex-chtml.js
            shutil.rmtree(target)
        shutil.move(str(staging), str(target))
    return entry


def _extract_mathjax(tarball: Path, dest: Path) -> None:
    """Unpack the :data:`MATHJAX_MEMBERS` of an npm tarball into ``dest``, dropping ``package/es5/``."""
    dest.mkdir(parents=True)
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive.getmembers():
            name = member.name.removeprefix("package/")
            if not member.isfile() or not any(name == m or (m.endswith("/") and name.startswith(m))
                                              for m in MATHJAX_MEMBERS):
                continue
            relative = Path(name.removeprefix("es5/"))
            if relative.is_absolute() or ".." in relative.parts:
                raise BookError(f"refusing to unpack suspicious path {member.name!r} from {tarball}")
            out = dest / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            with source, open(out, "wb") as handle:
                shutil.copyfileobj(source, handle)


# ----------------------------------------------------------------------------------------- build

def output_root(root: str | Path, smoke: bool) -> Path:
    """The ``--path-output`` of a build: ``<root>`` normally, ``<root>/_build/smoke`` in smoke mode.

    Jupyter Book appends ``_build`` itself, so the HTML lands in ``<output_root>/_build/html``;
    smoke builds keep their own execution cache, so smoke outputs never stand in for real ones.
    """
    root = Path(root)
    return root / "_build" / "smoke" if smoke else root


def effective_config(root: Path, build_dir: Path, *, timeout: int | None,
                     mathjax_cdn: bool) -> Path | None:
    """Write ``_config.yml`` with the requested overrides to ``build_dir``; None when none apply."""
    path = build_dir / "_config.effective.yml"
    if timeout is None and not mathjax_cdn:
        path.unlink(missing_ok=True)  # a leftover would only confuse whoever finds it
        return None
    config = yaml.safe_load((root / "_config.yml").read_text()) or {}
    if timeout is not None:
        config.setdefault("execute", {})["timeout"] = int(timeout)
    if mathjax_cdn:
        config.setdefault("sphinx", {}).setdefault("config", {})["mathjax_path"] = MATHJAX_CDN
    # Jupyter Book resolves local_extensions paths against the config file's folder.
    local = (config.get("sphinx") or {}).get("local_extensions") or {}
    for extension, folder in local.items():
        local[extension] = str((root / folder).resolve())
    build_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("# Generated by samlp_lite.book from _config.yml; do not edit.\n"
                    + yaml.safe_dump(config, sort_keys=False))
    return path


def jupyter_book_executable() -> str:
    """Path of the ``jupyter-book`` command of this Python environment.

    Raises:
        BookError: when Jupyter Book is not installed, naming the install command.
    """
    if importlib.util.find_spec("jupyter_book") is None:
        raise BookError("jupyter-book is not installed in this Python environment; install the "
                        "development extras with `pip install -e \".[dev]\"` (Jupyter Book 1.x).")
    beside = Path(sys.executable).parent / "jupyter-book"
    found = str(beside) if beside.is_file() else shutil.which("jupyter-book")
    if found is None:
        raise BookError("the jupyter_book package is installed but its `jupyter-book` command was "
                        f"not found next to {sys.executable} or on PATH; reinstall it with "
                        "`pip install --force-reinstall \"jupyter-book<2\"`.")
    return found


def build_command(root: Path, *, smoke: bool, strict: bool, config: Path | None,
                  executable: str = "jupyter-book") -> list[str]:
    """The ``jupyter-book build`` command line (``-W -n --keep-going`` when strict)."""
    command = [executable, "build", str(root), "--path-output", str(output_root(root, smoke))]
    if config is not None:
        command += ["--config", str(config)]
    if strict:
        command += ["-W", "-n", "--keep-going"]
    return command


def build_environment(base: Mapping[str, str], *, smoke: bool) -> tuple[dict[str, str], list[str]]:
    """The environment of ``jupyter-book build`` and so of every notebook kernel it starts.

    * ``SAMLP_THREADS`` is set to 1 unless the caller set it: one PyTorch thread per kernel.
      PyTorch's default of one thread per core collapses as soon as anything else runs on
      the machine (a 2-core laptop with one busy core ran chapter 09 past the 30-minute
      cell limit), while one thread degrades gracefully. ``OMP_NUM_THREADS`` follows it
      unless set, so kernels start with that count even before a notebook calls
      :func:`samlp_lite.runtime.apply_threads`.
    * ``SAMLP_SMOKE=1`` in smoke mode; removed for a full build, which must never cache
      smoke-sized outputs as if they were real.

    Args:
        base: the environment to start from (normally ``os.environ``); not modified.
        smoke: whether this is a smoke build.

    Returns:
        The environment, and notes to print about it.

    Raises:
        BookError: when ``SAMLP_THREADS`` is set to anything but a positive integer.
    """
    env = dict(base)
    notes: list[str] = []
    threads = env.get(THREADS_ENV, "").strip()
    if not threads:
        env[THREADS_ENV] = threads = str(DEFAULT_KERNEL_THREADS)
        source = f"the default; set {THREADS_ENV}=N to change it"
    elif not threads.isdigit() or int(threads) < 1:
        raise BookError(f"{THREADS_ENV} must be a positive integer, got {threads!r}")
    else:
        source = "from your environment"
    env.setdefault("OMP_NUM_THREADS", threads)
    notes.append(f"Notebook kernels use {THREADS_ENV}={threads} PyTorch thread(s) each ({source}).")
    if smoke:
        env[SMOKE_ENV] = "1"
    elif env.pop(SMOKE_ENV, None) is not None:
        notes.append(f"note: ignoring {SMOKE_ENV} for this full build; use --smoke for a smoke build.")
    return env, notes


def build_book(root: str | Path = ".", *, smoke: bool = False, strict: bool = False,
               timeout: int | None = None) -> int:
    """Build the book's HTML; print each chapter's execution time and status, and where the book is.

    A chapter (notebook) that fails or runs past the cell time limit does not stop the
    build (``execute.raise_on_error`` is false in ``_config.yml``): its page shows the
    outputs up to the failing cell, every other page is built as usual, and the summary
    names it loudly. Its traceback is in ``<html>/reports/<page>.err.log``. The next build
    runs it again (Sphinx's saved environment is removed so the page is re-read; the other
    notebooks come from the execution cache).

    Args:
        root: folder holding ``_config.yml`` and ``_toc.yml``; default the current one.
        smoke: execute notebooks with ``SAMLP_SMOKE=1`` into a separate build folder
            (``_build/smoke/_build/html``) with its own cache.
        strict: warnings (and broken references) fail the build, as in CI; so does any
            chapter that failed or timed out.
        timeout: per-cell execution limit in seconds; default ``SAMLP_BOOK_TIMEOUT`` or the
            ``execute.timeout`` of ``_config.yml``.

    Returns:
        0 when the book was built (with failed chapters, too, unless ``strict``); otherwise
        the exit code of ``jupyter-book build``, or 1 when it succeeded but a chapter failed
        in strict mode.

    Raises:
        BookError: when the root is not a book, Jupyter Book is not installed, or
            ``SAMLP_THREADS`` / ``SAMLP_BOOK_TIMEOUT`` are malformed.
    """
    started = time.perf_counter()
    started_at = time.time()
    root = Path(root).resolve()
    for name in ("_config.yml", "_toc.yml"):
        if not (root / name).is_file():
            raise BookError(f"{root} has no {name}; pass the repository root with --path.")
    executable = jupyter_book_executable()
    if timeout is None and os.environ.get(TIMEOUT_ENV):
        try:
            timeout = int(os.environ[TIMEOUT_ENV])
        except ValueError as err:
            raise BookError(f"{TIMEOUT_ENV}={os.environ[TIMEOUT_ENV]!r} is not a whole number of seconds") from err
    if timeout is not None and timeout <= 0 and timeout != -1:
        raise BookError(f"timeout must be a positive number of seconds (or -1 for none), got {timeout}")
    env, notes = build_environment(os.environ, smoke=smoke)

    build_dir = output_root(root, smoke) / "_build"
    if invalidate_stale_cache(build_dir):
        print(f"samlp_lite sources changed since the last build: cleared {build_dir / '.jupyter_cache'}; "
              "notebooks will be executed again.")
    # _config.yml lists book/_static as a static path; Sphinx warns (fatal under --strict)
    # when it is missing, which it is in a fresh clone where MathJax could not be fetched.
    (root / MATHJAX_DIR.parent).mkdir(parents=True, exist_ok=True)
    mathjax = ensure_mathjax(root)
    config = effective_config(root, build_dir, timeout=timeout, mathjax_cdn=mathjax is None)

    for note in notes:
        print(note)
    cached_before = cache_records(build_dir / ".jupyter_cache")
    command = build_command(root, smoke=smoke, strict=strict, config=config, executable=executable)
    print("$ " + " ".join(command), flush=True)
    returncode = subprocess.run(command, cwd=root, env=env).returncode

    runs = chapter_runs(root, build_dir, started_at=started_at, cached_before=cached_before)
    failed = [run for run in runs if run.status in (FAILED, TIMED_OUT)]
    if runs:
        print("\n" + chapter_table(runs), flush=True)
    if failed:
        # Sphinx re-reads only pages whose source changed; without its saved environment
        # every page is re-read, so the failed notebooks run again next time while the
        # others come straight from the execution cache.
        shutil.rmtree(build_dir / ".doctrees", ignore_errors=True)
        report_failures(failed, build_dir / "html", limit=timeout if timeout is not None
                        else _config_timeout(root))

    html = build_dir / "html" / "index.html"
    wall = time.perf_counter() - started
    mode = " (smoke mode)" if smoke else ""
    if returncode == 0 and not failed:
        print(f"\nBook built in {wall:.1f} s{mode}. Open {_display_path(html)} in a browser.")
        return 0
    if returncode == 0 and not strict:
        print(f"\nBook built in {wall:.1f} s{mode}, but {len(failed)} chapter(s) FAILED and lack "
              f"outputs past the failing cell: {', '.join(run.page for run in failed)}. "
              f"Open {_display_path(html)} in a browser.", file=sys.stderr)
        return 0
    reason = (f"jupyter-book exit code {returncode}" if returncode
              else f"{len(failed)} chapter(s) failed and --strict is set")
    built = f"; the pages that could be built are in {_display_path(html.parent)}" if html.is_file() else ""
    print(f"\nBook build FAILED after {wall:.1f} s ({reason}){built}; "
          "see the warnings and errors above.", file=sys.stderr)
    return returncode or 1


# ------------------------------------------------------------------------ per-chapter report

@dataclass(frozen=True)
class ChapterRun:
    """How one notebook chapter fared in a build.

    Attributes:
        page: the document name, such as ``notebooks/09_ablations``.
        status: :data:`EXECUTED`, :data:`CACHED`, :data:`FAILED`, :data:`TIMED_OUT` or
            :data:`NOT_RUN`.
        seconds: execution time; for a cached chapter, that of the run that filled the cache.
        error: the exception's class name when it failed (``CellTimeoutError``...).
        message: a line or two saying why it failed.
    """

    page: str
    status: str
    seconds: float | None = None
    error: str | None = None
    message: str | None = None


def cache_records(cache_dir: str | Path) -> set[tuple[int, str, str]]:
    """``(pk, uri, created)`` of every notebook in a jupyter-cache folder; empty when there is none.

    Compared before and after a build, the new records are the notebooks it executed.
    """
    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        return set()
    try:
        from jupyter_cache import get_cache

        return {(record.pk, str(record.uri), str(record.created))
                for record in get_cache(str(cache_dir)).list_cache_records()}
    except Exception as err:  # an unreadable cache only costs the executed/cached distinction
        _warn(f"could not read the execution cache {cache_dir}: {err}")
        return set()


def execution_data(build_dir: str | Path) -> dict[str, dict[str, Any]]:
    """myst-nb's execution data of every notebook page, from Sphinx's saved environment.

    Returns:
        ``{page: {"runtime", "succeeded", "error", "traceback", "mtime", "method"}}``; empty
        when the build saved no environment (it stopped before reading every page).
    """
    path = Path(build_dir) / ".doctrees" / "environment.pickle"
    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as handle:
            env = _TolerantUnpickler(handle).load()  # our own build's file, written moments ago
    except Exception as err:
        _warn(f"could not read {path} for the chapter report: {err}")
        return {}
    metadata = getattr(env, "nb_metadata", None) or {}
    return {page: dict(data["exec_data"]) for page, data in metadata.items()
            if isinstance(data, dict) and data.get("exec_data")}


class _Unavailable:
    """Stands in for a class of a Sphinx extension that this process cannot import."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


class _TolerantUnpickler(pickle.Unpickler):
    """Loads Sphinx's environment even when it holds objects of a book-local extension
    (``sphinx.local_extensions`` is on ``sys.path`` only inside the build)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return _Unavailable


def chapter_runs(root: str | Path, build_dir: str | Path, *, started_at: float,
                 cached_before: set[tuple[int, str, str]] | None = None) -> list[ChapterRun]:
    """Status and execution time of every notebook chapter of a finished build, in reading order.

    Args:
        root: the book root (holding ``_toc.yml``).
        build_dir: the build folder (``<path-output>/_build``).
        started_at: ``time.time()`` when the build started; tells executed from reused
            outputs when the cache cannot.
        cached_before: :func:`cache_records` of the cache before the build; a notebook with
            a record that was not there before was executed by this build. ``None`` when
            unknown.

    Returns:
        One :class:`ChapterRun` per page of the table of contents that is a notebook or
        has execution data.
    """
    root, build_dir = Path(root), Path(build_dir)
    data = execution_data(build_dir)
    new_records: set[Path] | None = None
    if cached_before is not None:
        new_records = {Path(uri).resolve() for pk, uri, created in
                       cache_records(build_dir / ".jupyter_cache") - cached_before}
    runs = []
    for page in toc_pages(root / "_toc.yml"):
        notebook = root / f"{page}.ipynb"
        exec_data = data.get(page)
        if exec_data is None:
            if notebook.is_file():
                runs.append(ChapterRun(page, NOT_RUN))
            continue
        seconds = exec_data.get("runtime")
        error = exec_data.get("error")
        if not exec_data.get("succeeded", False):
            status = TIMED_OUT if error == "CellTimeoutError" else FAILED
            runs.append(ChapterRun(page, status, seconds, error,
                                   failure_message(exec_data.get("traceback") or "", status)))
            continue
        source = next((root / f"{page}{suffix}" for suffix in PAGE_SUFFIXES
                       if (root / f"{page}{suffix}").is_file()), notebook)
        if new_records is not None and exec_data.get("method") == "cache":
            executed = source.resolve() in new_records
        else:
            executed = float(exec_data.get("mtime") or 0) >= started_at
        runs.append(ChapterRun(page, EXECUTED if executed else CACHED, seconds))
    return runs


def failure_message(traceback: str, status: str) -> str:
    """The line or two of a notebook traceback that say what went wrong, without colours."""
    lines = [line.rstrip() for line in _ANSI.sub("", traceback).splitlines()]
    if status == TIMED_OUT:
        said = next((line.split(": ", 1)[-1] for line in lines if "timed out while" in line), "a cell timed out")
        try:  # nbclient previews the cell between two rules of dashes
            rule = lines.index("-------------------")
            preview = next(line.strip() for line in lines[rule + 1:] if line.strip())
            if not preview.startswith("---"):
                said += f" Cell: {preview[:100]}"
        except (ValueError, StopIteration):
            pass
        return said
    meaningful = [line.strip() for line in lines if line.strip() and not set(line.strip()) <= set("-")]
    return meaningful[-1][:300] if meaningful else "the notebook raised an error"


def chapter_table(runs: Sequence[ChapterRun]) -> str:
    """A plain-text table of the chapters: page, seconds, status (cached: the run that filled the cache)."""
    width = max([len("chapter")] + [len(run.page) for run in runs])
    lines = ["Chapter execution (seconds of a cached chapter are those of the run that filled the cache):",
             f"  {'chapter':<{width}}  {'seconds':>8}  status"]
    for run in runs:
        seconds = f"{run.seconds:8.1f}" if run.seconds is not None else f"{'-':>8}"
        status = run.status.upper() if run.status in (FAILED, TIMED_OUT) else run.status
        lines.append(f"  {run.page:<{width}}  {seconds}  {status}")
    executed = sum(run.seconds or 0 for run in runs if run.status in (EXECUTED, FAILED, TIMED_OUT))
    counts = ", ".join(f"{sum(run.status == s for run in runs)} {s}"
                       for s in (EXECUTED, CACHED, FAILED, TIMED_OUT, NOT_RUN)
                       if any(run.status == s for run in runs))
    lines.append(f"  {len(runs)} chapter(s): {counts}; {executed:.1f} s executing in this build.")
    return "\n".join(lines)


def report_failures(failed: Sequence[ChapterRun], html_dir: Path, *, limit: int | None = None) -> None:
    """Print, to stderr, which chapters failed or timed out, why, and what to do."""
    bar = "!" * 78
    lines = [bar, f"!!! {len(failed)} chapter(s) FAILED: their pages show outputs only up to the "
             "failing cell.", bar]
    for run in failed:
        took = f" after {run.seconds:.0f} s" if run.seconds is not None else ""
        lines.append(f"  {run.page}: {run.status}{took}: {run.message or run.error}")
        lines.append(f"      traceback: {_display_path(html_dir / 'reports' / (run.page + '.err.log'))}")
    if any(run.status == TIMED_OUT for run in failed):
        per_cell = f"{limit} s" if limit and limit > 0 else "the configured limit"
        lines.append(f"  A cell ran past the per-cell limit ({per_cell}). On a busy machine keep "
                     f"{THREADS_ENV}=1; raise the limit with --timeout SECONDS or {TIMEOUT_ENV}.")
    lines.append("  Every other page was built. The next `samlp-lite book` runs the failed chapters "
                 "again; the others come from the execution cache.")
    lines.append(bar)
    print("\n" + "\n".join(lines), file=sys.stderr, flush=True)


def _config_timeout(root: Path) -> int | None:
    try:
        config = yaml.safe_load((root / "_config.yml").read_text()) or {}
        return int((config.get("execute") or {}).get("timeout"))
    except (OSError, TypeError, ValueError, yaml.YAMLError):
        return None


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
