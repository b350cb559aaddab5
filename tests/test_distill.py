import pytest
import torch

from samlp_lite.config import RunConfig
from samlp_lite.data import make_csbm
from samlp_lite.models.registry import architecture_of, make_student, uses_teacher
from samlp_lite.train.distill import train_student
from samlp_lite.train.soft_labels import get_teacher_outputs

FAST = RunConfig(hidden=32, max_epochs=80, patience=40, device="cpu", dropout=0.2, sparse_features="false")


@pytest.fixture(scope="module")
def heterophilous():
    return make_csbm(num_nodes=400, num_classes=3, avg_degree=10, num_features=16, homophily=0.1,
                     feature_signal=0.15, num_splits=1, seed=3)


@pytest.fixture(scope="module")
def teacher_logits(heterophilous, tmp_path_factory):
    import os
    old = os.environ.get("SAMLP_CACHE")
    os.environ["SAMLP_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        return get_teacher_outputs(heterophilous, "sage", 0, FAST.replace(max_epochs=150, patience=150),
                                   progress=False).logits
    finally:
        if old is None:
            os.environ.pop("SAMLP_CACHE")
        else:
            os.environ["SAMLP_CACHE"] = old


def _train(graph, name, config, logits):
    s = graph.split(0)
    return train_student(name, graph.data, s.train, s.val, s.test, graph.num_classes, config,
                         logits if uses_teacher(name) else None, progress=False)


def test_names_map_to_architectures():
    assert [architecture_of(n) for n in ("mlp", "glnn", "linkx", "sa-mlp", "sa-mlp-sum")] == \
        ["mlp", "mlp", "linkx", "sa-mlp", "sa-mlp"]
    assert not uses_teacher("mlp") and not uses_teacher("linkx") and uses_teacher("glnn")
    with pytest.raises(ValueError, match="Did you mean 'glnn'"):
        architecture_of("gnln")


def test_sa_mlp_beats_glnn_by_a_wide_margin_on_heterophilous_graph(heterophilous, teacher_logits):
    glnn = _train(heterophilous, "glnn", FAST, teacher_logits)
    sa_mlp = _train(heterophilous, "sa-mlp", FAST.replace(beta=1.0), teacher_logits)
    assert sa_mlp.test_acc > glnn.test_acc + 0.2, (sa_mlp.test_acc, glnn.test_acc)


def test_teacher_logits_are_required_and_checked(heterophilous):
    s = heterophilous.split(0)
    with pytest.raises(ValueError, match="pass teacher_logits"):
        train_student("glnn", heterophilous.data, s.train, s.val, s.test, 3, FAST)
    with pytest.raises(ValueError, match="expected \\(400, 3\\)"):
        train_student("glnn", heterophilous.data, s.train, s.val, s.test, 3, FAST, torch.zeros(5, 3))


def test_same_seed_same_student_and_mixing_changes_training(heterophilous, teacher_logits):
    config = FAST.replace(max_epochs=15, beta=1.0)
    first, second = (_train(heterophilous, "sa-mlp", config, teacher_logits) for _ in range(2))
    assert torch.equal(first.logits, second.logits)
    no_mix = _train(heterophilous, "sa-mlp", config.replace(beta=0.0), teacher_logits)
    assert not torch.equal(first.logits, no_mix.logits)


@pytest.mark.parametrize("option", [{"mix_features": True}, {"mix_per_sample": False}, {"mix_a": 0.3},
                                    {"batch_size": 64}, {"adj_norm": "sym", "self_loop": True},
                                    {"combine": "sum"}, {"use_features": False}, {"sparse_features": "true"}])
def test_training_options_run_and_learn(heterophilous, teacher_logits, option):
    trained = _train(heterophilous, "sa-mlp", FAST.replace(max_epochs=40, beta=1.0, **option), teacher_logits)
    assert trained.test_acc > 0.5


def test_make_student_reads_config():
    model = make_student("sa-mlp", 8, 3, 20, FAST.replace(hidden=24, combine="concat"))
    assert model.hidden == 24 and model.combine == "concat"
    mlp = make_student("mlp", 8, 3, 20, FAST.replace(num_layers=3))
    assert len(mlp.layers) == 3
