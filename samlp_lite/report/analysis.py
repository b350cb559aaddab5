"""Per-node and per-graph quantities the notebooks analyse: local homophily, duplicate-row
leakage, receptive-field sizes, serving cost, the gate of a trained SA-MLP, and a small
homophily sweep on synthetic graphs (MLP versus GNNs).

Everything here is data logic; figures live in :mod:`samlp_lite.report.plotting`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from samlp_lite.data import GraphData

if TYPE_CHECKING:
    from samlp_lite.models.students import SAMLPOutput
    from samlp_lite.train.distill import TrainedStudent

__all__ = ["GateReading", "binned_means", "duplicate_feature_leakage", "gate_summary", "gate_vs_local_homophily",
           "homophily_sweep", "local_homophily", "read_gate", "receptive_field_sizes", "samlp_multiply_adds",
           "student_parts"]


def local_homophily(edge_index: Tensor, y: Tensor, num_nodes: int | None = None) -> Tensor:
    """Fraction of each node's neighbours that share its label (Pei et al., 2020).

    The mean over non-isolated nodes is the graph's node homophily, as reported by
    :func:`samlp_lite.data.graph_statistics`.

    Args:
        edge_index: long ``[2, E]``; for an undirected graph both directions are stored.
            Node i's neighbours are the sources of the edges into i (PyG's flow), which for
            an undirected graph are simply its neighbours.
        y: long ``[N]`` labels.
        num_nodes: N (default ``y.numel()``).

    Returns:
        float ``[N]`` in ``[0, 1]``, NaN for nodes without neighbours.
    """
    num_nodes = int(y.numel() if num_nodes is None else num_nodes)
    source, target = edge_index[0], edge_index[1]
    same = (y[source] == y[target]).float()
    hits = torch.zeros(num_nodes).index_add_(0, target, same)
    degree = torch.zeros(num_nodes).index_add_(0, target, torch.ones_like(same))
    out = hits / degree.clamp(min=1.0)
    return out.masked_fill(degree == 0, float("nan"))


def binned_means(values: Tensor | np.ndarray, targets: Tensor | np.ndarray, bins: int = 10,
                 value_range: tuple[float, float] = (0.0, 1.0)
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of ``targets`` within equal-width bins of ``values`` (NaN pairs are dropped).

    Args:
        values: ``[n]`` the binned quantity (e.g. local homophily).
        targets: ``[n]`` the averaged quantity (e.g. the gate alpha).
        bins: number of bins (default 10).
        value_range: ``(low, high)`` of the bins (default ``(0, 1)``); the last bin is closed.

    Returns:
        ``(centres, means, counts)``, each ``[bins]``; an empty bin has mean NaN.
    """
    values = np.asarray(values, dtype=float).reshape(-1)
    targets = np.asarray(targets, dtype=float).reshape(-1)
    if values.shape != targets.shape:
        raise ValueError(f"values and targets must have the same length, got {values.size} and {targets.size}")
    keep = np.isfinite(values) & np.isfinite(targets)
    values, targets = values[keep], targets[keep]
    edges = np.linspace(value_range[0], value_range[1], bins + 1)
    which = np.clip(np.digitize(values, edges[1:-1], right=False), 0, bins - 1)
    inside = (values >= edges[0]) & (values <= edges[-1])
    counts = np.bincount(which[inside], minlength=bins)
    sums = np.bincount(which[inside], weights=targets[inside], minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return (edges[:-1] + edges[1:]) / 2, means, counts


def duplicate_feature_leakage(graph: GraphData, split: int = 0) -> dict:
    """How many nodes share an identical feature row, and how that leaks across a split.

    Chameleon and Squirrel (Geom-GCN preprocessing) contain duplicated nodes (Platonov et
    al., ICLR 2023); a test node whose exact feature vector also belongs to a training node
    can be answered by memorising that copy's label.

    Args:
        graph: the dataset.
        split: split index (default 0).

    Returns:
        dict with ``duplicate_feature_rows`` (N minus the number of distinct rows, as in
        :func:`~samlp_lite.data.graph_statistics`), ``nodes_with_copy`` (nodes whose row
        occurs more than once), ``test_nodes``, ``test_with_train_copy`` (test nodes whose
        row equals a training node's) and ``copy_label_agreement`` (among those, the fraction
        whose label equals the majority label of their training copies; NaN when none).
    """
    x = graph.data.x
    y = graph.data.y
    _, group, counts = torch.unique(x, dim=0, return_inverse=True, return_counts=True)
    num_groups = counts.numel()
    s = graph.split(split)
    in_train = torch.zeros(graph.num_nodes, dtype=torch.bool)
    in_train[s.train] = True
    # Label counts of the training nodes in each group: [groups, C].
    train_votes = torch.zeros(num_groups, graph.num_classes)
    train_votes.index_put_((group[s.train], y[s.train]), torch.ones(s.train.numel()), accumulate=True)
    test_groups = group[s.test]
    has_copy = train_votes[test_groups].sum(1) > 0
    majority = train_votes[test_groups].argmax(1)
    agree = (majority == y[s.test])[has_copy]
    return {
        "duplicate_feature_rows": int(graph.num_nodes - num_groups),
        "nodes_with_copy": int((counts[group] > 1).sum()),
        "test_nodes": int(s.test.numel()),
        "test_with_train_copy": int(has_copy.sum()),
        "copy_label_agreement": float(agree.float().mean()) if agree.numel() else float("nan"),
    }


def receptive_field_sizes(edge_index: Tensor, num_nodes: int, hops: int = 2) -> Tensor:
    """Number of distinct other nodes within ``hops`` hops of each node.

    A ``hops``-layer message-passing GNN must fetch the features of all of them to serve one
    node; SA-MLP needs only the 1-hop ids.

    Args:
        edge_index: long ``[2, E]`` (undirected graph, both directions stored).
        num_nodes: N.
        hops: neighbourhood radius (default 2).

    Returns:
        long ``[N]``.
    """
    import scipy.sparse as sp

    if hops < 1:
        raise ValueError(f"hops must be at least 1, got {hops}")
    row, col = edge_index.numpy()
    adjacency = sp.csr_matrix((np.ones(row.size, dtype=np.float32), (row, col)), shape=(num_nodes, num_nodes))
    adjacency.data[:] = 1.0
    reach = adjacency.copy()
    frontier = adjacency
    for _ in range(hops - 1):
        frontier = frontier @ adjacency
        frontier.data[:] = 1.0
        reach = reach + frontier
    reach = reach.tocsr()
    reach.setdiag(0)
    reach.eliminate_zeros()
    return torch.from_numpy(np.diff(reach.indptr).astype(np.int64))


def samlp_multiply_adds(degree: Tensor, num_features: int, hidden: int, num_classes: int,
                        feature_nnz: Tensor | None = None) -> Tensor:
    """Multiply-adds SA-MLP spends on one node (one-layer heads).

    ``deg * h`` (sum of neighbour columns of ``W_A``) ``+ d * h`` (feature encoder)
    ``+ 2 * h * C`` (two heads) ``+ 2 * h`` (gate): the O(deg h + d h + h C) of the method.

    Args:
        degree: ``[N]`` adjacency-row lengths.
        num_features, hidden, num_classes: d, h, C.
        feature_nnz: ``[N]`` non-zero features per node; when given, the feature encoder
            costs ``nnz * h`` (a sparse input) instead of ``d * h``.

    Returns:
        float ``[N]``.
    """
    degree = torch.as_tensor(degree, dtype=torch.float64)
    features = (torch.as_tensor(feature_nnz, dtype=torch.float64) if feature_nnz is not None
                else torch.full_like(degree, float(num_features)))
    return degree * hidden + features * hidden + 2 * hidden * num_classes + 2 * hidden


@torch.no_grad()
def student_parts(model: torch.nn.Module, features: Tensor, adjacency, nodes: Tensor | None = None,
                  chunk_size: int = 65536):
    """Run an SA-MLP with ``return_parts=True`` over many nodes, in chunks, in eval mode.

    Args:
        model: an SA-MLP student (``samlp_lite.models.students.SAMLP``).
        features: ``[N, d]`` features as the student reads them (dense or sparse CSR; see
            ``TrainedStudent.features`` of ``samlp_lite.train.distill``).
        adjacency: the student's :class:`~samlp_lite.data.adjacency.AdjacencyRows`.
        nodes: long ``[B]`` node ids (default: all N).
        chunk_size: nodes per forward pass (default 65536).

    Returns:
        ``samlp_lite.models.students.SAMLPOutput`` on the CPU: ``logits [B, C]``, ``alpha [B]``
        (gate only), head logits and embeddings.
    """
    from samlp_lite.data.features import select_rows
    from samlp_lite.models.students import SAMLP, SAMLPOutput

    if not isinstance(model, SAMLP):
        raise ValueError(f"student_parts needs an SAMLP, got {type(model).__name__}")
    model.eval()
    device = next(model.parameters()).device
    nodes = torch.arange(features.shape[0]) if nodes is None else torch.as_tensor(nodes).long().cpu()
    adjacency = adjacency.to("cpu") if adjacency is not None else None
    parts: list = []
    for start in range(0, nodes.numel(), chunk_size):
        batch = nodes[start:start + chunk_size]
        x = select_rows(features, batch.to(features.device)).to(device)
        adj = adjacency.gather(batch).to(device) if adjacency is not None else None
        parts.append(model(x, adj, return_parts=True))
    joined = []
    for index in range(len(SAMLPOutput._fields)):
        pieces = [p[index] for p in parts]
        joined.append(None if not pieces or pieces[0] is None else torch.cat([t.cpu() for t in pieces]))
    return SAMLPOutput(*joined)


def homophily_sweep(homophilies: Sequence[float], models: Iterable[str] = ("mlp", "sage"), *,
                    num_nodes: int = 1500, num_classes: int = 5, avg_degree: float = 10.0,
                    num_features: int = 32, feature_signal: float = 1.0, seed: int = 0,
                    overrides: Mapping | None = None, progress: bool = False):
    """Train an MLP and GNNs on CSBM graphs of varying edge homophily (split 0 each).

    The MLP reads features only, so its accuracy should not depend on homophily; a GNN
    averages neighbours, which helps when they share the label and hurts when they do not.

    Args:
        homophilies: target edge homophilies for :func:`~samlp_lite.data.make_csbm`.
        models: ``mlp`` and/or teacher names (``gcn``, ``sage``, ``gat``, ``appnp``).
        num_nodes, num_classes, avg_degree, num_features, feature_signal: CSBM parameters
            (defaults 1500, 5, 10, 32, 1.0).
        seed: seeds the graphs and the training (default 0).
        overrides: config overrides applied to every run (e.g. ``{"max_epochs": 200}``).
        progress: show progress bars.

    Returns:
        pandas.DataFrame: one row per (homophily, model), with columns ``homophily``
        (target), ``edge_homophily`` (measured), ``model``, ``val_acc`` and ``test_acc``.
    """
    import pandas as pd

    from samlp_lite.config import resolve_config
    from samlp_lite.data import graph_statistics, make_csbm
    from samlp_lite.models.teachers import TEACHERS
    from samlp_lite.train.distill import train_student
    from samlp_lite.train.teacher import train_teacher

    rows = []
    for h in homophilies:
        graph = make_csbm(num_nodes=num_nodes, num_classes=num_classes, avg_degree=avg_degree,
                          num_features=num_features, homophily=float(h), feature_signal=feature_signal,
                          num_splits=1, seed=seed, name=f"csbm-h{float(h):.2f}")
        measured = graph_statistics(graph)["edge_homophily"]
        s = graph.split(0)
        for model in models:
            config = resolve_config(graph.name, model, {"seed": seed, **dict(overrides or {})})
            if model in TEACHERS:
                trained = train_teacher(model, graph.data, s.train, s.val, s.test, graph.num_classes, config,
                                        progress=progress)
            elif model == "mlp":
                trained = train_student("mlp", graph.data, s.train, s.val, s.test, graph.num_classes, config,
                                        progress=progress)
            else:
                raise ValueError(f"homophily_sweep trains 'mlp' or a teacher {list(TEACHERS)}, got {model!r}")
            rows.append({"homophily": float(h), "edge_homophily": measured, "model": model,
                         "val_acc": trained.val_acc, "test_acc": trained.test_acc})
    return pd.DataFrame(rows)


@dataclass
class GateReading:
    """A distilled SA-MLP and what it computes for every node (see :func:`read_gate`).

    Attributes:
        trained: the trained student (model, logits, accuracies, adjacency rows).
        parts: :func:`student_parts` of every node: ``alpha [N]``, head logits, embeddings.
        teacher_logits: ``[N, C]`` logits of the teacher it learned from.
    """

    trained: "TrainedStudent"
    parts: "SAMLPOutput"
    teacher_logits: Tensor


def read_gate(graph: GraphData, *, teacher: str = "sage", split: int = 0, teacher_overrides: Mapping | None = None,
              student_overrides: Mapping | None = None, model: str = "sa-mlp", progress: bool = False) -> GateReading:
    """Distil SA-MLP from a teacher on one split and read its gate ``alpha_i`` for every node.

    The teacher comes from the soft-label cache when it is there. After training, one pass
    over all nodes with ``return_parts=True`` (eval mode, so ``alpha`` is deterministic).

    Args:
        graph: the dataset.
        teacher: the GNN whose soft labels the student learns (default ``sage``).
        split: split index (default 0).
        teacher_overrides, student_overrides: config keys of the teacher and of the student.
        model: an SA-MLP variant with a gate (default ``sa-mlp``).
        progress: show progress bars.

    Raises:
        AssertionError: the read-out disagrees with the trainer's logits or the gate leaves [0, 1].
    """
    from samlp_lite.config import resolve_config
    from samlp_lite.train.distill import train_student
    from samlp_lite.train.soft_labels import get_teacher_outputs

    teacher_config = resolve_config(graph.name, teacher, teacher_overrides)
    teacher_logits = get_teacher_outputs(graph, teacher, split, teacher_config, progress=progress).logits
    s = graph.split(split)
    config = resolve_config(graph.name, model, student_overrides)
    trained = train_student(model, graph.data, s.train, s.val, s.test, graph.num_classes, config,
                            teacher_logits=teacher_logits, progress=progress)
    parts = student_parts(trained.model, trained.features, trained.adjacency)
    if parts.alpha is None:
        raise ValueError(f"{model!r} has no gate (combine={config.combine!r}); read_gate needs combine=gate")
    assert parts.alpha.shape == (graph.num_nodes,)
    assert bool(((parts.alpha >= 0) & (parts.alpha <= 1)).all()), "the gate is a sigmoid"
    assert torch.allclose(parts.logits, trained.logits, atol=1e-5), "same forward pass as the trainer's"
    return GateReading(trained=trained, parts=parts, teacher_logits=teacher_logits)


def _agreement(a: Tensor, b: Tensor) -> float:
    return float((a == b).float().mean()) if a.numel() else float("nan")


def gate_summary(graph: GraphData, reading: GateReading, split: int = 0) -> dict[str, float]:
    """Accuracy of SA-MLP's output and of each head alone, and how often each head agrees with the teacher.

    Args:
        graph: the dataset the reading was made on.
        reading: from :func:`read_gate`.
        split: the split whose test nodes the accuracies use.

    Returns:
        dict with ``edge_homophily``, ``teacher test acc``, ``SA-MLP test acc``, ``structure head
        test acc``, ``feature head test acc``, ``structure head = teacher`` and ``feature head =
        teacher`` (shares of all nodes whose head argmax is the teacher's), ``mean alpha`` and
        ``std alpha``; all fractions.
    """
    from samlp_lite.data import graph_statistics

    parts = reading.parts
    test, y, teacher_class = graph.split(split).test, graph.data.y, reading.teacher_logits.argmax(1)
    structure, features = parts.z_structure.argmax(1), parts.z_features.argmax(1)
    return {"edge_homophily": graph_statistics(graph)["edge_homophily"],
            "teacher test acc": _agreement(teacher_class[test], y[test]),
            "SA-MLP test acc": float(reading.trained.test_acc),
            "structure head test acc": _agreement(structure[test], y[test]),
            "feature head test acc": _agreement(features[test], y[test]),
            "structure head = teacher": _agreement(structure, teacher_class),
            "feature head = teacher": _agreement(features, teacher_class),
            "mean alpha": float(parts.alpha.mean()), "std alpha": float(parts.alpha.std())}


def gate_vs_local_homophily(alpha: Tensor, local: Tensor, degree: Tensor) -> dict[str, float]:
    """Whether a graph's per-node gate follows local homophily (or degree).

    Args:
        alpha: ``[N]`` gate values.
        local: ``[N]`` local homophily from :func:`local_homophily` (NaN for isolated nodes,
            which are left out of everything but the overall mean and std).
        degree: ``[N]`` node degrees.

    Returns:
        dict with ``mean alpha``, ``std alpha``, ``mean alpha, h_i < 0.5``, ``mean alpha,
        h_i >= 0.5`` (NaN when a group is empty), and the Spearman rank correlations
        ``Spearman(alpha, h_i)`` and ``Spearman(alpha, degree)`` (NaN when undefined).
    """
    import pandas as pd

    alpha, local, degree = (torch.as_tensor(t, dtype=torch.float64).reshape(-1) for t in (alpha, local, degree))
    if not alpha.shape == local.shape == degree.shape:
        raise ValueError(f"alpha, local and degree must have one value per node, got {alpha.numel()}, "
                         f"{local.numel()} and {degree.numel()}")
    known = ~local.isnan()
    low, high = known & (local < 0.5), known & (local >= 0.5)
    frame = pd.DataFrame({"alpha": alpha[known].numpy(), "h": local[known].numpy(), "degree": degree[known].numpy()})
    spearman = frame.corr(method="spearman")
    return {"mean alpha": float(alpha.mean()), "std alpha": float(alpha.std()),
            "mean alpha, h_i < 0.5": float(alpha[low].mean()) if low.any() else float("nan"),
            "mean alpha, h_i >= 0.5": float(alpha[high].mean()) if high.any() else float("nan"),
            "Spearman(alpha, h_i)": float(spearman.loc["alpha", "h"]),
            "Spearman(alpha, degree)": float(spearman.loc["alpha", "degree"])}
