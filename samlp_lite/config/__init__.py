"""One typed configuration: YAML defaults, per-dataset, per-model and tuned overrides.

Resolution order (later wins): ``defaults`` -> ``datasets.<dataset>`` -> ``models.<model>``
-> ``tuned.<dataset>.<model>`` (a model that ``extends: <base>`` first takes the base model's
``models`` and ``tuned`` layers, so an ablation starts from the tuned base) -> ``smoke`` (only when ``SAMLP_SMOKE=1``) -> explicit overrides
(CLI ``--set key=value``, papermill).
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from samlp_lite.runtime import smoke_mode

HYPERPARAMETERS_PATH = Path(__file__).with_name("hyperparameters.yaml")

CHOICES: dict[str, tuple[str, ...]] = {
    "norm": ("none", "batch", "layer"),
    "combine": ("gate", "sum", "concat"),
    "adj_norm": ("none", "row", "sym"),
    "mix_target": ("interpolate", "teacher"),
    "sparse_features": ("auto", "true", "false"),
}


@dataclass
class RunConfig:
    """Every hyperparameter of a teacher, student or distillation run (see hyperparameters.yaml)."""

    seed: int = 0
    device: str = "auto"
    hidden: int = 64
    num_layers: int = 2
    dropout: float = 0.5
    norm: str = "none"
    lr: float = 0.01
    weight_decay: float = 5e-4
    max_epochs: int = 500
    patience: int = 100
    batch_size: int = 0
    eval_every: int = 1
    sparse_features: str = "auto"
    fanouts: list = field(default_factory=lambda: [15, 10])
    heads: int = 8
    appnp_k: int = 10
    appnp_alpha: float = 0.1
    head_layers: int = 1
    combine: str = "gate"
    use_structure: bool = True
    use_features: bool = True
    adj_norm: str = "none"
    self_loop: bool = False
    linkx_layers: int = 1
    lam: float = 0.0
    tau: float = 1.0
    beta: float = 0.0
    mix_a: float = 1.0
    mix_features: bool = False
    mix_per_sample: bool = True
    mix_target: str = "interpolate"
    held_out_rate: float = 0.2
    stage2_epochs: int = 300
    stage2_lr: float = 0.01
    stage2_freeze: bool = True
    stage2_select: bool = False
    stage2_kd_weight: float = 1.0
    stage2_mse_weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON-ready) of every key."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with ``changes`` applied and validated."""
        return _build(self.to_dict(), changes, source="replace()")


TEACHER_KEYS = ("seed", "hidden", "num_layers", "dropout", "norm", "lr", "weight_decay",
                "max_epochs", "patience", "batch_size", "eval_every", "fanouts", "heads",
                "appnp_k", "appnp_alpha", "held_out_rate")
"""Keys that change a teacher's soft labels; the teacher cache is keyed by their hash."""


def config_keys() -> list[str]:
    """Names of all valid configuration keys."""
    return [f.name for f in fields(RunConfig)]


