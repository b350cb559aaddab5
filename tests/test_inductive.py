import copy

import pytest
import torch

from samlp_lite.config import RunConfig
from samlp_lite.data import inductive_split, make_csbm
from samlp_lite.train.distill import train_student
from samlp_lite.train.inductive import (
    OnlineScorer,
    evaluate_inductive_student,
    train_latent_predictor,
)
from samlp_lite.train.soft_labels import get_teacher_outputs

FAST = RunConfig(hidden=32, max_epochs=40, patience=40, device="cpu", dropout=0.2, beta=1.0,
                 stage2_epochs=60, sparse_features="false")


@pytest.fixture()
def graph():
    return make_csbm(num_nodes=300, num_classes=3, avg_degree=8, num_features=12, homophily=0.2,
                     feature_signal=0.3, num_splits=1, seed=5)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLP_CACHE", str(tmp_path))


def _perturb_held_out(graph):
    ind = inductive_split(graph, 0, rate=FAST.held_out_rate, seed=FAST.seed)
    changed = copy.deepcopy(graph)
    held = ind.held_out_nodes
    changed.data.x[held] = torch.randn(held.numel(), graph.num_features) * 5
    changed.data.y[held] = (changed.data.y[held] + 1) % graph.num_classes
    extra = torch.stack([held, torch.roll(held, 1)])
    touches_held = torch.isin(graph.data.edge_index, held).any(0)
    kept = graph.data.edge_index[:, ~touches_held]
    from torch_geometric.utils import coalesce, to_undirected
    changed.data.edge_index = coalesce(to_undirected(torch.cat([kept, extra, torch.stack([held, held.flip(0)])], 1)))
    return changed


def test_held_out_nodes_never_reach_training(graph):
    results = []
    for g in (graph, _perturb_held_out(graph)):
        outputs = get_teacher_outputs(g, "sage", 0, FAST, setting="inductive", use_cache=False, progress=False)
        metrics = evaluate_inductive_student(g, "sa-mlp", 0, FAST, outputs, progress=False, return_scorer=True)
        results.append((outputs, metrics))
    (t0, m0), (t1, m1) = results
    assert torch.equal(t0.logits, t1.logits)
    params0, params1 = m0["scorer"].model.state_dict(), m1["scorer"].model.state_dict()
    assert all(torch.equal(params0[k], params1[k]) for k in params0)
    g0, g1 = m0["scorer"].latent_predictor.state_dict(), m1["scorer"].latent_predictor.state_dict()
    assert all(torch.equal(g0[k], g1[k]) for k in g0)
    assert m0["tran_acc"] == m1["tran_acc"]


def test_metrics_and_prod(graph):
    outputs = get_teacher_outputs(graph, "sage", 0, FAST, setting="inductive", progress=False)
    for student in ("mlp", "glnn", "linkx", "sa-mlp"):
        metrics = evaluate_inductive_student(graph, student, 0, FAST, outputs, progress=False)
        assert metrics["prod_acc"] == pytest.approx(0.8 * metrics["tran_acc"] + 0.2 * metrics["ind_acc"])
        assert ("ind_isolated_acc" in metrics) == (student == "sa-mlp")
        assert 0.0 <= metrics["ind_acc"] <= 1.0


def _observed_student(graph):
    ind = inductive_split(graph, 0, rate=0.2, seed=0)
    outputs = get_teacher_outputs(graph, "sage", 0, FAST, setting="inductive", progress=False)
    s = ind.split
    trained = train_student("sa-mlp", ind.observed_data, s.train, s.val, s.test, graph.num_classes, FAST,
                            outputs.logits, progress=False)
    return ind, outputs, trained


def test_online_mode_equals_transductive_forward_for_an_observed_node(graph):
    ind, _, trained = _observed_student(graph)
    scorer = OnlineScorer(trained.model, trained.adjacency, sparse_features="false")
    nodes = torch.tensor([0, 7, 42])
    neighbors = [trained.adjacency.col[trained.adjacency.rowptr[n]:trained.adjacency.rowptr[n + 1]] for n in nodes]
    probs, alpha = scorer.score(ind.observed_data.x[nodes], neighbors)
    expected = torch.softmax(trained.logits[nodes], dim=-1)
    assert torch.allclose(probs, expected, atol=1e-5)
    assert alpha.shape == (3,) and ((alpha >= 0) & (alpha <= 1)).all()


def test_stage_two_loss_falls_and_freeze_keeps_student(graph):
    ind, outputs, trained = _observed_student(graph)
    before = copy.deepcopy(trained.model.state_dict())
    predictor, fit = train_latent_predictor(trained, outputs.logits, ind.split.val, ind.observed_data.y, FAST,
                                            progress=False)
    losses = [h["loss"] for h in fit.history]
    assert losses[-1] < 0.5 * losses[0]
    after = trained.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    scorer = OnlineScorer(trained.model, trained.adjacency, predictor, sparse_features="false")
    probs, _ = scorer.score(ind.observed_data.x[:5], None)
    assert probs.shape == (5, graph.num_classes) and torch.allclose(probs.sum(-1), torch.ones(5))


def test_unfrozen_stage_two_tunes_copies_of_the_heads_for_the_isolated_path_only(graph):
    ind, outputs, trained = _observed_student(graph)
    before = copy.deepcopy(trained.model.state_dict())
    predictor, _ = train_latent_predictor(trained, outputs.logits, ind.split.val, ind.observed_data.y,
                                          FAST.replace(stage2_freeze=False), progress=False)
    after = trained.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert set(predictor.heads) == {"structure_head", "feature_head", "gate"}
    assert not torch.equal(predictor.heads["gate"].weight, trained.model.gate.weight)
    scorer = OnlineScorer(trained.model, trained.adjacency, predictor, sparse_features="false")
    nodes = torch.tensor([1, 2])
    rows = [trained.adjacency.col[trained.adjacency.rowptr[n]:trained.adjacency.rowptr[n + 1]] for n in nodes]
    online, _ = scorer.score(ind.observed_data.x[nodes], rows)
    assert torch.allclose(online, torch.softmax(trained.logits[nodes], -1), atol=1e-5)


def test_stage_two_loss_weights_scale_their_terms(graph):
    ind, outputs, trained = _observed_student(graph)

    def first_loss(**weights):
        config = FAST.replace(stage2_epochs=1, **weights)
        _, fit = train_latent_predictor(trained, outputs.logits, ind.split.val, ind.observed_data.y, config,
                                        progress=False)
        return fit.history[0]["loss"]

    mse, kd = first_loss(stage2_kd_weight=0.0), first_loss(stage2_mse_weight=0.0)
    assert mse > 0 and kd > 0
    assert first_loss(stage2_kd_weight=0.0, stage2_mse_weight=2.0) == pytest.approx(2 * mse, rel=1e-5)
    assert first_loss() == pytest.approx(mse + kd, rel=1e-5)
