"""Source-specific loaders: PyG Planetoid / WikipediaNetwork / Amazon, OGB, LINKX arxiv-year.

Each loader takes the working root (see ``paths.work_root``) where raw files are present or
may be downloaded, and returns raw tensors; ``registry.load_dataset`` normalises them.
"""
from __future__ import annotations

import contextlib
import io
import sys
import warnings
from pathlib import Path
from typing import Iterator
from unittest import mock

import numpy as np
import torch
from torch import Tensor

from samlp_lite.data.graph import Split, splits_from_masks
from samlp_lite.data.paths import folder_lock, sha256_of

LINKX_SPLITS_FILE = "linkx/splits/arxiv-year-splits.npy"
LINKX_SPLITS_URL = ("https://raw.githubusercontent.com/CUAI/Non-Homophily-Large-Scale/"
                    "82f8f05c5c3ec16bd5b505cc7ad62ab5e09051e6/data/splits/arxiv-year-splits.npy")
LINKX_SPLITS_SHA256 = "a2d4c8b2ed621270642dcf4886c3f6e425da664b2d31c7a28fb11a6da763077a"


class ChecksumError(ValueError):
    """A downloaded or provided file does not have the pinned sha256."""


@contextlib.contextmanager
def quiet_stdout(progress: bool) -> Iterator[None]:
    """Send library prints to stderr (``progress=True``) or nowhere, so stdout stays clean."""
    if progress:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    else:
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield


def _pyg_safe_globals() -> list:
    from torch_geometric.data import Data
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage
    return [Data, DataEdgeAttr, DataTensorAttr, GlobalStorage]


@contextlib.contextmanager
def pyg_safe_globals() -> Iterator[None]:
    """Allow ``torch.load(weights_only=True)`` to rebuild PyG ``Data`` objects (torch >= 2.6)."""
    with torch.serialization.safe_globals(_pyg_safe_globals()):
        yield


def load_planetoid(work: Path, pyg_name: str, progress: bool) -> tuple[Tensor, Tensor, Tensor, list[Split]]:
    """Planetoid with the ten Geom-GCN splits: ``(x, y, edge_index, splits)``."""
    from torch_geometric.datasets import Planetoid

    with folder_lock(work / "pyg" / pyg_name), quiet_stdout(progress), pyg_safe_globals():
        data = Planetoid(str(work / "pyg"), pyg_name, split="geom-gcn")[0]
    return data.x, data.y, data.edge_index, splits_from_masks(data.train_mask, data.val_mask, data.test_mask)


def load_wikipedia(work: Path, name: str, progress: bool) -> tuple[Tensor, Tensor, Tensor, list[Split]]:
    """WikipediaNetwork (Geom-GCN preprocessing) with its ten splits."""
    from torch_geometric.datasets import WikipediaNetwork

    with folder_lock(work / "pyg" / name), quiet_stdout(progress), pyg_safe_globals():
        data = WikipediaNetwork(str(work / "pyg"), name, geom_gcn_preprocess=True)[0]
    return data.x, data.y, data.edge_index, splits_from_masks(data.train_mask, data.val_mask, data.test_mask)


def load_heterophilous(work: Path, pyg_name: str, progress: bool) -> tuple[Tensor, Tensor, Tensor, list[Split]]:
    """PyG ``HeterophilousGraphDataset`` (Platonov et al., 2023) with its ten fixed 50/25/25 splits."""
    from torch_geometric.datasets import HeterophilousGraphDataset

    folder = pyg_name.lower().replace("-", "_")
    with folder_lock(work / "pyg" / folder), quiet_stdout(progress), pyg_safe_globals():
        data = HeterophilousGraphDataset(str(work / "pyg"), pyg_name)[0]
    return data.x, data.y, data.edge_index, splits_from_masks(data.train_mask, data.val_mask, data.test_mask)


def load_platonov_npz(path: Path) -> tuple[Tensor, Tensor, Tensor, list[Split]]:
    """A graph in Platonov et al.'s ``.npz`` layout (``node_features``, ``node_labels``, ``edges``
    ``[E, 2]`` stored once, ``train_masks``/``val_masks``/``test_masks`` ``[10, N]``) without pickle."""
    with np.load(path, allow_pickle=False) as archive:
        x = torch.from_numpy(archive["node_features"]).float()
        y = torch.from_numpy(archive["node_labels"]).long()
        edge_index = torch.from_numpy(archive["edges"]).long().t().contiguous()
        masks = [torch.from_numpy(archive[key]).t() for key in ("train_masks", "val_masks", "test_masks")]
    return x, y, edge_index, splits_from_masks(*masks)


