"""Build the Jupyter Book: cache invalidation, offline MathJax, and the ``jupyter-book`` call.

The book executes notebooks through jupyter-cache, which keys each notebook on its own
code cells only. A notebook whose code did not change is therefore never re-run, even when
the ``samlp_lite`` functions it calls did. :func:`invalidate_stale_cache` closes that gap:
it hashes the package's ``.py`` and ``.yaml`` files and, when the hash differs from the one
stored by the previous build, deletes the execution cache and Sphinx's saved environment
so every notebook runs again.

Usage: ``samlp-lite book [--smoke] [--strict] [--path ROOT] [--timeout SECONDS]``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from samlp_lite.runtime import SMOKE_ENV

PACKAGE_DIR = Path(__file__).resolve().parent
#: Files whose contents decide whether cached notebook outputs are still valid.
SOURCE_SUFFIXES = (".py", ".yaml")
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
PAGE_SUFFIXES = (".md", ".ipynb", ".rst", ".myst")


class BookError(RuntimeError):
    """The book cannot be built as asked; the message says what to do."""


# ---------------------------------------------------------------- execution-cache invalidation

def source_files(package_dir: str | Path = PACKAGE_DIR) -> list[Path]:
    """The package's ``.py`` and ``.yaml`` files, sorted, without ``__pycache__`` contents."""
    package_dir = Path(package_dir)
    return sorted(path for path in package_dir.rglob("*")
                  if path.suffix in SOURCE_SUFFIXES and path.is_file()
                  and "__pycache__" not in path.relative_to(package_dir).parts)


def sources_hash(package_dir: str | Path = PACKAGE_DIR) -> str:
    """SHA-256 over the relative path and bytes of every file in :func:`source_files`.

    Renaming, adding or deleting a file changes the hash, as does editing one; timestamps
    and ``__pycache__`` do not.
    """
    package_dir = Path(package_dir)
    digest = hashlib.sha256()
    for path in source_files(package_dir):
        digest.update(path.relative_to(package_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


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


def build_book(root: str | Path = ".", *, smoke: bool = False, strict: bool = False,
               timeout: int | None = None) -> int:
    """Build the book's HTML; print where it is and how long it took.

    Args:
        root: folder holding ``_config.yml`` and ``_toc.yml``; default the current one.
        smoke: execute notebooks with ``SAMLP_SMOKE=1`` into a separate build folder
            (``_build/smoke/_build/html``) with its own cache.
        strict: warnings (and broken references) fail the build, as in CI.
        timeout: per-cell execution limit in seconds; default ``SAMLP_BOOK_TIMEOUT`` or the
            ``execute.timeout`` of ``_config.yml``.

    Returns:
        The exit code of ``jupyter-book build`` (0 on success).

    Raises:
        BookError: when the root is not a book or Jupyter Book is not installed.
    """
    started = time.perf_counter()
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

    build_dir = output_root(root, smoke) / "_build"
    if invalidate_stale_cache(build_dir):
        print(f"samlp_lite sources changed since the last build: cleared {build_dir / '.jupyter_cache'}; "
              "notebooks will be executed again.")
    # _config.yml lists book/_static as a static path; Sphinx warns (fatal under --strict)
    # when it is missing, which it is in a fresh clone where MathJax could not be fetched.
    (root / MATHJAX_DIR.parent).mkdir(parents=True, exist_ok=True)
    mathjax = ensure_mathjax(root)
    config = effective_config(root, build_dir, timeout=timeout, mathjax_cdn=mathjax is None)

    env = dict(os.environ)
    if smoke:
        env[SMOKE_ENV] = "1"
    elif env.pop(SMOKE_ENV, None) is not None:
        # A full build must never cache smoke-sized outputs as if they were real.
        print(f"note: ignoring {SMOKE_ENV} for this full build; use --smoke for a smoke build.")
    command = build_command(root, smoke=smoke, strict=strict, config=config, executable=executable)
    print("$ " + " ".join(command), flush=True)
    returncode = subprocess.run(command, cwd=root, env=env).returncode

    html = build_dir / "html" / "index.html"
    wall = time.perf_counter() - started
    if returncode == 0:
        print(f"\nBook built in {wall:.1f} s{' (smoke mode)' if smoke else ''}. "
              f"Open {_display_path(html)} in a browser.")
    else:
        print(f"\nBook build FAILED after {wall:.1f} s (jupyter-book exit code {returncode}); "
              "see the warnings and errors above.", file=sys.stderr)
    return returncode


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
