"""Where raw files live, the writable mirror PyG works in, and the offline checks.

The data root (``$SAMLP_DATA``) may be read-only, like ``shared/data``. PyG writes
``processed/`` next to ``raw/``, so raw files are linked into a mirror under
``<cache_dir()>/datasets`` with the same layout and PyG is pointed at the mirror. When the data
root lies inside the cache (the default, ``<cache_dir()>/data``) it is used directly.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import urllib.parse
from pathlib import Path
from typing import Iterator, Sequence

from samlp_lite.runtime import cache_dir

DATA_ENV = "SAMLP_DATA"
OFFLINE_ENV = "SAMLP_OFFLINE"


class DatasetNotAvailableError(FileNotFoundError):
    """A dataset's files are missing under the data root and cannot be downloaded."""


def data_root() -> Path:
    """Folder holding raw dataset files: ``$SAMLP_DATA``, default ``<cache_dir()>/data``."""
    value = os.environ.get(DATA_ENV)
    if value:
        return Path(value).expanduser().resolve()
    return (cache_dir() / "data").resolve()


def mirror_root() -> Path:
    """Writable folder with the data root's layout, where PyG and OGB process files."""
    return (cache_dir() / "datasets").resolve()


def resolve_root(root: str | Path | None) -> Path:
    """``root`` as an absolute path, or the data root when ``None``."""
    return data_root() if root is None else Path(root).expanduser().resolve()


def root_is_writable_cache(root: Path) -> bool:
    """True when ``root`` lies inside ``cache_dir()``, so loaders may write next to raw files."""
    cache = cache_dir().resolve()
    return root == cache or cache in root.parents


def work_root(root: Path) -> Path:
    """The folder loaders hand to PyG/OGB: ``root`` itself if it is the cache, else the mirror."""
    return root if root_is_writable_cache(root) else mirror_root()


def missing_files(root: Path, relative_paths: Sequence[str]) -> list[str]:
    """The files (relative paths) found neither under ``root`` nor downloaded into its working copy."""
    work = work_root(root)
    return [rel for rel in relative_paths
            if not (root / rel).is_file()
            and not ((work / rel).is_file() and not (work / rel).is_symlink())]


def mirror_files(root: Path, relative_paths: Sequence[str]) -> Path:
    """Link every listed file present under ``root`` into the working copy; return that copy.

    Files downloaded into the working copy earlier are kept; links to files no longer under
    ``root`` are removed. Links are symbolic; where the file system refuses them, files are copied.
    """
    work = work_root(root)
    if work == root:
        return work
    for rel in relative_paths:
        source, target = root / rel, work / rel
        if not source.is_file():
            if target.is_symlink():
                target.unlink(missing_ok=True)
            continue
        if target.is_symlink() and target.resolve() == source.resolve():
            continue
        if target.exists() and not target.is_symlink() and target.stat().st_size == source.stat().st_size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink(missing_ok=True)
        try:
            target.symlink_to(source)
        except FileExistsError:
            pass
        except OSError:
            shutil.copy2(source, target)
    return work


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` so parallel runs do not process one dataset twice."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(folder / ".samlp_lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def network_available(url: str, timeout: float = 3.0) -> bool:
    """Whether the host of ``url`` accepts a connection; ``False`` when ``$SAMLP_OFFLINE`` is set."""
    if os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def not_available_message(name: str, root: Path, folder_files: dict[str, list[str]],
                          reason: str, hint: str = "") -> str:
    """The text of a ``DatasetNotAvailableError``: what is missing, where it belongs, how to fix it."""
    lines = [f"dataset {name!r} is not available: {reason}."]
    for folder, files in folder_files.items():
        lines.append(f"  expected in {root / folder}/: {', '.join(files)}")
    if hint:
        lines.append(f"  {hint}")
    lines.append(f"  The data root is {root} (set {DATA_ENV} to the folder that holds these files; "
                 "see shared/data/SOURCES.md for the layout).")
    return "\n".join(lines)


CHECKSUMS_FILE = "SHA256SUMS"


def listed_checksums(root: Path) -> dict[str, str]:
    """``relative path -> sha256`` from ``<root>/SHA256SUMS`` (``sha256sum`` format); empty when absent."""
    listing = root / CHECKSUMS_FILE
    if not listing.is_file():
        return {}
    sums = {}
    for line in listing.read_text().splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            sums[parts[1].lstrip("*").removeprefix("./")] = parts[0].lower()
    return sums


_VERIFIED: dict[tuple[str, int, int], str] = {}


def corrupt_files(root: Path, relative_paths: Sequence[str]) -> list[tuple[str, str, str]]:
    """Files under ``root`` whose sha256 differs from ``SHA256SUMS``: ``(path, expected, actual)`` each.

    Files the listing does not name, or that are absent, are not checked; a file is hashed once
    per process while its size and modification time stay the same.
    """
    sums = listed_checksums(root)
    bad = []
    for rel in relative_paths:
        path = root / rel
        if rel not in sums or not path.is_file():
            continue
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in _VERIFIED:
            _VERIFIED[key] = sha256_of(path)
        if _VERIFIED[key] != sums[rel]:
            bad.append((rel, sums[rel], _VERIFIED[key]))
    return bad