def load_hyperparameters(path: str | Path = HYPERPARAMETERS_PATH) -> dict[str, Any]:
    """Read and check the hyperparameter YAML (defaults, datasets, models, tuned, smoke)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from err
    allowed = {"defaults", "datasets", "models", "tuned", "smoke"}
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"{path}: unknown top-level section(s) {sorted(unknown)}; "
                         f"valid sections are {sorted(allowed)}")
    return {key: raw.get(key) or {} for key in allowed}


def resolve_config(dataset: str, model: str, overrides: Mapping[str, Any] | Iterable[str] | None = None,
                   *, teacher: str | None = None, hyperparameters: Mapping[str, Any] | None = None) -> RunConfig:
    """Merge defaults, dataset, model, tuned and explicit overrides into one validated config.

    Args:
        dataset: registry name, e.g. ``"cora"``.
        model: teacher or student name, e.g. ``"sage"`` or ``"sa-mlp"``.
        overrides: a mapping, or ``key=value`` strings as given to ``--set``.
        teacher: the teacher of a distilled student, whose values under ``tuned:`` are kept
            per teacher (``tuned.<dataset>.<model>.<teacher>``); default ``sage``.
        hyperparameters: parsed YAML; default: the package's ``hyperparameters.yaml``.

    Returns:
        The resolved :class:`RunConfig`.
    """
    hp = hyperparameters if hyperparameters is not None else load_hyperparameters()
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("defaults", hp.get("defaults", {})),
        (f"datasets.{dataset}", hp.get("datasets", {}).get(dataset) or {}),
    ]
    for name in _model_chain(model, hp):
        own = dict(hp.get("models", {}).get(name) or {})
        own.pop("extends", None)
        layers.append((f"models.{name}", own))
        tuned = (hp.get("tuned", {}).get(dataset) or {}).get(name) or {}
        if tuned and all(isinstance(v, Mapping) for v in tuned.values()):  # per teacher
            who = teacher or "sage"
            layers.append((f"tuned.{dataset}.{name}.{who}", tuned.get(who) or {}))
        else:
            layers.append((f"tuned.{dataset}.{name}", tuned))
    if smoke_mode():
        layers.append(("smoke", hp.get("smoke", {})))
    if overrides:
        explicit = parse_overrides(overrides) if not isinstance(overrides, Mapping) else dict(overrides)
        layers.append(("overrides", explicit))
    values: dict[str, Any] = RunConfig().to_dict()
    for source, layer in layers:
        _check_keys(layer, source)
        values.update(layer)
    return _build(values, {}, source="resolved config")


def _model_chain(model: str, hp: Mapping[str, Any]) -> list[str]:
    """``model`` and the models it ``extends`` (an ablation inherits its base model's values), base first."""
    chain = [model]
    while (base := (hp.get("models", {}).get(chain[-1]) or {}).get("extends")) is not None:
        if base in chain:
            raise ValueError(f"models.{model}: 'extends' forms a cycle through {base!r}")
        chain.append(str(base))
    return chain[::-1]


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``["lr=0.005", "fanouts=[10,5]"]`` into typed values (YAML scalars)."""
    parsed: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value, e.g. lr=0.005")
        key, text = item.split("=", 1)
        key = key.strip()
        try:
            parsed[key] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"cannot parse the value of override {item!r}: {err}") from err
    _check_keys(parsed, "overrides")
    return parsed


def config_hash(config: RunConfig | Mapping[str, Any], keys: Iterable[str] | None = None) -> str:
    """A short stable hash of the chosen keys (all keys by default)."""
    values = config.to_dict() if isinstance(config, RunConfig) else dict(config)
    chosen = {k: values[k] for k in (keys if keys is not None else sorted(values))}
    text = json.dumps(chosen, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _check_keys(layer: Mapping[str, Any], source: str) -> None:
    valid = config_keys()
    for key in layer:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown config key {key!r} in {source}{hint} "
                             f"(valid keys: {', '.join(valid)})")


def _build(values: Mapping[str, Any], changes: Mapping[str, Any], source: str) -> RunConfig:
    _check_keys(changes, source)
    merged = {**values, **changes}
    typed: dict[str, Any] = {}
    for f in fields(RunConfig):
        typed[f.name] = _coerce(f.name, f.type, merged[f.name], source)
    config = RunConfig(**typed)
    for key, options in CHOICES.items():
        if getattr(config, key) not in options:
            raise ValueError(f"{key}={getattr(config, key)!r} in {source} is not allowed; "
                             f"choose one of {list(options)}")
    for key in ("hidden", "num_layers", "max_epochs", "heads", "head_layers", "linkx_layers", "eval_every"):
        if getattr(config, key) < 1:
            raise ValueError(f"{key} must be at least 1, got {getattr(config, key)} in {source}")
    for key in ("dropout", "lam", "held_out_rate"):
        if not 0.0 <= getattr(config, key) <= 1.0:
            raise ValueError(f"{key} must lie in [0, 1], got {getattr(config, key)} in {source}")
    if config.tau <= 0 or config.mix_a <= 0:
        raise ValueError(f"tau and mix_a must be positive in {source}")
    return config


def _coerce(key: str, annotation: Any, value: Any, source: str) -> Any:
    kind = {"int": int, "float": float, "bool": bool, "str": str, "list": list}[str(annotation)]
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif kind is str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return str(value)
    elif kind is list and isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    raise ValueError(f"config key {key!r} in {source} must be {kind.__name__}, got {value!r}")


__all__ = ["RunConfig", "TEACHER_KEYS", "config_hash", "config_keys", "load_hyperparameters",
           "parse_overrides", "resolve_config"]
