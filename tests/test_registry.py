"""The model registry: every model declared once; a new student is one entry plus its class."""
import pytest
import torch
from torch import nn

from samlp_lite.config import RunConfig
from samlp_lite.data import make_csbm
from samlp_lite.models import registry
from samlp_lite.models.registry import ModelSpec, model_spec, register, unregister
from samlp_lite.models.teachers import GATTeacher, GCNTeacher, build_teacher
from samlp_lite.report.tables import TABLE_MODELS, accuracy_table
from samlp_lite.train.distill import train_student


class LinearStudent(nn.Module):
    """A toy student: one linear layer on the features."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(num_features, num_classes)

    def forward(self, x, adj=None):
        return self.linear(x.to_dense() if x.is_sparse or x.layout == torch.sparse_csr else x)


@pytest.fixture
def toy_student():
    spec = register(ModelSpec("toy-linear", "student", "mlp",
                              lambda d, c, n, config: LinearStudent(d, c), uses_teacher=True, reads="features",
                              tuning_stages=("model",), label="Toy", color="#000000", in_tables=False))
    yield spec
    unregister("toy-linear")


def test_a_registered_student_trains_and_labels_tables(toy_student):
    graph = make_csbm(num_nodes=120, num_classes=3, num_features=8, homophily=0.8, seed=0)
    split = graph.split(0)
    teacher_logits = torch.nn.functional.one_hot(graph.data.y, 3).float() * 4
    config = RunConfig(max_epochs=5, patience=5, batch_size=0, device="cpu")
    trained = train_student("toy-linear", graph.data, split.train, split.val, split.test, 3, config, teacher_logits,
                            progress=False)
    assert isinstance(trained.model, LinearStudent) and trained.logits.shape == (120, 3)
    assert registry.uses_teacher("toy-linear") and registry.label_of("toy-linear") == "Toy"
    record = {"kind": "accuracy", "dataset": "cora", "model": "toy-linear", "teacher": "sage",
              "setting": "transductive", "splits": [0], "test_acc": [0.5]}
    table = accuracy_table([record], models=("toy-linear",))
    assert list(table.columns) == ["SAGE", "Toy"] and table.loc["cora", "Toy"] == "50.00 ± 0.00"


def test_the_registry_is_the_only_list_of_models(toy_student):
    assert "toy-linear" in registry.students() and "toy-linear" not in TABLE_MODELS
    unregister("toy-linear")
    with pytest.raises(ValueError, match="unknown student 'toy-linear'"):
        model_spec("toy-linear", "student")
    register(toy_student)  # the fixture removes it again


def test_ablations_come_from_the_yaml_and_names_are_checked():
    spec = model_spec("sa-mlp-sum")
    assert spec.role == "ablation" and spec.ablation_of == "sa-mlp" and spec.architecture == "sa-mlp"
    with pytest.raises(ValueError, match="Did you mean 'glnn'"):
        model_spec("gnln")
    with pytest.raises(ValueError, match="unknown teacher 'mlp'"):
        model_spec("mlp", "teacher")
    with pytest.raises(ValueError, match="already registered"):
        register(model_spec("sage"))


def test_one_class_per_teacher_keeps_its_graph_handling():
    config = RunConfig(hidden=8, heads=2, num_layers=2, batch_size=0)
    gcn, gat = build_teacher("gcn", 4, 3, config), build_teacher("gat", 4, 3, config)
    assert isinstance(gcn, GCNTeacher) and isinstance(gat, GATTeacher) and gcn.name == "gcn"
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    assert gcn.prepare_graph(edge_index, 3).layout == torch.sparse_csr
    prepared = gat.prepare_graph(edge_index, 3)  # full-batch GAT: the graph with self-loops, sorted once
    assert torch.equal(prepared.raw_edge_index, edge_index) and prepared.num_edges == 6
    minibatch = build_teacher("gat", 4, 3, RunConfig(hidden=8, heads=2, num_layers=2, batch_size=16))
    assert torch.equal(minibatch.prepare_graph(edge_index, 3), edge_index)
    assert gcn.minibatch_graph(edge_index, 3)[1] is not None and gat.minibatch_graph(edge_index, 3)[1] is None
