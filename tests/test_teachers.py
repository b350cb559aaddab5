import pytest
import torch
from torch_geometric.nn import SAGEConv
from torch_geometric.nn.models import GCN

from samlp_lite.config import RunConfig
from samlp_lite.data import make_csbm
from samlp_lite.models.teachers import TEACHERS, SparseAwareSAGEConv, build_teacher
from samlp_lite.train.soft_labels import get_teacher_outputs
from samlp_lite.train.teacher import train_teacher

FAST = RunConfig(hidden=32, heads=4, max_epochs=60, patience=30, sparse_features="false", device="cpu")


@pytest.fixture(scope="module")
def homophilous():
    return make_csbm(num_nodes=300, num_classes=3, avg_degree=8, num_features=16, homophily=0.9,
                     feature_signal=0.3, num_splits=2, seed=1)


@pytest.mark.parametrize("name", TEACHERS)
def test_every_teacher_beats_chance_by_a_wide_margin(homophilous, name):
    split = homophilous.split(0)
    trained = train_teacher(name, homophilous.data, split.train, split.val, split.test,
                            homophilous.num_classes, FAST, progress=False)
    assert trained.logits.shape == (homophilous.num_nodes, homophilous.num_classes)
    assert trained.test_acc > 1 / 3 + 0.3, f"{name} reached only {trained.test_acc:.3f}"


@pytest.mark.parametrize("name", TEACHERS)
def test_minibatch_training_and_layerwise_inference(homophilous, name):
    split = homophilous.split(0)
    config = FAST.replace(batch_size=64, fanouts=[5, 5], max_epochs=15, patience=15)
    trained = train_teacher(name, homophilous.data, split.train, split.val, split.test,
                            homophilous.num_classes, config, progress=False)
    assert trained.test_acc > 1 / 3 + 0.3
    layerwise = trained.model.predict_all(homophilous.data, batch_size=50)
    assert torch.allclose(layerwise, trained.model.predict_all(homophilous.data, batch_size=0), atol=1e-4)


def test_same_seed_gives_same_accuracy(homophilous):
    split = homophilous.split(1)
    runs = [train_teacher("gcn", homophilous.data, split.train, split.val, split.test,
                          homophilous.num_classes, FAST.replace(max_epochs=20), progress=False) for _ in range(2)]
    assert runs[0].test_acc == runs[1].test_acc
    assert torch.equal(runs[0].logits, runs[1].logits)


def test_sparse_aware_sage_conv_matches_pyg_on_sparse_input():
    torch.manual_seed(0)
    x = (torch.rand(40, 12) < 0.2).float()
    edge_index = torch.randint(0, 40, (2, 120))
    ours, reference = SparseAwareSAGEConv(12, 5), SAGEConv(12, 5)
    reference.load_state_dict(ours.state_dict())
    expected = reference(x, edge_index)
    assert torch.allclose(ours(x.to_sparse_csr(), edge_index), expected, atol=1e-5)
    assert torch.allclose(ours(x, edge_index), expected, atol=1e-6)


@pytest.mark.parametrize("name", TEACHERS)
def test_sparse_and_dense_features_give_same_logits(homophilous, name):
    model = build_teacher(name, homophilous.num_features, homophilous.num_classes, FAST).eval()
    x = homophilous.data.x.clamp(min=0)
    edge_index = model.prepare_graph(homophilous.data.edge_index, homophilous.num_nodes)
    assert torch.allclose(model(x.to_sparse_csr(), edge_index), model(x, edge_index), atol=1e-4)


def test_unknown_teacher_suggests_closest():
    with pytest.raises(ValueError, match="Did you mean .sage."):
        build_teacher("saeg", 4, 2, FAST)


def test_cache_hit_returns_identical_logits_and_changed_config_misses(homophilous, tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path))
    config = FAST.replace(max_epochs=10)
    first = get_teacher_outputs(homophilous, "gcn", 0, config, progress=False)
    second = get_teacher_outputs(homophilous, "gcn", 0, config, progress=False)
    assert not first.from_cache and second.from_cache
    assert torch.equal(first.logits, second.logits)
    assert second.metrics["test_acc"] == first.metrics["test_acc"]
    changed = get_teacher_outputs(homophilous, "gcn", 0, config.replace(lr=0.02), progress=False)
    assert not changed.from_cache
    student_only = get_teacher_outputs(homophilous, "gcn", 0, config.replace(beta=2.0), progress=False)
    assert student_only.from_cache


