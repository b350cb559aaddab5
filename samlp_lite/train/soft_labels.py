"""Teacher soft labels for a dataset split: read from the cache, or train the teacher and cache it."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from samlp_lite.config import TEACHER_KEYS, RunConfig, config_hash
from samlp_lite.data import GraphData, inductive_split
from samlp_lite.records import SETTINGS, code_version, production_accuracy  # noqa: F401 (SETTINGS re-exported)
from samlp_lite.train.cache import (
    CacheKey,
    StaleCacheEntry,
    load_soft_labels,
    save_soft_labels,
)
from samlp_lite.train.metrics import inductive_metrics, split_metrics


@dataclass
class TeacherOutputs:
    """What students need from a teacher on one split.

    Attributes:
        logits: ``[N_train_graph, C]`` logits on the graph the teacher trained on (the full graph
            transductively, the observed graph inductively, in its relabelled ids).
        held_out_logits: inductive only: ``[N_held_out, C]`` logits on held-out nodes, computed
            with the full graph visible (the GNN's test-time view).
        metrics: ``val_acc``, ``test_acc`` (transductive) or ``tran_acc``, ``ind_acc``,
            ``prod_acc`` (inductive), plus ``wall_s``, ``best_epoch``.
        from_cache: whether the logits came from the cache.
    """

    logits: Tensor
    metrics: dict
    from_cache: bool
    held_out_logits: Tensor | None = None
    history: list = field(default_factory=list)
    model_state: dict[str, Tensor] = field(default_factory=dict)
    held_out_nodes: Tensor | None = None
    """Inductive only: the original ids of the nodes held out from the teacher's graph."""
    entry: dict = field(default_factory=dict)
    """Where the outputs come from: the cache file (``path``) and the ``code`` that trained the teacher."""


MODEL_PREFIX = "model."


def load_teacher_model(graph: GraphData, teacher: str, config: RunConfig, outputs: TeacherOutputs,
                       device: torch.device | str | None = None):
    """Rebuild the trained teacher from the weights stored with its soft labels (for ``mix_target=teacher``)."""
    from samlp_lite.models.teachers import build_teacher

    if not outputs.model_state:
        raise ValueError("these teacher outputs carry no weights; call get_teacher_outputs(..., need_model=True)")
    model = build_teacher(teacher, graph.num_features, graph.num_classes, config)
    model.load_state_dict(outputs.model_state)
    return model.to(device or "cpu").eval()


def teacher_cache_key(graph: GraphData, teacher: str, split: int, config: RunConfig, setting: str,
                      held_out: str = "") -> CacheKey:
    """The cache key of a teacher run: the graph's content, the split, the config keys that change
    the teacher and, inductively, the held-out nodes (``held_out``: their fingerprint)."""
    return CacheKey(dataset=graph.name, teacher=teacher, split=split, seed=config.seed, setting=setting,
                    config_hash=config_hash(config, TEACHER_KEYS), graph=graph.fingerprint, held_out=held_out)


def get_teacher_outputs(graph: GraphData, teacher: str, split: int, config: RunConfig, *,
                        setting: str = "transductive", use_cache: bool = True, progress: bool = True,
                        device: torch.device | str | None = None, need_model: bool = False) -> TeacherOutputs:
    """Return the teacher's soft labels on one split, training it only when the cache misses.

    Args:
        graph: the dataset.
        teacher: ``gcn``, ``sage``, ``gat`` or ``appnp``.
        split: split index.
        config: resolved teacher config.
        setting: ``transductive`` or ``inductive`` (held-out nodes removed before training).
        use_cache: read and write the soft-label cache.
        progress: progress bar while training.
        device: ``None`` picks CUDA when present.
        need_model: the teacher's weights are needed too (``mix_target=teacher``); a cache entry
            without them is retrained.
    """
    from samlp_lite.train.teacher import train_teacher

    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose one of {list(SETTINGS)}")
    num_classes = graph.num_classes
    if setting == "transductive":
        key = teacher_cache_key(graph, teacher, split, config, setting)
        shapes = {"logits": (graph.num_nodes, num_classes)}
    else:
        ind = inductive_split(graph, split, rate=config.held_out_rate, seed=config.seed)
        key = teacher_cache_key(graph, teacher, split, config, setting, held_out=ind.fingerprint)
        shapes = {"logits": (ind.observed_data.num_nodes, num_classes),
                  "held_out_logits": (ind.held_out_nodes.numel(), num_classes)}
    held_out_nodes = None if setting == "transductive" else ind.held_out_nodes
    if use_cache:
        try:
            hit = load_soft_labels(key, shapes)
        except StaleCacheEntry as err:
            print(f"teacher cache entry ignored and retrained: {err}")
            hit = None
        if hit is not None and (not need_model or any(k.startswith(MODEL_PREFIX) for k in hit[0])):
            tensors, meta = hit
            history = meta.pop("history", [])
            entry = {"path": str(key.path()), "code": meta.pop("code", None)}
            return TeacherOutputs(logits=tensors["logits"], held_out_logits=tensors.get("held_out_logits"),
                                  metrics=meta, from_cache=True, model_state=_model_state(tensors), history=history,
                                  held_out_nodes=held_out_nodes, entry=entry)

    start = time.perf_counter()
    desc = f"{teacher} on {graph.name} split {split}"
    if setting == "transductive":
        s = graph.split(split)
        trained = train_teacher(teacher, graph.data, s.train, s.val, s.test, num_classes, config,
                                device=device, progress=progress, desc=desc, metric=graph.metric)
        tensors = {"logits": trained.logits}
        metrics = split_metrics(graph, split, trained.logits)
    else:
        s = ind.split
        trained = train_teacher(teacher, ind.observed_data, s.train, s.val, s.test, num_classes, config,
                                device=device, progress=progress, desc=desc, metric=graph.metric)
        full_logits = trained.model.predict_all(
            graph.data, batch_size=4 * config.batch_size if config.batch_size > 0 else 0,
            sparse_features=config.sparse_features)
        held_out_logits = full_logits[ind.held_out_nodes]
        tensors = {"logits": trained.logits, "held_out_logits": held_out_logits}
        metrics = inductive_metrics(ind, graph, split, trained.logits, held_out_logits, config.held_out_rate)
    metrics.update(wall_s=time.perf_counter() - start, best_epoch=trained.fit.best_epoch,
                   epochs_run=trained.fit.epochs_run)
    tensors.update({MODEL_PREFIX + name: value for name, value in trained.model.state_dict().items()})
    entry = {"path": None, "code": code_version()}
    if use_cache:
        entry["path"] = str(save_soft_labels(key, tensors, {**metrics, "history": trained.fit.history,
                                                            "code": entry["code"]}))
    return TeacherOutputs(logits=tensors["logits"], held_out_logits=tensors.get("held_out_logits"),
                          metrics=metrics, from_cache=False, history=trained.fit.history,
                          model_state=_model_state(tensors), held_out_nodes=held_out_nodes, entry=entry)


def _model_state(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    return {name[len(MODEL_PREFIX):]: value for name, value in tensors.items() if name.startswith(MODEL_PREFIX)}
