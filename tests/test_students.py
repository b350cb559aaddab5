"""Students: sparse structure encoder, sparse features, LINKX parity, gradients, builder."""
import pytest
import torch
from dense_reference import dense_adjacency
from torch_geometric.nn.models import LINKX
from torch_geometric.utils import coalesce

from samlp_lite.data.adjacency import AdjacencyRows
from samlp_lite.data.features import select_rows, to_sparse_features
from samlp_lite.models.students import (
    MLP,
    SAMLP,
    LINKXStudent,
    SAMLPOutput,
    build_student,
    count_parameters,
)
from samlp_lite.train.losses import label_loss

NUM_NODES, NUM_FEATURES, NUM_CLASSES = 15, 9, 3


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny ops gain nothing from threads, and on a busy 2-core box they contend badly."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_graph(num_nodes=NUM_NODES, num_edges=40, seed=0, undirected=True):
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    if undirected:
        edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    return coalesce(edge_index, num_nodes=num_nodes)


def sparse_features(num_nodes=NUM_NODES, num_features=NUM_FEATURES, density=0.3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(num_nodes, num_features, generator=gen) < density
    return mask * torch.rand(num_nodes, num_features, generator=gen)


@pytest.mark.parametrize("adj_norm", ["none", "row", "sym"])
@pytest.mark.parametrize("self_loop", [False, True])
def test_structure_encoder_equals_dense_reference(adj_norm, self_loop):
    torch.manual_seed(0)
    edge_index = random_graph()
    rows = AdjacencyRows.from_edge_index(edge_index, NUM_NODES, adj_norm, self_loop)
    model = SAMLP(NUM_NODES, NUM_FEATURES, NUM_CLASSES, hidden=8)
    weight = model.structure_encoder.weight
    expected = dense_adjacency(edge_index, NUM_NODES, adj_norm, self_loop) @ weight
    expected = expected + model.structure_bias
    torch.testing.assert_close(model.structure_preactivation(rows.all()), expected)
    nodes = torch.tensor([3, 14, 3, 0])
    torch.testing.assert_close(model.structure_preactivation(rows.gather(nodes)), expected[nodes])


def make_models():
    torch.manual_seed(0)
    return {
        "mlp": MLP(NUM_FEATURES, NUM_CLASSES, hidden=8, norm="layer"),
        "linkx": LINKXStudent(NUM_NODES, NUM_FEATURES, NUM_CLASSES, hidden=8,
                              num_node_layers=2),
        "sa-mlp": SAMLP(NUM_NODES, NUM_FEATURES, NUM_CLASSES, hidden=8, head_layers=2),
    }


@pytest.mark.parametrize("layout", ["csr", "coo"])
@pytest.mark.parametrize("name", ["mlp", "linkx", "sa-mlp"])
def test_sparse_features_match_dense(name, layout):
    model = make_models()[name].eval()
    x = sparse_features()
    adj = AdjacencyRows.from_edge_index(random_graph(), NUM_NODES, "row").all()
    outputs, grads = [], []
    for features in (x, to_sparse_features(x, layout)):
        model.zero_grad()
        out = model(features, adj)
        out.pow(2).sum().backward()
        outputs.append(out.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
    torch.testing.assert_close(outputs[0], outputs[1])
    for dense_grad, sparse_grad in zip(*grads):
        torch.testing.assert_close(dense_grad, sparse_grad)


@pytest.mark.parametrize("layout", ["csr", "coo"])
def test_select_rows_keeps_layout(layout):
    x = sparse_features()
    nodes = torch.tensor([4, 0, 4, 11])
    selected = select_rows(to_sparse_features(x, layout), nodes)
    assert selected.layout == to_sparse_features(x, layout).layout
    torch.testing.assert_close(selected.to_dense(), x[nodes])
    torch.testing.assert_close(select_rows(x, nodes), x[nodes])


@pytest.mark.parametrize("name", ["mlp", "sa-mlp"])
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = {
        "mlp": MLP(NUM_FEATURES, NUM_CLASSES, hidden=8, num_layers=3, norm="batch",
                   dropout=0.1),
        "sa-mlp": SAMLP(NUM_NODES, NUM_FEATURES, NUM_CLASSES, hidden=8, head_layers=2,
                        norm="batch", dropout=0.1, combine="gate"),
    }[name]
    adj = AdjacencyRows.from_edge_index(random_graph(), NUM_NODES, self_loop=True).all()
    y = torch.randint(0, NUM_CLASSES, (NUM_NODES,))
    label_loss(model(sparse_features(), adj), y).backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, param_name


@pytest.mark.parametrize("num_edge_layers", [1, 2])
def test_linkx_student_equals_pyg_linkx_full_graph(num_edge_layers):
    torch.manual_seed(0)
    edge_index = random_graph(undirected=False)
    x = torch.randn(NUM_NODES, NUM_FEATURES)
    student = LINKXStudent(NUM_NODES, NUM_FEATURES, NUM_CLASSES, hidden=8, num_layers=2,
                           num_edge_layers=num_edge_layers, num_node_layers=2).eval()
    reference = LINKX(NUM_NODES, NUM_FEATURES, 8, NUM_CLASSES, num_layers=2,
                      num_edge_layers=num_edge_layers, num_node_layers=2).eval()
    reference.load_state_dict(student.linkx.state_dict())
    rows = AdjacencyRows.from_edge_index(edge_index, NUM_NODES)
    expected = reference(x, edge_index)
    torch.testing.assert_close(student(x, rows.all()), expected)
    nodes = torch.tensor([7, 2, 2, 13])
    torch.testing.assert_close(student(x[nodes], rows.gather(nodes)), expected[nodes])


def test_samlp_batches_equal_full_graph_and_parts_are_consistent():
    torch.manual_seed(0)
    model = SAMLP(NUM_NODES, NUM_FEATURES, NUM_CLASSES, hidden=8).eval()
    rows = AdjacencyRows.from_edge_index(random_graph(), NUM_NODES, "sym", True)
    x = torch.randn(NUM_NODES, NUM_FEATURES)
    parts = model(x, rows.all(), return_parts=True)
    assert isinstance(parts, SAMLPOutput)
    assert parts.alpha.shape == (NUM_NODES,)
    assert ((parts.alpha > 0) & (parts.alpha < 1)).all()
    alpha = parts.alpha.unsqueeze(1)
    torch.testing.assert_close(parts.logits, alpha * parts.z_structure
                               + (1 - alpha) * parts.z_features)
    nodes = torch.tensor([9, 1])
    torch.testing.assert_close(model(x[nodes], rows.gather(nodes)), parts.logits[nodes])
    decoded = model.decode(model.structure_preactivation(rows.all()),
                           model.feature_preactivation(x))
    torch.testing.assert_close(decoded, parts.logits)


@pytest.mark.parametrize(
    "options",
    [dict(combine="sum"), dict(combine="concat"), dict(use_structure=False),
     dict(use_features=False)],
)
def test_samlp_ablations_run(options):
    model = SAMLP(NUM_NODES, NUM_FEATURES, NUM_CLASSES, hidden=8, **options)
    adj = AdjacencyRows.from_edge_index(random_graph(), NUM_NODES).all()
    x = torch.randn(NUM_NODES, NUM_FEATURES)
    parts = model(x if model.use_features else None, adj if model.use_structure else None,
                  return_parts=True)
    assert parts.logits.shape == (NUM_NODES, NUM_CLASSES)
    assert parts.alpha is None
    assert (parts.h_structure is None) != model.use_structure
    assert (parts.h_features is None) != model.use_features


def test_samlp_rejects_bad_inputs():
    with pytest.raises(ValueError, match="use_structure or use_features"):
        SAMLP(NUM_NODES, NUM_FEATURES, NUM_CLASSES, use_structure=False, use_features=False)
    with pytest.raises(ValueError, match="gate"):
        SAMLP(NUM_NODES, NUM_FEATURES, NUM_CLASSES, combine="mean")
    model = SAMLP(NUM_NODES, NUM_FEATURES, NUM_CLASSES, hidden=8)
    adj = AdjacencyRows.from_edge_index(random_graph(), NUM_NODES).gather(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="rows"):
        model(torch.randn(3, NUM_FEATURES), adj)
    with pytest.raises(ValueError, match=f"{NUM_FEATURES}"):
        model(torch.randn(2, NUM_FEATURES + 1), adj)


def test_build_student_names_and_options():
    sizes = dict(num_features=NUM_FEATURES, num_classes=NUM_CLASSES, num_nodes=NUM_NODES)
    assert isinstance(build_student("mlp", **sizes), MLP)
    assert isinstance(build_student("mlp", num_layers=3, **sizes), MLP)
    assert isinstance(build_student("linkx", hidden=16, **sizes), LINKXStudent)
    assert isinstance(build_student("sa-mlp", combine="sum", **sizes), SAMLP)
    with pytest.raises(ValueError, match="did you mean 'sa-mlp'"):
        build_student("samlp", **sizes)
    with pytest.raises(ValueError, match="did you mean 'head_layers'"):
        build_student("sa-mlp", head_layer=2, **sizes)


def test_count_parameters():
    model = MLP(NUM_FEATURES, NUM_CLASSES, hidden=8, num_layers=2)
    assert count_parameters(model) == NUM_FEATURES * 8 + 8 + 8 * NUM_CLASSES + NUM_CLASSES
    samlp = SAMLP(NUM_NODES, NUM_FEATURES, NUM_CLASSES, hidden=8)
    expected = (NUM_NODES * 8 + 8) + (NUM_FEATURES * 8 + 8) + 2 * (8 * NUM_CLASSES
                                                                 + NUM_CLASSES) + 17
    assert count_parameters(samlp) == expected


def heterophilous_graph(num_nodes=600, num_classes=3, picks=8, p_same=0.1, seed=0):
    """Each node links to the next class (mod C) with prob 0.9: homophily ~0.1."""
    gen = torch.Generator().manual_seed(seed)
    y = (torch.arange(num_nodes) % num_classes)[torch.randperm(num_nodes, generator=gen)]
    members = [torch.nonzero(y == c).view(-1) for c in range(num_classes)]
    source = torch.arange(num_nodes).repeat_interleave(picks)
    same = torch.rand(source.numel(), generator=gen) < p_same
    target_class = torch.where(same, y[source], (y[source] + 1) % num_classes)
    target = torch.empty_like(source)
    for c in range(num_classes):
        chosen = target_class == c
        pick = torch.randint(0, members[c].numel(), (int(chosen.sum()),), generator=gen)
        target[chosen] = members[c][pick]
    edge_index = torch.stack([source, target])[:, source != target]
    edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    x = 0.3 * torch.nn.functional.one_hot(y, 16).float()
    x = x + torch.randn(num_nodes, 16, generator=gen)
    return x, y, edge_index


def train_and_test(model, x, adj, y, train, test, epochs=100):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(epochs):
        model.train()
        optimizer.zero_grad()
        label_loss(model(x, adj)[train], y[train]).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return (model(x, adj).argmax(1)[test] == y[test]).float().mean().item()


def test_samlp_beats_mlp_on_heterophilous_graph():
    x, y, edge_index = heterophilous_graph()
    homophily = (y[edge_index[0]] == y[edge_index[1]]).float().mean().item()
    assert homophily < 0.15
    adj = AdjacencyRows.from_edge_index(edge_index, 600).all()
    order = torch.randperm(600, generator=torch.Generator().manual_seed(1))
    train, test = order[:300], order[300:]
    torch.manual_seed(0)
    mlp_acc = train_and_test(MLP(16, 3, hidden=64), x, adj, y, train, test)
    torch.manual_seed(0)
    samlp_acc = train_and_test(SAMLP(600, 16, 3, hidden=64), x, adj, y, train, test)
    assert samlp_acc >= mlp_acc + 0.20, (samlp_acc, mlp_acc)
