"""The one registry of models: every teacher, student and ablation declared once.

A :class:`ModelSpec` says what a model is (teacher, student, or ablation of another model),
how it is built from a :class:`~samlp_lite.config.RunConfig`, whether it learns from a
teacher's soft labels, what it reads at serving time, which tuning stages it has, and its
label and colour in tables and figures. Every other module asks :func:`model_spec` instead
of testing names. Ablations are declared in ``hyperparameters.yaml`` (``models:`` entries
with ``extends``); :func:`model_spec` derives their spec from the model they extend.

Adding a student is one :func:`register` call (or one entry in :data:`REGISTRY` below)
plus its ``nn.Module`` class.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

from samlp_lite.config import RunConfig, load_hyperparameters

if TYPE_CHECKING:  # the registry itself is importable without torch (fast command-line start)
    from torch import Tensor, nn

    from samlp_lite.data.adjacency import AdjacencyRows

ROLES = ("teacher", "student", "ablation")
READS = ("neighbourhood", "features", "adjacency-rows")
"""What a model gathers per target at serving time: its k-hop neighbourhood (GNNs), its
feature row (MLPs), or its feature row and adjacency row (structure-aware students)."""

Builder = Callable[[int, int, int, RunConfig], "nn.Module"]
"""``(num_features, num_classes, num_nodes, config) -> model``."""


@dataclass(frozen=True)
class ModelSpec:
    """One model of the project.

    Attributes:
        name: the name used everywhere (config, records, command line), e.g. ``"sa-mlp"``.
        role: ``teacher``, ``student`` or ``ablation``.
        architecture: the network behind the name: ``gnn``, ``mlp``, ``linkx`` or ``sa-mlp``
            (GLNN is an MLP; SA-MLP without mixing is an SA-MLP trained differently).
        build: makes the untrained model from the config keys that shape it.
        uses_teacher: learns from teacher soft labels (GLNN, SA-MLP) rather than labels only.
        reads: what serving gathers per target (see :data:`READS`).
        tuning_stages: the stages of ``samlp-lite tune`` in order (``model``, then
            ``distillation`` for distilled students); empty for ablations.
        label: display name in tables and figures.
        color: colour in every figure.
        in_tables: a column of the main accuracy tables.
        ablation_of: the model an ablation changes one thing of.
    """

    name: str
    role: str
    architecture: str
    build: Builder
    uses_teacher: bool
    reads: str
    tuning_stages: tuple[str, ...]
    label: str
    color: str
    in_tables: bool = False
    ablation_of: str | None = None

    @property
    def is_teacher(self) -> bool:
        """Whether the model is a GNN teacher."""
        return self.role == "teacher"

    @property
    def reads_structure(self) -> bool:
        """Whether the student reads adjacency rows (LINKX, SA-MLP)."""
        return self.reads == "adjacency-rows"


def _teacher_builder(name: str) -> Builder:
    def build(num_features: int, num_classes: int, num_nodes: int, config: RunConfig) -> "nn.Module":
        from samlp_lite.models.teachers import TEACHER_CLASSES

        return TEACHER_CLASSES[name].from_config(num_features, num_classes, config)

    return build


def _mlp(num_features: int, num_classes: int, num_nodes: int, config: RunConfig) -> "nn.Module":
    from samlp_lite.models.students import build_student

    return build_student("mlp", num_features=num_features, num_classes=num_classes, num_nodes=num_nodes,
                         hidden=config.hidden, num_layers=config.num_layers, dropout=config.dropout, norm=config.norm)


def _linkx(num_features: int, num_classes: int, num_nodes: int, config: RunConfig) -> "nn.Module":
    from samlp_lite.models.students import build_student

    return build_student("linkx", num_features=num_features, num_classes=num_classes, num_nodes=num_nodes,
                         hidden=config.hidden, num_layers=config.num_layers, dropout=config.dropout,
                         num_edge_layers=config.linkx_layers, num_node_layers=config.linkx_layers)


def _sa_mlp(num_features: int, num_classes: int, num_nodes: int, config: RunConfig) -> "nn.Module":
    from samlp_lite.models.students import build_student

    return build_student("sa-mlp", num_features=num_features, num_classes=num_classes, num_nodes=num_nodes,
                         hidden=config.hidden, head_layers=config.head_layers, dropout=config.dropout,
                         norm=config.norm, combine=config.combine, use_structure=config.use_structure,
                         use_features=config.use_features)


REGISTRY: dict[str, ModelSpec] = {}
"""Every declared model by name, in the order of the paper's tables (teachers first)."""


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to :data:`REGISTRY` (a name may be declared once)."""
    if spec.name in REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    if spec.role not in ROLES or spec.reads not in READS:
        raise ValueError(f"model {spec.name!r}: role must be one of {ROLES} and reads one of {READS}")
    REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a model added with :func:`register` (tests register toy students)."""
    REGISTRY.pop(name, None)


