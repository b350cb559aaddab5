"""Losses: hand-computed values, KD identities, and exactness of structure mixing."""
import math

import pytest
import torch

from samlp_lite.data.adjacency import AdjacencyBatch, AdjacencyRows
from samlp_lite.data.features import to_sparse_features
from samlp_lite.models.students import MLP, SAMLP
from samlp_lite.train.losses import (
    combined_loss,
    draw_mixing,
    kd_loss,
    label_loss,
    mix_rows,
    mixing_kd_loss,
    teacher_probabilities,
)

NUM_NODES, NUM_FEATURES, NUM_CLASSES = 10, 6, 3


def test_label_loss_hand_computed():
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([0, 1])
    expected = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-2))) / 2
    assert label_loss(logits, y).item() == pytest.approx(expected, rel=1e-6)


def test_teacher_probabilities_hand_computed():
    probs = teacher_probabilities(torch.tensor([[2.0, 0.0]]), tau=2.0)
    e = math.e
    torch.testing.assert_close(probs, torch.tensor([[e / (e + 1), 1 / (e + 1)]]))


def test_kd_loss_hand_computed():
    tau = 2.0
    student = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    teacher = torch.tensor([[0.25, 0.75], [0.5, 0.5]])
    q0 = [math.e / (math.e + 1), 1 / (math.e + 1)]
    kl0 = 0.25 * math.log(0.25 / q0[0]) + 0.75 * math.log(0.75 / q0[1])
    expected = tau**2 * (kl0 + 0.0) / 2
    assert kd_loss(student, teacher, tau).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("tau", [0.5, 1.0, 4.0])
def test_kd_loss_zero_when_student_equals_teacher(tau):
    logits = torch.randn(5, NUM_CLASSES, generator=torch.Generator().manual_seed(0))
    loss = kd_loss(logits, teacher_probabilities(logits, tau), tau)
    assert loss.abs().item() < 1e-6


def test_combined_loss_weights_terms():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, NUM_CLASSES, generator=gen)
    probs = teacher_probabilities(torch.randn(4, NUM_CLASSES, generator=gen), 2.0)
    y = torch.tensor([0, 2, 1, 1])
    mask = torch.tensor([True, False, True, False])
    expected = 0.3 * label_loss(logits[mask], y[mask]) + 0.7 * kd_loss(logits, probs, 2.0)
    got = combined_loss(logits, probs, y, lam=0.3, tau=2.0, label_mask=mask)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(combined_loss(logits, probs, lam=0.0), kd_loss(logits, probs))
    torch.testing.assert_close(combined_loss(logits, None, y, lam=1.0), label_loss(logits, y))
    with pytest.raises(ValueError, match="lam"):
        combined_loss(logits, probs, y, lam=1.5)
    with pytest.raises(ValueError, match="y is required"):
        combined_loss(logits, probs, lam=0.5)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="same shape"):
        kd_loss(torch.zeros(3, 2), torch.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match="rows of logits"):
        label_loss(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="tau"):
        kd_loss(torch.zeros(3, 2), torch.full((3, 2), 0.5), tau=0.0)


def test_draw_mixing_is_seeded_and_well_formed():
    perm_a, mu_a = draw_mixing(8, 0.5, True, torch.Generator().manual_seed(3))
    perm_b, mu_b = draw_mixing(8, 0.5, True, torch.Generator().manual_seed(3))
    assert torch.equal(perm_a, perm_b) and torch.equal(mu_a, mu_b)
    assert sorted(perm_a.tolist()) == list(range(8))
    assert mu_a.shape == (8,) and ((mu_a >= 0) & (mu_a <= 1)).all()
    _, mu_scalar = draw_mixing(8, 2.0, False, torch.Generator().manual_seed(3))
    assert mu_scalar.dim() == 0
    _, mu_peaked = draw_mixing(500, 1000.0, True, torch.Generator().manual_seed(0))
    assert (mu_peaked - 0.5).abs().max() < 0.1
    with pytest.raises(ValueError, match="positive"):
        draw_mixing(8, 0.0)


def make_case(seed=0):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, NUM_NODES, (2, 30), generator=gen)
    edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    rows = AdjacencyRows.from_edge_index(edge_index, NUM_NODES, adj_norm="row", self_loop=True)
    x = (torch.rand(NUM_NODES, NUM_FEATURES, generator=gen) < 0.4).float()
    model = SAMLP(NUM_NODES, NUM_FEATURES, NUM_CLASSES, hidden=8, head_layers=2).eval()
    probs = teacher_probabilities(torch.randn(NUM_NODES, NUM_CLASSES, generator=gen), 2.0)
    return model, rows, x, probs