def test_corrupt_cache_entry_is_retrained(homophilous, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path))
    config = FAST.replace(max_epochs=5)
    get_teacher_outputs(homophilous, "gcn", 0, config, progress=False)
    (entry,) = list(tmp_path.rglob("*.pt"))
    entry.write_bytes(b"not a torch file")
    again = get_teacher_outputs(homophilous, "gcn", 0, config, progress=False)
    assert not again.from_cache
    assert "unreadable" in capsys.readouterr().out
    assert get_teacher_outputs(homophilous, "gcn", 0, config, progress=False).from_cache


def test_inductive_teacher_outputs_cover_observed_and_held_out(homophilous, tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path))
    out = get_teacher_outputs(homophilous, "sage", 0, FAST.replace(max_epochs=20), setting="inductive",
                              progress=False)
    held_out = round(0.2 * homophilous.split(0).test.numel())
    assert out.held_out_logits.shape == (held_out, homophilous.num_classes)
    assert out.logits.shape == (homophilous.num_nodes - held_out, homophilous.num_classes)
    assert out.metrics["prod_acc"] == pytest.approx(0.8 * out.metrics["tran_acc"] + 0.2 * out.metrics["ind_acc"])


@pytest.mark.parametrize("name", TEACHERS)
def test_prepared_full_batch_graph_matches_pyg_edge_index_model(homophilous, name):
    full_batch = build_teacher(name, homophilous.num_features, homophilous.num_classes, FAST).eval()
    minibatch = build_teacher(name, homophilous.num_features, homophilous.num_classes, FAST.replace(batch_size=32)).eval()
    minibatch.load_state_dict(full_batch.state_dict())
    data = homophilous.data
    prepared = full_batch(data.x, full_batch.prepare_graph(data.edge_index, data.num_nodes))
    if name == "gcn":
        reference = GCN(data.num_features, FAST.hidden, FAST.num_layers, homophilous.num_classes).eval()
        reference.load_state_dict(full_batch.gnn.state_dict())
        expected = reference(data.x, data.edge_index)
    else:
        expected = minibatch(data.x, data.edge_index)
    assert torch.allclose(prepared, expected, atol=1e-5)
    assert torch.allclose(minibatch(data.x, *minibatch.minibatch_graph(data.edge_index, data.num_nodes)), expected,
                          atol=1e-5)


@pytest.mark.parametrize("name", TEACHERS)
def test_virtual_node_with_mu_one_predicts_like_its_source_node(homophilous, name):
    model = build_teacher(name, homophilous.num_features, homophilous.num_classes, FAST).eval()
    data = homophilous.data
    nodes = torch.tensor([3, 10, 57])
    perm = torch.tensor([2, 0, 1])
    full = model.predict_all(data)
    virtual = model.predict_virtual(data, nodes, perm, 1.0)
    if name in ("gcn", "appnp"):
        assert torch.allclose(virtual, full[nodes], atol=1e-5)
    mixed = model.predict_virtual(data, nodes, perm, torch.tensor([0.3, 0.5, 0.9]))
    assert mixed.shape == (3, homophilous.num_classes) and torch.isfinite(mixed).all()
    same = model.predict_virtual(data, nodes, torch.arange(3), 0.5)
    if name in ("sage", "gat"):
        assert torch.allclose(same, full[nodes], atol=1e-5)


def test_teacher_weights_are_cached_and_rebuild_the_same_model(homophilous, tmp_path, monkeypatch):
    from samlp_lite.train.soft_labels import load_teacher_model

    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path))
    config = FAST.replace(max_epochs=5)
    get_teacher_outputs(homophilous, "sage", 0, config, progress=False)
    cached = get_teacher_outputs(homophilous, "sage", 0, config, progress=False, need_model=True)
    assert cached.from_cache and cached.model_state
    model = load_teacher_model(homophilous, "sage", config, cached)
    assert torch.allclose(model.predict_all(homophilous.data), cached.logits, atol=1e-5)


def test_cache_hit_keeps_the_learning_curve(homophilous, tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path))
    config = FAST.replace(max_epochs=6, patience=6)
    fresh = get_teacher_outputs(homophilous, "gcn", 0, config, progress=False)
    cached = get_teacher_outputs(homophilous, "gcn", 0, config, progress=False)
    assert cached.from_cache and len(cached.history) == 6 and cached.history == fresh.history
    assert "history" not in cached.metrics
