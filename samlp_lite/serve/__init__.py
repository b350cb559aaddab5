"""Serving: the graph store and its gathers, one server per model, how a call is measured,
and the latency benchmark (``samlp-lite bench``).

Stage 4 of the pipeline: servers take model classes from :mod:`samlp_lite.models`; weights are
random, since latency and memory depend on shapes only.
"""

TEACHER_MODELS = ("sage", "gcn", "gat")
"""GNN teachers a server can serve (APPNP's propagation has no per-target server)."""
STUDENT_MODELS = ("mlp", "linkx", "sa-mlp")
"""Students served (``mlp`` also stands for GLNN: same network, different training)."""
FLOOR_MODELS = ("structure-lookup",)
"""Parts of SA-MLP served alone, for its latency floor: ``structure-lookup`` is the embedding-bag
of the targets' adjacency rows (no features, no heads); the feature lookup plus MLP is ``mlp``."""
MODELS = TEACHER_MODELS + STUDENT_MODELS + FLOOR_MODELS
"""Every model name the servers take, teachers first."""
REAL_GRAPHS = ("cora", "citeseer", "chameleon", "squirrel")
SYNTHETIC_GRAPHS = ("csbm-10k", "csbm-100k", "csbm-1m", "csbm-2m")
DEFAULT_GRAPHS = REAL_GRAPHS + SYNTHETIC_GRAPHS
"""The graphs ``samlp-lite bench`` measures by default."""
SMOKE_GRAPH = "csbm-2k"
"""The one graph measured in smoke mode, whatever was asked."""
