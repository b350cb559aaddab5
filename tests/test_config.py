import pytest

from samlp_lite.config import (
    TEACHER_KEYS,
    RunConfig,
    config_hash,
    load_hyperparameters,
    parse_overrides,
    resolve_config,
)

HP = {
    "defaults": {"lr": 0.01, "hidden": 64, "dropout": 0.5},
    "datasets": {"toy": {"lr": 0.02, "hidden": 32}},
    "models": {"gcn": {"lr": 0.03}},
    "tuned": {"toy": {"gcn": {"dropout": 0.1}}},
    "smoke": {"max_epochs": 3},
}


def test_precedence_defaults_dataset_model_tuned_overrides():
    config = resolve_config("toy", "gcn", hyperparameters=HP)
    assert (config.lr, config.hidden, config.dropout) == (0.03, 32, 0.1)
    config = resolve_config("toy", "sage", hyperparameters=HP)
    assert (config.lr, config.hidden, config.dropout) == (0.02, 32, 0.5)
    config = resolve_config("toy", "gcn", ["lr=0.5", "fanouts=[4, 2]"], hyperparameters=HP)
    assert config.lr == 0.5 and config.fanouts == [4, 2]


def test_smoke_layer_only_in_smoke_mode(monkeypatch):
    monkeypatch.delenv("SAMLP_SMOKE", raising=False)
    assert resolve_config("toy", "gcn", hyperparameters=HP).max_epochs == RunConfig().max_epochs
    monkeypatch.setenv("SAMLP_SMOKE", "1")
    assert resolve_config("toy", "gcn", hyperparameters=HP).max_epochs == 3
    assert resolve_config("toy", "gcn", {"max_epochs": 7}, hyperparameters=HP).max_epochs == 7


def test_unknown_key_names_nearest_valid_key():
    with pytest.raises(ValueError, match="'lrate'.*did you mean 'lr'"):
        resolve_config("toy", "gcn", {"lrate": 0.1}, hyperparameters=HP)
    bad = {**HP, "datasets": {"toy": {"hiden": 3}}}
    with pytest.raises(ValueError, match="datasets.toy.*'hidden'"):
        resolve_config("toy", "gcn", hyperparameters=bad)


def test_types_and_choices_are_checked():
    with pytest.raises(ValueError, match="hidden.*int"):
        resolve_config("toy", "gcn", {"hidden": "wide"}, hyperparameters=HP)
    with pytest.raises(ValueError, match="adj_norm.*none"):
        resolve_config("toy", "gcn", {"adj_norm": "col"}, hyperparameters=HP)
    with pytest.raises(ValueError, match="dropout must lie in"):
        resolve_config("toy", "gcn", {"dropout": 1.5}, hyperparameters=HP)
    assert resolve_config("toy", "gcn", ["lr=1"], hyperparameters=HP).lr == 1.0


def test_parse_overrides_rejects_malformed_items():
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["lr"])
    assert parse_overrides(["self_loop=true", "tau=2"]) == {"self_loop": True, "tau": 2}


def test_config_hash_tracks_only_chosen_keys():
    base = RunConfig()
    assert config_hash(base, TEACHER_KEYS) == config_hash(base.replace(beta=3.0), TEACHER_KEYS)
    assert config_hash(base, TEACHER_KEYS) != config_hash(base.replace(lr=0.5), TEACHER_KEYS)
    assert config_hash(base) != config_hash(base.replace(beta=3.0))


def test_packaged_yaml_resolves_for_every_section():
    hp = load_hyperparameters()
    for dataset in list(hp["datasets"]) + ["cora"]:
        for model in list(hp["models"]) + ["gcn", "sage"]:
            assert isinstance(resolve_config(dataset, model), RunConfig)


def test_ablation_extends_its_tuned_base_model():
    hp = {**HP, "models": {"base": {"hidden": 8}, "base-sum": {"extends": "base", "combine": "sum"}},
          "tuned": {"toy": {"base": {"dropout": 0.3}}}}
    config = resolve_config("toy", "base-sum", hyperparameters=hp)
    assert (config.hidden, config.dropout, config.combine) == (8, 0.3, "sum")
    cyclic = {**HP, "models": {"a": {"extends": "b"}, "b": {"extends": "a"}}}
    with pytest.raises(ValueError, match="cycle"):
        resolve_config("toy", "a", hyperparameters=cyclic)


def test_packaged_ablations_change_one_thing_from_sa_mlp():
    base = resolve_config("chameleon", "sa-mlp").to_dict()
    for name, expected in {"sa-mlp-sum": {"combine": "sum"}, "sa-mlp-mix-features": {"mix_features": True},
                           "sa-mlp-teacher-target": {"mix_target": "teacher"}}.items():
        changed = {k: v for k, v in resolve_config("chameleon", name).to_dict().items() if base[k] != v}
        assert changed == expected, name
