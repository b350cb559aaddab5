"""Load a user's own graph from a ``.pt`` or ``.npz`` file, with every input checked."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from samlp_lite.data.graph import GraphData, Split, make_graph
from samlp_lite.data.loaders import pyg_safe_globals
from samlp_lite.data.splits import random_splits

MASK_KEYS = ("train_mask", "val_mask", "test_mask")


def _read_pt(path: Path) -> dict:
    from torch_geometric.data import Data

    try:
        with pyg_safe_globals():
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"{path} holds Python objects other than tensors and PyG Data, which are not "
                         "loaded (unpickling untrusted files can run code); save torch_geometric Data or a "
                         "dict of tensors with torch.save") from None
    except Exception:  # noqa: BLE001 - a truncated or foreign file fails in many ways inside torch
        raise ValueError(f"{path} is not a readable torch file (truncated or corrupt?); save it again with "
                         "torch.save(data, path)") from None
    if isinstance(obj, Data):
        return {key: obj[key] for key in obj.keys()}
    if isinstance(obj, dict):
        return dict(obj)
    raise ValueError(f"{path} holds a {type(obj).__name__}; expected a torch_geometric Data "
                     "or a dict with edge_index, x, y")


def _read_npz(path: Path) -> dict:
    out = {}
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise ValueError(f"{path} is not a readable .npz archive (truncated or corrupt?); write it with "
                         "numpy.savez(path, edge_index=..., x=..., y=...)") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds a single array, not an .npz archive of named arrays; write it with "
                         "numpy.savez(path, edge_index=..., x=..., y=...)")
    with archive:
        for key in archive.files:
            try:
                out[key] = torch.from_numpy(np.asarray(archive[key]))
            except (ValueError, TypeError):
                raise ValueError(f"{path}: array {key!r} is not a plain numeric array (object arrays need "
                                 "pickle, which is not loaded)") from None
            except (OSError, EOFError, zipfile.BadZipFile):
                raise ValueError(f"{path}: array {key!r} cannot be read (truncated or corrupt archive?)") from None
    return out


def _check_edge_index(edge_index: object, num_nodes: int, where: str) -> Tensor:
    edge_index = torch.as_tensor(edge_index)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{where}: edge_index must have shape [2, E], got {list(edge_index.shape)}")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool or edge_index.is_complex():
        raise ValueError(f"{where}: edge_index must be an integer array, got dtype {edge_index.dtype}")
    edge_index = edge_index.long()
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"{where}: edge_index has node ids outside [0, {num_nodes}) "
                         f"(min {int(edge_index.min())}, max {int(edge_index.max())}); N is the number of rows of x")
    return edge_index


def _check_x(x: object, where: str) -> Tensor:
    x = torch.as_tensor(x)
    if x.is_sparse:
        x = x.to_dense()
    if x.dim() != 2:
        raise ValueError(f"{where}: x must be 2-D [N, d], got shape {list(x.shape)}")
    if x.is_complex():
        raise ValueError(f"{where}: x must be real-valued, got dtype {x.dtype}")
    try:
        x = x.float()
    except (TypeError, RuntimeError) as err:
        raise ValueError(f"{where}: x (dtype {x.dtype}) cannot be converted to float32") from err
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        row = int((~finite).any(dim=1).nonzero()[0])
        raise ValueError(f"{where}: x holds {int((~finite).sum())} NaN or infinite value(s) (first in row {row}); "
                         "replace them (e.g. with 0) before loading")
    return x


def _check_y(y: object, num_nodes: int, where: str) -> tuple[Tensor, int]:
    y = torch.as_tensor(y)
    if y.dim() == 2 and y.size(1) == 1:
        y = y.view(-1)
    if y.dim() != 1:
        raise ValueError(f"{where}: y must be 1-D [N], got shape {list(y.shape)}")
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"{where}: y must hold integer class labels, got dtype {y.dtype}")
    if y.numel() != num_nodes:
        raise ValueError(f"{where}: x has {num_nodes} rows but y has {y.numel()} labels; every node needs one "
                         "row of x and one label")
    y = y.long()
    if num_nodes and int(y.min()) < 0:
        raise ValueError(f"{where}: y has negative labels (min {int(y.min())}); labels must be 0..C-1")
    num_classes = int(y.max()) + 1 if num_nodes else 0
    if num_classes < 2:
        raise ValueError(f"{where}: y must have at least 2 classes (labels 0..C-1, C >= 2), got C={num_classes}")
    return y, num_classes


def _check_masks(raw: dict, num_nodes: int, where: str) -> list[Split] | None:
    present = [key for key in MASK_KEYS if raw.get(key) is not None]
    if not present:
        return None
    if len(present) != 3:
        missing = sorted(set(MASK_KEYS) - set(present))
        raise ValueError(f"{where}: has {', '.join(present)} but not {', '.join(missing)}; give all three masks or none")
    masks = []
    for key in MASK_KEYS:
        mask = torch.as_tensor(raw[key])
        if mask.dtype != torch.bool:
            raise ValueError(f"{where}: {key} must be boolean, got dtype {mask.dtype}")
        if mask.dim() not in (1, 2) or mask.size(0) != num_nodes:
            raise ValueError(f"{where}: {key} must have shape [N] or [N, S] with N={num_nodes}, "
                             f"got {list(mask.shape)}")
        masks.append(mask.view(num_nodes, -1))
    if not masks[0].shape == masks[1].shape == masks[2].shape:
        raise ValueError(f"{where}: the masks disagree in shape: {[list(m.shape) for m in masks]}")
    overlap = (masks[0].long() + masks[1].long() + masks[2].long()) > 1
    if bool(overlap.any()):
        node, split = (int(v) for v in overlap.nonzero()[0])
        raise ValueError(f"{where}: node {node} is in more than one of train/val/test in split {split}")
    for s in range(masks[0].size(1)):
        for key, mask in zip(MASK_KEYS, masks):
            if not bool(mask[:, s].any()):
                raise ValueError(f"{where}: {key} selects no node" + (f" in split {s}" if masks[0].size(1) > 1 else "")
                                 + "; every split needs training, validation and test nodes")
    return [Split.from_masks(masks[0][:, s], masks[1][:, s], masks[2][:, s]) for s in range(masks[0].size(1))]


def load_graph_file(path: str | Path, *, num_splits: int = 10, seed: int = 0,
                    name: str | None = None) -> GraphData:
    """Load a node-classification graph from a file and normalise it.

    Accepted files: ``.pt`` holding a PyG ``Data`` (or a dict of tensors), read with
    ``torch.load(weights_only=True)`` so no arbitrary pickle runs; ``.npz`` with arrays
    ``edge_index`` ``[2, E]`` int, ``x`` ``[N, d]``, ``y`` ``[N]`` int in ``0..C-1`` and
    optionally ``train_mask``, ``val_mask``, ``test_mask`` (bool, ``[N]`` or ``[N, S]``).

    Args:
        path: the file.
        num_splits: random splits to make when the file has no masks (default 10).
        seed: seed of those splits (default 0).
        name: graph name; default the file name without suffix.

    Returns:
        the normalised ``GraphData``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: an unsupported suffix or an invalid array, named in the message.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"graph file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".pt":
        raw = _read_pt(path)
    elif suffix == ".npz":
        raw = _read_npz(path)
    else:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; use .pt (PyG Data) or .npz")
    where = str(path)
    for key in ("edge_index", "x", "y"):
        if raw.get(key) is None:
            raise ValueError(f"{where}: missing {key!r} (found keys: {', '.join(sorted(raw)) or 'none'})")
    x = _check_x(raw["x"], where)
    num_nodes = x.size(0)
    y, num_classes = _check_y(raw["y"], num_nodes, where)
    edge_index = _check_edge_index(raw["edge_index"], num_nodes, where)
    splits = _check_masks(raw, num_nodes, where)
    if splits is None:
        splits = random_splits(y, num_splits=num_splits, seed=seed)
        split_note = f"{num_splits} class-stratified 48/32/20 random splits (seed {seed})"
    else:
        split_note = f"{len(splits)} split(s) from the file's masks"
    return make_graph(name or path.stem, x, y, edge_index, splits, num_classes=num_classes,
                      source=f"file {path.name}; {split_note}")
