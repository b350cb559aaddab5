"""On-disk cache of teacher soft labels (logits), so every student reads one trained teacher.

Entries are plain tensor dicts saved with ``torch.save`` and read with ``weights_only=True``
(no pickle of arbitrary objects). Each entry stores its own key; a file whose key, shapes or
values do not match the request is reported as stale and retrained, never used.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from samlp_lite.runtime import cache_dir

FORMAT_VERSION = 2


@dataclass(frozen=True)
class CacheKey:
    """What identifies a teacher's soft labels.

    Attributes:
        dataset: the graph's name (a folder of the cache, for people browsing it).
        teacher, split, seed, setting: the run.
        config_hash: hash of the config keys that change a teacher.
        graph: the graph's content fingerprint (:attr:`~samlp_lite.data.GraphData.fingerprint`),
            so an edited graph, or another graph with the same name, never reuses an entry.
        held_out: inductive only: the fingerprint of the held-out nodes the teacher never saw.
    """

    dataset: str
    teacher: str
    split: int
    seed: int
    setting: str
    config_hash: str
    graph: str = ""
    held_out: str = ""

    def path(self, root: Path | None = None) -> Path:
        """File of this entry under ``<cache>/soft_labels``."""
        root = root or cache_dir() / "soft_labels"
        name = f"split{self.split}-seed{self.seed}-{self.config_hash}-{self.graph}{self.held_out and '-' + self.held_out}.pt"
        return root / self.dataset / self.teacher / self.setting / name

    def as_dict(self) -> dict[str, Any]:
        """The key as a plain dict (stored inside the entry)."""
        return dict(self.__dict__)


class StaleCacheEntry(Exception):
    """A cache file exists but cannot be trusted (corrupt, mismatched key or shape)."""


def save_soft_labels(key: CacheKey, tensors: dict[str, Tensor], meta: dict[str, Any],
                     root: Path | None = None) -> Path:
    """Atomically store ``tensors`` (e.g. ``logits``) with ``meta`` (accuracies, sizes) under ``key``."""
    path = key.path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT_VERSION, "key": key.as_dict(), "meta": dict(meta),
               "tensors": {name: t.detach().cpu().contiguous() for name, t in tensors.items()}}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_soft_labels(key: CacheKey, expected_shapes: dict[str, tuple[int, ...]],
                     root: Path | None = None) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
    """Return ``(tensors, meta)`` for ``key``, or ``None`` when absent.

    Raises:
        StaleCacheEntry: the file is unreadable, belongs to another key, lacks a tensor, has
            the wrong shape, or holds non-finite values.
    """
    path = key.path(root)
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to read means the entry is unusable
        raise StaleCacheEntry(f"{path}: unreadable ({type(err).__name__}: {err})") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise StaleCacheEntry(f"{path}: unknown cache format")
    if payload.get("key") != key.as_dict():
        raise StaleCacheEntry(f"{path}: stored key {payload.get('key')} differs from {key.as_dict()}")
    tensors = payload.get("tensors") or {}
    for name, shape in expected_shapes.items():
        tensor = tensors.get(name)
        if not isinstance(tensor, Tensor):
            raise StaleCacheEntry(f"{path}: missing tensor {name!r}")
        if tuple(tensor.shape) != tuple(shape):
            raise StaleCacheEntry(f"{path}: {name} has shape {tuple(tensor.shape)}, expected {tuple(shape)}")
        if not torch.isfinite(tensor).all():
            raise StaleCacheEntry(f"{path}: {name} holds NaN or inf")
    return tensors, payload.get("meta") or {}
