"""Graphs stored on disk for the scale path: a synthetic ogbn-products twin, or any registry graph.

ogbn-products has 2,449,029 nodes, 61,859,140 undirected edges, 100 features and 47 classes.
:func:`make_products_like` writes a synthetic graph of exactly that size and shape, chunk by
chunk, never holding more than a few arrays of the edge count in memory:

- **degrees**: a Chung-Lu graph. Node ``i`` gets a weight ``w_i`` drawn from a shifted Pareto
  (Lomax) law with tail exponent ``degree_exponent`` (default 2.8, so ``P(deg > k) ~ k^-1.8``),
  capped at ``max_degree`` (products' largest degree, 17,481) and scaled so the mean is the
  target degree ``2 E / N``; an edge picks each endpoint with probability proportional to
  its weight, so node ``i``'s expected degree is about ``w_i`` (a heavy tail, hubs, and the
  low-degree majority products has).
- **classes and heterophily**: ``C`` classes of equal size. An edge's source ``u`` is drawn
  by weight; its target's class is ``y_u`` with probability ``homophily``, the class
  ``partner(y_u)`` with probability ``partner``, else a uniform other class; the target is
  drawn by weight inside that class. ``partner`` is one cycle through all classes, so a node
  of class ``c`` sees classes ``c``, ``partner(c)`` and ``partner^-1(c)`` more often than
  others: the neighbourhood tells the class although most neighbours are of another class
  (edge homophily about ``homophily``), which is the regime where structure matters.
- **features**: ``feature_signal * mu[y] + N(0, I)`` with ``mu[c]`` random unit vectors, stored
  as float16: weak alone (an MLP is far from the GNN), strong when averaged over neighbours.
- **edges**: self-loops and repeated pairs are dropped; sampling runs until there are more
  distinct pairs than asked and a uniform random subset of exactly ``num_edges`` is kept.
- **split**: a random split with products' sizes (196,615 train, 39,323 validation, the rest
  test); scaled-down graphs keep the same fractions.

:func:`write_graph` stores a registry :class:`~samlp_lite.data.GraphData` (``ogbn-products``,
``ogbn-arxiv``, ``cora``...) in the same format, so real and synthetic graphs go through the
same training and serving code (:mod:`samlp_lite.runs.scale_local`).

The format (a folder, read with :meth:`DiskGraph.open`, every array memory-mapped):
``rowptr.npy`` int64 ``[N + 1]`` and ``col.npy`` int32 ``[2 E]`` (CSR of the undirected graph,
both directions, rows sorted, no duplicates, no self-loops), ``x.npy`` float16 ``[N, d]``,
``y.npy`` int16 ``[N]``, ``train.npy``/``val.npy``/``test.npy`` int64 node ids, ``meta.json``.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from samlp_lite.records import write_json_atomic

PRODUCTS = dict(num_nodes=2_449_029, num_edges=61_859_140, num_features=100, num_classes=47,
                num_train=196_615, num_val=39_323, max_degree=17_481)
"""ogbn-products' size and shape (OGB's counts; ``num_edges`` undirected) and split sizes."""
ARXIV = dict(num_nodes=169_343, num_edges=1_166_243, num_features=128, num_classes=40, num_train=90_941,
             num_val=29_799)
"""ogbn-arxiv's sizes (OGB's counts; its 1,166,243 citations are directed, so the undirected graph the
registry makes has at most that many edges), for cost projections."""
FORMAT_VERSION = 1
CHUNK = 1 << 22


@dataclass
class DiskGraph:
    """A graph stored by :func:`make_products_like` or :func:`write_graph`, memory-mapped.

    Attributes:
        path: the folder.
        meta: ``meta.json`` (name, counts, how it was made, degree statistics).
        rowptr: int64 ``[N + 1]``; col: int32 ``[2 E]``; x: float16 ``[N, d]``; y: int16 ``[N]``.
        train, val, test: int64 node ids.
    """

    path: Path
    meta: dict
    rowptr: np.ndarray
    col: np.ndarray
    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str | Path) -> "DiskGraph":
        """Map the arrays of the graph in ``path`` (read-only; nothing is loaded)."""
        path = Path(path)
        if not (path / "meta.json").is_file():
            raise FileNotFoundError(f"no stored graph in {path} (meta.json missing)")
        meta = json.loads((path / "meta.json").read_text())
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r")
                  for name in ("rowptr", "col", "x", "y", "train", "val", "test")}
        return cls(path, meta, **arrays)

    @property
    def name(self) -> str:
        """Graph name."""
        return str(self.meta["name"])

    @property
    def num_nodes(self) -> int:
        """N."""
        return int(self.rowptr.shape[0] - 1)

    @property
    def num_entries(self) -> int:
        """Stored CSR entries (both directions of every undirected edge)."""
        return int(self.col.shape[0])

    @property
    def num_edges(self) -> int:
        """Undirected edges (OGB's count)."""
        return self.num_entries // 2

    @property
    def num_features(self) -> int:
        """d."""
        return int(self.x.shape[1])

    @property
    def num_classes(self) -> int:
        """C."""
        return int(self.meta["num_classes"])

    def features(self, nodes: Tensor | np.ndarray) -> Tensor:
        """Float32 feature rows of ``nodes`` (read from the float16 map)."""
        index = np.asarray(nodes, dtype=np.int64)
        return torch.from_numpy(np.ascontiguousarray(self.x[index])).float()

    def labels(self, nodes: Tensor | np.ndarray | None = None) -> Tensor:
        """Long labels of ``nodes`` (default all)."""
        y = self.y if nodes is None else self.y[np.asarray(nodes, dtype=np.int64)]
        return torch.from_numpy(np.array(y, dtype=np.int64))

    def split(self, part: str) -> Tensor:
        """Node ids of ``train``, ``val`` or ``test`` as a long tensor."""
        return torch.from_numpy(np.array(getattr(self, part), dtype=np.int64))

    def rowptr_tensor(self) -> Tensor:
        """Long ``[N + 1]`` row pointer (a copy in memory, N * 8 bytes)."""
        if "rowptr" not in self._cache:
            self._cache["rowptr"] = torch.from_numpy(np.array(self.rowptr, dtype=np.int64))
        return self._cache["rowptr"]

    def col_tensor(self, dtype: torch.dtype = torch.int32) -> Tensor:
        """Column ids in memory: int32 (the map itself, no copy) or int64 (a copy, 2 E * 8 bytes)."""
        key = f"col-{dtype}"
        if key not in self._cache:
            if dtype == torch.int32:
                self._cache[key] = torch.from_numpy(_writable_view(self.col))
            else:
                out = torch.empty(self.num_entries, dtype=dtype)
                for start in range(0, self.num_entries, CHUNK * 4):
                    out[start:start + CHUNK * 4] = torch.from_numpy(np.asarray(self.col[start:start + CHUNK * 4]).astype(np.int64))
                self._cache[key] = out
        return self._cache[key]

    def degree(self) -> Tensor:
        """Long ``[N]`` degrees."""
        rowptr = self.rowptr_tensor()
        return rowptr[1:] - rowptr[:-1]

    def dense_features(self) -> Tensor:
        """Every feature row as float32 ``[N, d]`` (N * d * 4 bytes), converted chunk by chunk."""
        out = torch.empty(self.num_nodes, self.num_features, dtype=torch.float32)
        for start in range(0, self.num_nodes, CHUNK // 4):
            out[start:start + CHUNK // 4] = torch.from_numpy(np.array(self.x[start:start + CHUNK // 4], dtype=np.float32))
        return out

    def __repr__(self) -> str:
        return (f"DiskGraph({self.name!r}, nodes={self.num_nodes:,}, edges={self.num_edges:,}, "
                f"d={self.num_features}, C={self.num_classes}, path={str(self.path)!r})")


def _writable_view(array: np.ndarray) -> np.ndarray:
    """A view torch accepts without warning; the memory map is opened read-only, never written."""
    if isinstance(array, np.memmap) and not array.flags.writeable:
        return np.memmap(array.filename, dtype=array.dtype, mode="c", shape=array.shape,
                         offset=array.offset)
    return np.asarray(array)


def scaled_shape(num_nodes: int) -> dict[str, int]:
    """Products' shape scaled to ``num_nodes``: the same average degree, d, C and split fractions."""
    full = PRODUCTS["num_nodes"]
    if num_nodes >= full:
        return dict(PRODUCTS)
    ratio = num_nodes / full
    return dict(num_nodes=num_nodes, num_edges=int(round(PRODUCTS["num_edges"] * ratio)),
                num_features=PRODUCTS["num_features"], num_classes=PRODUCTS["num_classes"],
                num_train=max(int(round(PRODUCTS["num_train"] * ratio)), PRODUCTS["num_classes"]),
                num_val=max(int(round(PRODUCTS["num_val"] * ratio)), PRODUCTS["num_classes"]),
                max_degree=int(min(PRODUCTS["max_degree"], max(num_nodes // 20, 10))))


def _degree_weights(rng: np.random.Generator, num_nodes: int, mean: float, exponent: float,
                    max_degree: float) -> np.ndarray:
    """Expected degrees ``min(1 + s * Lomax(exponent - 1), max_degree)``, ``s`` set by bisection so the mean is ``mean``."""
    base = np.power(1.0 - rng.random(num_nodes), -1.0 / (exponent - 1.0)) - 1.0
    low, high = 0.0, 1.0
    while np.minimum(1.0 + high * base, max_degree).mean() < mean:
        high *= 2.0
        if high > 1e12:
            raise ValueError(f"max_degree {max_degree} is too small for a mean degree of {mean}")
    for _ in range(60):
        mid = 0.5 * (low + high)
        if np.minimum(1.0 + mid * base, max_degree).mean() < mean:
            low = mid
        else:
            high = mid
    return np.minimum(1.0 + high * base, max_degree)


def make_products_like(path: str | Path, *, name: str = "products-synthetic", num_nodes: int | None = None,
                       num_edges: int | None = None, num_features: int | None = None,
                       num_classes: int | None = None, num_train: int | None = None, num_val: int | None = None,
                       homophily: float = 0.2, partner: float = 0.5, degree_exponent: float = 2.8,
                       max_degree: int | None = None, feature_signal: float = 1.5, seed: int = 0,
                       progress: bool = True) -> DiskGraph:
    """Write a synthetic ogbn-products twin to ``path`` (see the module docstring) and open it.

    Sizes default to ogbn-products' (:data:`PRODUCTS`); with only ``num_nodes`` given, the rest
    scale with it (:func:`scaled_shape`).

    Args:
        path: folder to write (replaced if it holds an unfinished graph).
        name: graph name.
        num_nodes, num_edges, num_features, num_classes, num_train, num_val: sizes
            (``num_edges`` undirected).
        homophily: probability that an edge's target has the source's class.
        partner: probability that it has the partner class.
        degree_exponent: tail exponent of the degree law.
        max_degree: cap on a node's expected degree.
        feature_signal: norm of the class means against unit noise per dimension.
        seed: seeds everything.
        progress: progress bars.

    Returns:
        The stored graph, memory-mapped.
    """
    started = time.perf_counter()
    shape = scaled_shape(num_nodes or PRODUCTS["num_nodes"])
    given = dict(num_nodes=num_nodes, num_edges=num_edges, num_features=num_features, num_classes=num_classes,
                 num_train=num_train, num_val=num_val, max_degree=max_degree)
    shape.update({k: int(v) for k, v in given.items() if v is not None})
    n, e, d, c = shape["num_nodes"], shape["num_edges"], shape["num_features"], shape["num_classes"]
    if not (2 <= c <= n and 0 < e <= n * (n - 1) // 4 and d >= 1):
        raise ValueError(f"impossible sizes: {shape}")
    if not (0.0 <= homophily and 0.0 <= partner and homophily + partner <= 1.0):
        raise ValueError("homophily and partner must be probabilities with homophily + partner <= 1")
    if shape["num_train"] + shape["num_val"] >= n:
        raise ValueError("the training and validation sets leave no test nodes")
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    tmp = path.with_name(path.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    rng = np.random.default_rng(seed)

    # classes (equal sizes) and the partner cycle
    y = (np.arange(n) % c).astype(np.int16)
    rng.shuffle(y)
    order = rng.permutation(c)
    partner_of = np.empty(c, dtype=np.int64)
    partner_of[order] = np.roll(order, -1)

    # Chung-Lu weights, nodes grouped by class for the within-class draw
    weights = _degree_weights(rng, n, 2.0 * e / n, degree_exponent, shape["max_degree"])
    by_class = np.argsort(y, kind="stable").astype(np.int64)
    cum = np.cumsum(weights[by_class])
    class_counts = np.bincount(y, minlength=c)
    class_end = np.cumsum(class_counts)
    class_cum_start = np.concatenate([[0.0], cum[class_end[:-1] - 1]])
    class_cum_total = cum[class_end - 1] - class_cum_start
    total = cum[-1]

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        source = by_class[np.minimum(np.searchsorted(cum, rng.random(count) * total, side="right"), n - 1)]
        source_class = y[source].astype(np.int64)
        kind = rng.random(count)
        shift = rng.integers(1, c, count)
        target_class = np.where(kind < homophily, source_class,
                                np.where(kind < homophily + partner, partner_of[source_class],
                                         (source_class + shift) % c))
        r = class_cum_start[target_class] + rng.random(count) * class_cum_total[target_class]
        target = by_class[np.minimum(np.searchsorted(cum, r, side="right"), n - 1)]
        return source, target

    keys = np.empty(0, dtype=np.int64)
    bar = tqdm(total=e, desc="graph: edges", unit="edge", unit_scale=True, disable=not progress,
               mininterval=_interval())
    while keys.size < e:  # draw about 2% more than missing, merge, repeat while short
        batch, need = [keys], int((e - keys.size) * 1.02) + 1024
        for start in range(0, need, CHUNK):
            source, target = draw(min(CHUNK, need - start))
            low, high = np.minimum(source, target), np.maximum(source, target)
            keep = low != high
            batch.append(low[keep] * n + high[keep])
            bar.update(min(int(keep.sum()), e - bar.n))
        keys = _sorted_unique(np.concatenate(batch))
        del batch
        bar.n = min(keys.size, e)
        bar.refresh()
    bar.close()
    if keys.size > e:  # a uniform subset of exactly e distinct edges
        drop = rng.choice(keys.size, keys.size - e, replace=False)
        mask = np.ones(keys.size, dtype=bool)
        mask[drop] = False
        keys = keys[mask]
    del weights, cum

    _write_csr(tmp, keys, n, progress)
    del keys
    _write_features(tmp, y, d, c, feature_signal, rng, progress)
    perm = rng.permutation(n)
    num_train, num_val = shape["num_train"], shape["num_val"]
    splits = {"train": np.sort(perm[:num_train]), "val": np.sort(perm[num_train:num_train + num_val]),
              "test": np.sort(perm[num_train + num_val:])}
    np.save(tmp / "y.npy", y)
    for part, ids in splits.items():
        np.save(tmp / f"{part}.npy", ids.astype(np.int64))
    description = (f"synthetic ogbn-products twin: Chung-Lu degrees (tail exponent {degree_exponent}, cap "
                   f"{shape['max_degree']}), {c} equal classes, edge targets of the same class with p={homophily}, "
                   f"of the partner class with p={partner}, else another class; float16 features "
                   f"{feature_signal} * mu[y] + N(0, I); random split {num_train}/{num_val}/rest; seed {seed}")
    meta = {"name": name, "format": FORMAT_VERSION, "num_nodes": n, "num_edges": e, "num_features": d,
            "num_classes": c, "synthetic": True, "description": description,
            "options": {"homophily": homophily, "partner": partner, "degree_exponent": degree_exponent,
                        "max_degree": shape["max_degree"], "feature_signal": feature_signal, "seed": seed},
            "build_s": round(time.perf_counter() - started, 1)}
    _finish(tmp, path, meta)
    return DiskGraph.open(path)


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values, by an in-place sort (NumPy's hash-based ``unique`` is slower here)."""
    keys.sort()
    if keys.size < 2:
        return keys
    keep = np.empty(keys.size, dtype=bool)
    keep[0] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def _interval() -> float:
    """Seconds between progress-bar refreshes: often on a terminal, rarely into a log file."""
    import sys

    return 0.5 if sys.stderr.isatty() else 30.0


def _write_csr(folder: Path, keys: np.ndarray, n: int, progress: bool) -> None:
    """CSR of the undirected edges ``low * n + high`` (sorted, distinct), both directions."""
    e = keys.size
    directed = np.empty(2 * e, dtype=np.int64)
    directed[:e] = keys
    low = keys // n
    directed[e:] = (keys - low * n) * n + low
    del low
    directed.sort()
    counts = np.zeros(n, dtype=np.int64)
    col = np.lib.format.open_memmap(folder / "col.npy", mode="w+", dtype=np.int32, shape=(2 * e,))
    step = CHUNK * 4
    for start in tqdm(range(0, 2 * e, step), desc="graph: CSR", disable=not progress, mininterval=_interval()):
        part = directed[start:start + step]
        row = part // n
        counts += np.bincount(row, minlength=n)
        col[start:start + step] = (part - row * n).astype(np.int32)
    col.flush()
    del col, directed
    rowptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=rowptr[1:])
    np.save(folder / "rowptr.npy", rowptr)


def _write_features(folder: Path, y: np.ndarray, d: int, c: int, signal: float, rng: np.random.Generator,
                    progress: bool) -> None:
    means = rng.standard_normal((c, d))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    means = (signal * means).astype(np.float32)
    n = y.shape[0]
    x = np.lib.format.open_memmap(folder / "x.npy", mode="w+", dtype=np.float16, shape=(n, d))
    step = max(CHUNK // d, 1)
    for start in tqdm(range(0, n, step), desc="graph: features", disable=not progress, mininterval=_interval()):
        stop = min(start + step, n)
        noise = rng.standard_normal((stop - start, d), dtype=np.float32)
        x[start:stop] = (noise + means[y[start:stop]]).astype(np.float16)
    x.flush()
    del x


def _finish(tmp: Path, path: Path, meta: dict[str, Any]) -> None:
    """Add degree statistics to ``meta``, write it, and move the folder into place."""
    rowptr = np.load(tmp / "rowptr.npy")
    degree = np.diff(rowptr)
    mean = float(degree.mean())
    meta["degree"] = {"mean": round(mean, 3), "median": float(np.median(degree)), "max": int(degree.max()),
                      "p99": float(np.percentile(degree, 99)), "isolated": int((degree == 0).sum()),
                      "neighbour_mean": round(float((degree.astype(np.float64) ** 2).sum() / max(degree.sum(), 1)), 1)}
    y = np.load(tmp / "y.npy", mmap_mode="r")
    col = np.load(tmp / "col.npy", mmap_mode="r")
    same = 0
    for start in range(0, col.shape[0], CHUNK * 4):  # edge homophily
        stop = min(start + CHUNK * 4, col.shape[0])
        rows = np.searchsorted(rowptr, np.arange(start, stop), side="right") - 1
        same += int((np.asarray(y)[rows] == np.asarray(y)[np.asarray(col[start:stop])]).sum())
    meta["edge_homophily"] = round(same / max(col.shape[0], 1), 4)
    write_json_atomic(tmp / "meta.json", meta)
    tmp.rename(path)


def write_graph(path: str | Path, graph, *, split: int = 0, progress: bool = True) -> DiskGraph:
    """Store a :class:`~samlp_lite.data.GraphData` (e.g. ``ogbn-products`` from the registry) in the disk format.

    The graph's ``edge_index`` is undirected and coalesced already (every registry graph is);
    split ``split`` becomes train/val/test.
    """
    started = time.perf_counter()
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    tmp = path.with_name(path.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    n = graph.num_nodes
    edge_index = graph.data.edge_index
    keys = (edge_index[1].to(torch.int64) * n + edge_index[0]).numpy()  # row = target, col = source
    low, high = keys // n, keys % n
    keys = _sorted_unique(np.minimum(low, high)[low != high] * n + np.maximum(low, high)[low != high])
    del low, high
    _write_csr(tmp, keys, n, progress)
    x = graph.data.x
    x = x.to_dense() if x.layout != torch.strided else x
    np.save(tmp / "x.npy", x.to(torch.float16).numpy())
    np.save(tmp / "y.npy", graph.data.y.numpy().astype(np.int16))
    s = graph.split(split)
    for part in ("train", "val", "test"):
        np.save(tmp / f"{part}.npy", getattr(s, part).numpy().astype(np.int64))
    meta = {"name": graph.name, "format": FORMAT_VERSION, "num_nodes": n, "num_edges": int(keys.size),
            "num_features": int(x.size(1)), "num_classes": int(graph.num_classes), "synthetic": False,
            "description": graph.description, "split": split, "fingerprint": graph.fingerprint,
            "build_s": round(time.perf_counter() - started, 1)}
    _finish(tmp, path, meta)
    return DiskGraph.open(path)


def stored_bytes(graph: DiskGraph) -> dict[str, int]:
    """Bytes of each stored array (what mapping it all would make resident)."""
    return {name: int(getattr(graph, name).nbytes) for name in ("rowptr", "col", "x", "y", "train", "val", "test")}


def format_bytes(nbytes: float) -> str:
    """``1.23 GiB`` style."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.3g} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.3g} TiB"


__all__ = ["DiskGraph", "PRODUCTS", "format_bytes", "make_products_like", "scaled_shape", "stored_bytes",
           "write_graph"]