def load_amazon(work: Path, pyg_name: str, progress: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Amazon co-purchase graph (``Computers`` or ``Photo``), without splits."""
    from torch_geometric.datasets import Amazon

    with folder_lock(work / "pyg" / "Amazon" / pyg_name), quiet_stdout(progress), pyg_safe_globals():
        data = Amazon(str(work / "pyg" / "Amazon"), pyg_name)[0]
    return data.x, data.y, data.edge_index


def _non_interactive_input(prompt: str = "") -> str:
    print(f"{prompt.strip()} [answered automatically: "
          f"{'y' if 'proceed' in prompt.lower() else 'N'}]", file=sys.stderr)
    return "y" if "proceed" in prompt.lower() else "n"


def load_ogb(work: Path, name: str, progress: bool) -> tuple[object, dict[str, Tensor]]:
    """An OGB node-property graph: ``(data, split_idx)``.

    OGB's interactive questions are answered without blocking: "update the dataset?" with no
    (keep the files), "download over 1 GB?" with yes (the caller asked for the dataset).
    """
    from ogb.nodeproppred import dataset_pyg

    def decide_download(url: str) -> bool:
        return True

    with contextlib.ExitStack() as stack:
        stack.enter_context(folder_lock(work / "ogb"))
        stack.enter_context(quiet_stdout(progress))
        stack.enter_context(mock.patch.object(dataset_pyg, "input", _non_interactive_input, create=True))
        stack.enter_context(mock.patch.object(dataset_pyg, "decide_download", decide_download))
        stack.enter_context(pyg_safe_globals())
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        dataset = dataset_pyg.PygNodePropPredDataset(name=name, root=str(work / "ogb"))
        split_idx = dataset.get_idx_split()
        data = dataset[0]
    return data, split_idx


def ogb_split(split_idx: dict[str, Tensor]) -> Split:
    """OGB's official split as a ``Split``."""
    return Split(split_idx["train"], split_idx["valid"], split_idx["test"])


def even_quantile_labels(values: np.ndarray | Tensor, num_classes: int) -> Tensor:
    """Labels from ``num_classes`` equal-frequency bins of ``values`` (LINKX's rule for arxiv-year).

    Args:
        values: ``[N]`` numbers (e.g. publication years).
        num_classes: number of bins.

    Returns:
        long ``[N]`` tensor; bin ``k`` holds values in ``[q_k, q_{k+1})``, the last bin is closed.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    labels = np.full(values.shape[0], -1, dtype=np.int64)
    lower = -np.inf
    for k in range(num_classes - 1):
        upper = np.nanquantile(values, (k + 1) / num_classes)
        labels[(values >= lower) & (values < upper)] = k
        lower = upper
    labels[values >= lower] = num_classes - 1
    return torch.from_numpy(labels)


def load_linkx_splits(path: Path, num_nodes: int) -> list[Split]:
    """LINKX's arxiv-year splits from ``arxiv-year-splits.npy`` after checking its pinned sha256.

    The file is a pickled object array, so it is only unpickled when its hash matches.

    Raises:
        ChecksumError: when the file differs from the published one.
    """
    digest = sha256_of(path)
    if digest != LINKX_SPLITS_SHA256:
        raise ChecksumError(
            f"{path} has sha256 {digest}, expected {LINKX_SPLITS_SHA256} (LINKX commit 82f8f05). "
            "Refusing to unpickle it; delete the file and load again to re-download it, or copy "
            "the file from shared/data/linkx/splits/.")
    raw = np.load(path, allow_pickle=True)
    splits = []
    for entry in raw:
        split = Split(torch.as_tensor(np.asarray(entry["train"], dtype=np.int64)),
                      torch.as_tensor(np.asarray(entry["valid"], dtype=np.int64)),
                      torch.as_tensor(np.asarray(entry["test"], dtype=np.int64)))
        if int(torch.cat([split.train, split.val, split.test]).max()) >= num_nodes:
            raise ValueError(f"{path} lists node ids >= {num_nodes}; it does not belong to ogbn-arxiv")
        splits.append(split)
    return splits


def fetch_linkx_splits(root: Path, work: Path, progress: bool) -> Path:
    """Path of the arxiv-year splits file: under ``root``, else in ``work``, else downloaded there."""
    for base in (root, work):
        if (base / LINKX_SPLITS_FILE).is_file():
            return base / LINKX_SPLITS_FILE
    from torch_geometric.data import download_url

    target = work / LINKX_SPLITS_FILE
    with quiet_stdout(progress):
        downloaded = Path(download_url(LINKX_SPLITS_URL, str(target.parent), log=progress))
    if sha256_of(downloaded) != LINKX_SPLITS_SHA256:
        downloaded.unlink()
        raise ChecksumError(f"the download of {LINKX_SPLITS_URL} does not have the pinned sha256 "
                            f"{LINKX_SPLITS_SHA256}; it was deleted and not used")
    return downloaded