def batch_from_dense(rows_dense):
    row, col = rows_dense.nonzero(as_tuple=True)
    counts = torch.bincount(row, minlength=rows_dense.size(0))
    return AdjacencyBatch(col, torch.cumsum(counts, 0) - counts, rows_dense[row, col])


@pytest.mark.parametrize("mix_features", [False, True])
def test_mixing_with_mu_one_is_plain_kd(mix_features):
    model, rows, x, probs = make_case()
    adj = rows.all()
    perm = torch.randperm(NUM_NODES)
    expected = kd_loss(model(x, adj), probs, 2.0)
    for mu in (1.0, torch.ones(NUM_NODES)):
        got = mixing_kd_loss(model, x, adj, probs, 2.0, perm, mu, mix_features=mix_features)
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("sparse_x", [False, True])
@pytest.mark.parametrize("mix_features", [False, True])
def test_mixing_preactivation_equals_explicitly_mixed_rows(mix_features, sparse_x):
    model, rows, x, probs = make_case(seed=1)
    perm, mu = draw_mixing(NUM_NODES, 0.4, True, torch.Generator().manual_seed(5))
    weight = mu.unsqueeze(1)
    dense_rows = rows.all().to_dense(NUM_NODES)
    mixed_rows = weight * dense_rows + (1 - weight) * dense_rows[perm]
    mixed_x = weight * x + (1 - weight) * x[perm] if mix_features else x
    reference_logits = model(mixed_x, batch_from_dense(mixed_rows))
    target = weight * probs + (1 - weight) * probs[perm]
    expected = kd_loss(reference_logits, target, 2.0)
    features = to_sparse_features(x) if sparse_x else x
    got = mixing_kd_loss(model, features, rows.all(), probs, 2.0, perm, mu,
                         mix_features=mix_features)
    torch.testing.assert_close(got, expected)


def test_mixing_uses_given_targets_and_backpropagates():
    model, rows, x, probs = make_case(seed=2)
    perm, mu = draw_mixing(NUM_NODES, 1.0, False, torch.Generator().manual_seed(0))
    target = teacher_probabilities(torch.randn(NUM_NODES, NUM_CLASSES), 2.0)
    logits = model.decode(mix_rows(model.structure_preactivation(rows.all()), perm, mu),
                          model.feature_preactivation(x))
    expected = kd_loss(logits, target, 2.0)
    got = mixing_kd_loss(model, x, rows.all(), probs, 2.0, perm, mu, target_probs=target)
    torch.testing.assert_close(got, expected)
    got.backward()
    assert model.structure_encoder.weight.grad.abs().sum() > 0


def test_mixing_reuses_given_preactivations():
    model, rows, x, probs = make_case(seed=3)
    perm, mu = draw_mixing(NUM_NODES, 1.0, True, torch.Generator().manual_seed(1))
    structure_pre = model.structure_preactivation(rows.all())
    feature_pre = model.feature_preactivation(x)
    expected = mixing_kd_loss(model, x, rows.all(), probs, 2.0, perm, mu, mix_features=True)
    got = mixing_kd_loss(model, None, None, probs, 2.0, perm, mu, mix_features=True,
                         structure_pre=structure_pre, feature_pre=feature_pre)
    torch.testing.assert_close(got, expected)


def test_mixing_rejects_wrong_model_and_shapes():
    model, rows, x, probs = make_case()
    perm = torch.randperm(NUM_NODES)
    with pytest.raises(ValueError, match="SAMLP"):
        mixing_kd_loss(MLP(NUM_FEATURES, NUM_CLASSES), x, rows.all(), probs, 1.0, perm, 0.5)
    with pytest.raises(ValueError, match="perm"):
        mixing_kd_loss(model, x, rows.all(), probs, 1.0, perm[:3], 0.5)
    with pytest.raises(ValueError, match="mu"):
        mixing_kd_loss(model, x, rows.all(), probs, 1.0, perm, torch.ones(3))
    with pytest.raises(ValueError, match="same shape"):
        mixing_kd_loss(model, x, rows.all(), probs[:, :2], 1.0, perm, 0.5)