_DISTILLED = ("model", "distillation")
for _name, _label, _color in (("gcn", "GCN", "#2ca02c"), ("sage", "SAGE", "#17becf"),
                              ("gat", "GAT", "#bcbd22"), ("appnp", "APPNP", "#8c564b")):
    register(ModelSpec(_name, "teacher", "gnn", _teacher_builder(_name), uses_teacher=False,
                       reads="neighbourhood", tuning_stages=("model",), label=_label, color=_color))
register(ModelSpec("mlp", "student", "mlp", _mlp, uses_teacher=False, reads="features", tuning_stages=(),
                   label="MLP", color="#7f7f7f", in_tables=True))
register(ModelSpec("glnn", "student", "mlp", _mlp, uses_teacher=True, reads="features", tuning_stages=_DISTILLED,
                   label="GLNN", color="#1f77b4", in_tables=True))
register(ModelSpec("linkx", "student", "linkx", _linkx, uses_teacher=False, reads="adjacency-rows",
                   tuning_stages=("model",), label="LINKX", color="#9467bd", in_tables=True))
register(ModelSpec("sa-mlp-nomix", "student", "sa-mlp", _sa_mlp, uses_teacher=True, reads="adjacency-rows",
                   tuning_stages=_DISTILLED, label="SA-MLP w/o mixing", color="#ff7f0e", in_tables=True))
register(ModelSpec("sa-mlp", "student", "sa-mlp", _sa_mlp, uses_teacher=True, reads="adjacency-rows",
                   tuning_stages=_DISTILLED, label="SA-MLP", color="#d62728", in_tables=True))


def _unknown(name: str, role: str | None) -> ValueError:
    valid = names(role) if role else list(REGISTRY)
    close = difflib.get_close_matches(name, valid + ([] if role else _ablation_names()), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    what = {"teacher": "teacher", "student": "student"}.get(role or "", "model")
    return ValueError(f"unknown {what} {name!r}; choose one of {valid}"
                      + ("" if role == "teacher" else " or an ablation declared in hyperparameters.yaml") + f".{hint}")


def _ablation_names() -> list[str]:
    return [n for n, v in load_hyperparameters().get("models", {}).items() if (v or {}).get("extends")]


def model_spec(name: str, role: str | None = None) -> ModelSpec:
    """The spec of ``name``: a registered model, or an ablation declared in ``hyperparameters.yaml``.

    Args:
        name: e.g. ``"sage"``, ``"sa-mlp"``, ``"sa-mlp-no-gate"``.
        role: ``"teacher"`` or ``"student"`` to accept only those (a student includes ablations).

    Raises:
        ValueError: an unknown name (with the closest valid one), or one of the wrong role.
    """
    spec = REGISTRY.get(name)
    if spec is None:
        base = (load_hyperparameters().get("models", {}).get(name) or {}).get("extends")
        if base is None:
            raise _unknown(name, role)
        parent = model_spec(str(base))
        spec = replace(parent, name=name, role="ablation", tuning_stages=(), label=name, in_tables=False,
                       ablation_of=parent.name)
    if role == "teacher" and not spec.is_teacher or role == "student" and spec.is_teacher:
        raise _unknown(name, role)
    return spec


def names(role: str | None = None, *, in_tables: bool | None = None) -> list[str]:
    """Registered model names, optionally of one role (``teacher`` or ``student``) or only table columns."""
    return [n for n, s in REGISTRY.items() if (role is None or s.role == role)
            and (in_tables is None or s.in_tables == in_tables)]


def teachers() -> list[str]:
    """The registered GNN teachers."""
    return names("teacher")


def students() -> list[str]:
    """The registered students (ablations not included)."""
    return names("student")


def is_teacher(name: str) -> bool:
    """Whether ``name`` is a registered GNN teacher (unknown names are not)."""
    spec = REGISTRY.get(name)
    return spec is not None and spec.is_teacher


def architecture_of(name: str) -> str:
    """The network behind a student name: ``mlp`` (mlp, glnn), ``linkx`` or ``sa-mlp`` (sa-mlp and its ablations)."""
    return model_spec(name, "student").architecture


def uses_teacher(name: str) -> bool:
    """Whether a model learns from teacher soft labels (GLNN and SA-MLP) rather than labels only."""
    return model_spec(name).uses_teacher


def make_student(name: str, num_features: int, num_classes: int, num_nodes: int, config: RunConfig) -> "nn.Module":
    """Build the student ``name`` from the config keys that shape it."""
    return model_spec(name, "student").build(num_features, num_classes, num_nodes, config)


def label_of(name: str) -> str:
    """Display name of a model (its own name for unknown ones)."""
    spec = REGISTRY.get(name)
    return spec.label if spec else name


def color_of(name: str, default: str | None = None) -> str | None:
    """Colour of a model in every figure (``default`` for unknown ones)."""
    spec = REGISTRY.get(name)
    return spec.color if spec else default


def build_adjacency(edge_index: "Tensor", num_nodes: int, config: RunConfig) -> "AdjacencyRows":
    """Adjacency rows with the config's ``adj_norm`` and ``self_loop``."""
    from samlp_lite.data.adjacency import AdjacencyRows

    return AdjacencyRows.from_edge_index(edge_index, num_nodes, adj_norm=config.adj_norm,
                                         self_loop=config.self_loop)
