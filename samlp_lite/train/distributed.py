"""Data-parallel SA-MLP training over processes, with the structure table sharded across them.

SA-MLP's structure encoder ``W_A`` is an ``N x h`` table (one row of ``h`` floats per node:
114 GB for ogbn-papers100M at ``h = 256``), far more than its dense parts (the feature
encoder, the heads and the gate: kilobytes to megabytes). Here one training run spreads
over ``W`` processes, launched by ``torchrun`` (see :mod:`samlp_lite.runs.scale`):

* the *nodes* are split: each process owns a fixed, seeded ``1/W`` of the distillation
  nodes (their features, labels, teacher soft labels and adjacency rows) and runs each
  epoch's mini-batches over its own nodes, so a global batch of ``B`` nodes is ``B / W``
  per process;
* the *dense parts* are replicated and data-parallel: TorchRec's
  ``DistributedModelParallel`` wraps everything that is not sharded in PyTorch's
  ``DistributedDataParallel``, which averages their gradients over the processes;
* the *structure table* is a TorchRec ``EmbeddingBagCollection`` (one table, weighted sum
  pooling over the neighbour ids: exactly ``W_A a_i``) that ``DistributedModelParallel``
  shards, so that no process holds all of it. On the CPU (gloo) the table is split
  **column-wise**: every process holds all ``N`` rows and ``h / W`` of the columns (TorchRec's
  planner offers no row-wise sharding for CPU tables); on GPUs (NCCL) it is split
  **row-wise**: every process holds ``N / W`` rows of all ``h`` columns, so the number of
  processes is not capped by ``h`` and each lookup touches only the process that owns the
  row. TorchRec sends each process's neighbour ids to the owners of the rows (or column
  slices) and the pooled results back (all-to-all), and scales the table's gradients like
  DDP's average, so the run optimises the same objective as one process does.

Everything else follows :func:`samlp_lite.train.distill.train_student`: the loss (GLNN's
``lam`` CE + KD plus ``beta`` times structure-mixing KD, mixed at the pre-activations),
Adam with the config's ``lr`` and ``weight_decay`` on every parameter (the table's shard
included), and early stopping on validation accuracy (summed over processes). The table's
initial values do not depend on ``W`` (each block of it comes from its own seeded
generator), so runs on 1 and 2 processes start from the same model and differ only by
which nodes share a process-local batch (the mixing partners) and by dropout draws.

Limits: transductive setting only; accuracy-scored graphs only; ``mix_target=teacher`` is
not supported (it needs the teacher GNN on the full graph). Every process reads the whole
graph once (then keeps only its own nodes), so features and adjacency must fit one host's
memory at load time; only the structure table is sharded throughout.

TorchRec is an optional extra (``[distributed]``); see :data:`INSTALL_HINT`.
"""
from __future__ import annotations

from pathlib import Path

import math
import os
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn

from samlp_lite.config import RunConfig
from samlp_lite.data.adjacency import gather_csr_rows
from samlp_lite.data.features import select_rows, to_model_features
from samlp_lite.models.registry import build_adjacency, make_student, model_spec
from samlp_lite.models.students import SAMLP
from samlp_lite.runtime import pick_device, seed_everything
from samlp_lite.train.loop import fit_with_early_stopping
from samlp_lite.train.losses import (
    combined_loss,
    draw_mixing,
    mixing_kd_loss,
    teacher_probabilities,
)

if TYPE_CHECKING:
    from samlp_lite.data import GraphData

INSTALL_HINT = ("install the [distributed] extra with `bash .ci/install-extras.sh distributed` (torchrec "
                "1.8.0 and fbgemm-gpu-cpu 1.8.0; a plain `pip install -e .[distributed]` pulls the CUDA "
                "fbgemm_gpu, see the how-to's 'More than one machine')")
"""How to get TorchRec; named by every error about it."""
TABLE, FEATURE = "structure", "neighbours"
"""Name of SA-MLP's structure table in the ``EmbeddingBagCollection`` and of its id feature."""
SHARDINGS = ("column_wise", "row_wise")
INIT_BLOCK = (65536, 16)
"""Rows x columns of the blocks the structure table is initialised in, each from its own seeded
generator, so that every sharding and process count gets the same initial table."""


def import_torchrec() -> Any:
    """Import ``torchrec``, or raise ImportError with :data:`INSTALL_HINT` (and the CUDA-fbgemm fix)."""
    try:
        import torchrec
        from torchrec.distributed.model_parallel import DistributedModelParallel  # noqa: F401 - loads fbgemm
    except (ImportError, OSError) as err:
        text = str(err)
        if "libtorch_cuda" in text or "fbgemm" in text.lower():
            raise ImportError(
                f"TorchRec cannot load fbgemm_gpu ({text.splitlines()[0][:160]}): the CUDA build of fbgemm_gpu is "
                "installed over the CPU one; run `pip uninstall -y fbgemm-gpu fbgemm-gpu-cpu && pip install "
                "--no-deps fbgemm-gpu-cpu==1.8.0`, or " + INSTALL_HINT) from err
        raise ImportError(f"training on several processes needs TorchRec: {INSTALL_HINT}") from err
    return torchrec


def quiet_library_warnings() -> None:
    """Silence, for this process, the notices TorchRec and fbgemm print on every run of a CPU job.

    One of them says fbgemm's dense lookup has no autograd kernel registered "and may lead to
    silently incorrect behaviour": its gradients are checked against ``nn.EmbeddingBag``'s in
    ``tests/test_distributed.py`` (column- and row-wise), and they agree.
    """
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=".*an autograd kernel was not registered.*")
    warnings.filterwarnings("ignore", message=".*broadcast_buffers.*is deprecated.*")
    for name in ("torchrec.distributed.utils", "torchrec.distributed.planner", "torch.fx._symbolic_trace"):
        logging.getLogger(name).setLevel(logging.ERROR)


# --------------------------------------------------------------------------- processes

@dataclass(frozen=True)
class ProcessInfo:
    """This process's place in the run: ``rank`` of ``world_size``, its device and backend."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints and writes records."""
        return self.rank == 0


def init_process_group(device: str | torch.device | None = None) -> ProcessInfo:
    """Join the run that ``torchrun`` set up (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_*``).

    Uses NCCL and ``cuda:<LOCAL_RANK>`` when CUDA is present (and ``device`` does not ask for
    the CPU), else gloo on the CPU. Without ``torchrun``'s variables it is a run of one process.
    """
    for key, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0"), ("LOCAL_WORLD_SIZE", "1"),
                       ("MASTER_ADDR", "127.0.0.1")):
        os.environ.setdefault(key, value)
    if "MASTER_PORT" not in os.environ:
        os.environ["MASTER_PORT"] = str(_free_port())
    local_rank = int(os.environ["LOCAL_RANK"])
    chosen = pick_device(device)
    if chosen.type == "cuda":
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    backend = "nccl" if chosen.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
    return ProcessInfo(dist.get_rank(), dist.get_world_size(), local_rank, chosen, backend)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_sharding(device: torch.device) -> str:
    """``row_wise`` on GPUs, ``column_wise`` on the CPU (where TorchRec's planner offers no row-wise)."""
    return "row_wise" if device.type == "cuda" else "column_wise"


# --------------------------------------------------------------------------- stages

def peak_rss_bytes() -> int:
    """This process's peak resident memory since the last :func:`reset_peak_rss` (``VmHWM``)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB, never reset


def _status_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the peak-RSS mark to the current RSS (Linux ``/proc/self/clear_refs``).

    Returns False when that is not possible or has no effect (some containers accept the
    write but keep the old mark), so callers know the peak is the process's lifetime peak.
    """
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    peak, current = _status_kib("VmHWM"), _status_kib("VmRSS")
    return peak is not None and current is not None and peak - current < 16 * 1024


@dataclass
class StageMeter:
    """Wall time and peak RSS of each stage of one process (peak reset at each stage's start)."""

    stages: list[dict[str, Any]] = field(default_factory=list)
    device: torch.device | None = None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Measure the block as stage ``name``."""
        reset_peak_rss()
        cuda = self.device is not None and self.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        yield
        entry = {"stage": name, "wall_s": round(time.perf_counter() - start, 3), "peak_rss_bytes": peak_rss_bytes()}
        if cuda:
            entry["peak_cuda_bytes"] = int(torch.cuda.max_memory_allocated(self.device))
        self.stages.append(entry)


# --------------------------------------------------------------------------- the nodes of one process

@dataclass
class NodeShard:
    """What one process keeps of the graph: its own nodes' rows, in ``nodes`` order.

    Attributes:
        nodes: long ``[n]`` global ids of the nodes this process owns (sorted).
        x: ``[n, d]`` features as fed to the model (dense, or sparse CSR for bag-of-words).
        y: long ``[n]`` labels.
        is_train, is_val, is_test: bool ``[n]`` split membership.
        probs: ``[n, C]`` teacher soft labels ``softmax(t / tau)``.
        rowptr, col, weight: the nodes' adjacency rows as CSR (``col`` holds global ids).
        num_nodes, num_features, num_classes: of the whole graph.
    """

    nodes: Tensor
    x: Tensor
    y: Tensor
    is_train: Tensor
    is_val: Tensor
    is_test: Tensor
    probs: Tensor
    rowptr: Tensor
    col: Tensor
    weight: Tensor
    num_nodes: int
    num_features: int
    num_classes: int

    def rows(self, local: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(ids, lengths, weights)`` of the adjacency rows of local positions ``local``."""
        positions, _ = gather_csr_rows(self.rowptr, local)
        lengths = self.rowptr.index_select(0, local + 1) - self.rowptr.index_select(0, local)
        return self.col.index_select(0, positions), lengths, self.weight.index_select(0, positions)


def owned_nodes(num_nodes: int, rank: int, world_size: int, seed: int) -> Tensor:
    """The nodes process ``rank`` owns: every ``world_size``-th of a seeded permutation, sorted."""
    order = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(seed))
    return torch.sort(order[rank::world_size]).values


def partition(graph: "GraphData", split: int, teacher_logits: Tensor, config: RunConfig, rank: int,
              world_size: int) -> NodeShard:
    """Cut this process's :class:`NodeShard` out of the whole graph (every process calls it on its own copy)."""
    n = graph.num_nodes
    if tuple(teacher_logits.shape) != (n, graph.num_classes):
        raise ValueError(f"teacher_logits has shape {tuple(teacher_logits.shape)}, expected ({n}, "
                         f"{graph.num_classes}) for this graph")
    nodes = owned_nodes(n, rank, world_size, config.seed)
    s = graph.split(split)
    masks = []
    for ids in (s.train, s.val, s.test):
        mask = torch.zeros(n, dtype=torch.bool)
        mask[ids] = True
        masks.append(mask[nodes])
    adjacency = build_adjacency(graph.data.edge_index, n, config)
    rows = adjacency.gather(nodes)
    rowptr = torch.cat([rows.offsets, rows.offsets.new_tensor([rows.nnz])])
    features = to_model_features(graph.data.x, config.sparse_features)
    return NodeShard(nodes=nodes, x=select_rows(features, nodes), y=graph.data.y[nodes].clone(),
                     is_train=masks[0], is_val=masks[1], is_test=masks[2],
                     probs=teacher_probabilities(teacher_logits[nodes].float(), config.tau),
                     rowptr=rowptr, col=rows.indices.clone(), weight=rows.weights.clone(), num_nodes=n,
                     num_features=graph.num_features, num_classes=graph.num_classes)


# --------------------------------------------------------------------------- the model

class ShardedSAMLP(nn.Module):
    """SA-MLP whose ``W_A`` is a TorchRec ``EmbeddingBagCollection`` (built on the meta device: no memory
    until ``DistributedModelParallel`` materialises each process's shard).

    ``dense`` is the model's :class:`~samlp_lite.models.students.SAMLP` without its
    ``structure_encoder`` (it keeps ``structure_bias``, the feature encoder, heads and gate).
    Called as ``model(ids, lengths, weights, x)`` it returns logits; with ``probs`` (and the
    labels, mixing draws) it returns the training loss of :func:`~samlp_lite.train.distill.train_student`,
    so that the whole step runs inside DDP's forward.
    """

    def __init__(self, name: str, num_nodes: int, num_features: int, num_classes: int, config: RunConfig) -> None:
        super().__init__()
        torchrec = import_torchrec()
        if model_spec(name, "student").architecture != "sa-mlp" or not model_spec(name).uses_teacher:
            raise ValueError(f"only distilled SA-MLP students train on several processes, not {name!r}")
        if config.mix_target != "interpolate" and config.beta > 0:
            raise ValueError("mix_target=teacher is not supported on several processes (it needs the teacher GNN "
                             "on the whole graph); use mix_target=interpolate")
        dense = make_student(name, num_features, num_classes, 1, config)  # a 1-row placeholder table...
        if not isinstance(dense, SAMLP) or not dense.use_structure:
            raise ValueError(f"{name!r} has no structure branch: nothing to shard")
        del dense.structure_encoder  # ...dropped: the table lives in self.ebc
        dense.num_nodes = num_nodes
        bound = num_nodes ** -0.5
        with torch.no_grad():
            dense.structure_bias.uniform_(-bound, bound, generator=torch.Generator().manual_seed(config.seed))
        self.dense, self.config, self.num_nodes = dense, config, num_nodes
        table = torchrec.EmbeddingBagConfig(name=TABLE, embedding_dim=dense.hidden, num_embeddings=num_nodes,
                                            feature_names=[FEATURE], pooling=torchrec.PoolingType.SUM,
                                            init_fn=nn.init.zeros_)
        self.ebc = torchrec.EmbeddingBagCollection(tables=[table], is_weighted=True, device=torch.device("meta"))

    def forward(self, ids: Tensor, lengths: Tensor, weights: Tensor, x: Tensor, probs: Tensor | None = None,
                y: Tensor | None = None, label_mask: Tensor | None = None, perm: Tensor | None = None,
                mu: Tensor | None = None) -> Tensor:
        from torchrec import KeyedJaggedTensor

        kjt = KeyedJaggedTensor(keys=[FEATURE], values=ids, lengths=lengths, weights=weights)
        structure_pre = self.ebc(kjt)[FEATURE] + self.dense.structure_bias
        feature_pre = self.dense.feature_preactivation(x) if self.dense.use_features else None
        logits = self.dense.decode(structure_pre, feature_pre)
        if probs is None:
            return logits
        c = self.config
        loss = combined_loss(logits, probs, y, lam=c.lam, tau=c.tau, label_mask=label_mask)
        if c.beta > 0:
            loss = loss + c.beta * mixing_kd_loss(self.dense, x, None, probs, c.tau, perm, mu, c.mix_features,
                                                  structure_pre=structure_pre, feature_pre=feature_pre)
        return loss


def shard_model(model: ShardedSAMLP, group: ProcessInfo, sharding: str | None = None) -> nn.Module:
    """Wrap ``model`` in ``DistributedModelParallel``: ``W_A`` sharded ``sharding``-wise over the processes
    (default :func:`default_sharding`), the rest in DDP; then fill this process's shard of ``W_A``."""
    import_torchrec()
    from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
    from torchrec.distributed.model_parallel import DistributedModelParallel
    from torchrec.distributed.sharding_plan import (
        column_wise,
        construct_module_sharding_plan,
        row_wise,
    )
    from torchrec.distributed.types import ShardingEnv, ShardingPlan

    sharding = sharding or default_sharding(group.device)
    if sharding not in SHARDINGS:
        raise ValueError(f"sharding must be one of {list(SHARDINGS)}, got {sharding!r}")
    hidden = model.dense.hidden
    if sharding == "column_wise" and hidden % group.world_size:
        raise ValueError(f"column-wise sharding splits the {hidden} columns of W_A evenly: use a process count "
                         f"that divides hidden={hidden}, or --sharding row_wise")
    model.dense.to(group.device)  # DDP wants the replicated parts on the device already
    sharder = EmbeddingBagCollectionSharder()
    generator = (column_wise(ranks=list(range(group.world_size)), compute_kernel="dense")
                 if sharding == "column_wise" else row_wise(compute_kernel="dense"))
    plan = construct_module_sharding_plan(model.ebc, {TABLE: generator}, sharder=sharder,
                                          local_size=int(os.environ.get("LOCAL_WORLD_SIZE", group.world_size)),
                                          world_size=group.world_size, device_type=group.device.type)
    sharded = DistributedModelParallel(model, env=ShardingEnv.from_process_group(dist.group.WORLD),
                                       device=group.device, plan=ShardingPlan({"ebc": plan}), sharders=[sharder])
    with torch.no_grad():
        for shard in local_table_shards(sharded):
            fill_table_block(shard["tensor"], shard["offsets"], model.num_nodes, hidden, model.config.seed)
    return sharded


def local_table_shards(sharded: nn.Module) -> list[dict[str, Any]]:
    """This process's pieces of ``W_A``: ``tensor`` (a view of the live weights), ``offsets`` and ``shape``."""
    state = sharded.state_dict()
    key = next(k for k in state if k.endswith(f"embedding_bags.{TABLE}.weight"))
    return [{"tensor": s.tensor, "offsets": list(s.metadata.shard_offsets), "shape": list(s.tensor.shape)}
            for s in state[key].local_shards()]


def fill_table_block(shard: Tensor, offsets: list[int], num_nodes: int, hidden: int, seed: int) -> None:
    """Initialise one shard of ``W_A`` as ``nn.Linear(N, h)`` would (uniform, bound ``1/sqrt(N)``).

    The table is drawn in :data:`INIT_BLOCK` blocks, each from a generator seeded by
    ``(seed, block row, block column)``; a shard computes only the blocks it overlaps, so the
    values do not depend on how the table is sharded.
    """
    import numpy as np

    bound = num_nodes ** -0.5
    (r0, c0), (rows, cols) = offsets, shard.shape
    block_rows, block_cols = INIT_BLOCK
    for br in range(r0 // block_rows, math.ceil((r0 + rows) / block_rows)):
        for bc in range(c0 // block_cols, math.ceil((c0 + cols) / block_cols)):
            top, left = br * block_rows, bc * block_cols
            height, width = min(block_rows, num_nodes - top), min(block_cols, hidden - left)
            state = int(np.random.SeedSequence([seed, br, bc]).generate_state(1, dtype=np.uint64)[0] >> 1)
            block = torch.empty(height, width).uniform_(-bound, bound, generator=torch.Generator().manual_seed(state))
            lo_r, hi_r = max(top, r0), min(top + height, r0 + rows)
            lo_c, hi_c = max(left, c0), min(left + width, c0 + cols)
            shard[lo_r - r0:hi_r - r0, lo_c - c0:hi_c - c0] = block[lo_r - top:hi_r - top, lo_c - left:hi_c - left].to(
                shard.device)


class _LocalState:
    """What :func:`~samlp_lite.train.loop.fit_with_early_stopping` checkpoints: this process's parameters
    (its shard of ``W_A`` and its replica of the dense parts), copied in and out in place."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.params = dict(module.named_parameters())

    def train(self, mode: bool = True) -> "_LocalState":
        self.module.train(mode)
        return self

    def eval(self) -> "_LocalState":
        return self.train(False)

    def state_dict(self) -> dict[str, Tensor]:
        return {name: p.detach().clone() for name, p in self.params.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(state[name])


# --------------------------------------------------------------------------- training

@dataclass
class DistributedResult:
    """Outcome of :func:`train_student_distributed` (the same on every process, except ``table_shards``)."""

    val_acc: float
    test_acc: float
    best_epoch: int
    epochs_run: int
    sharding: str
    table_shape: list[int]
    table_shards: list[dict[str, Any]]
    """This process's pieces of ``W_A``: ``shape`` and ``offsets`` each."""
    history: list[dict] = field(default_factory=list)


def _all_sum(values: list[float], group: ProcessInfo) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64, device=group.device if group.backend == "nccl" else "cpu")
    if group.world_size > 1:
        dist.all_reduce(t)
    return t.tolist()


def _all_max(value: int, group: ProcessInfo) -> int:
    t = torch.tensor([value], dtype=torch.long, device=group.device if group.backend == "nccl" else "cpu")
    if group.world_size > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def train_student_distributed(name: str, shard: NodeShard, config: RunConfig, group: ProcessInfo, *,
                              sharding: str | None = None, meter: StageMeter | None = None,
                              progress: bool = True) -> DistributedResult:
    """Distil SA-MLP on this process's nodes, in step with the others (every process calls it).

    Args:
        name: ``sa-mlp``, ``sa-mlp-nomix`` or an SA-MLP ablation with a structure branch.
        shard: this process's nodes (:func:`partition`).
        config: the student's resolved config; ``batch_size`` is the *global* batch (``0``: all nodes),
            split evenly over the processes.
        group: from :func:`init_process_group`.
        sharding: ``column_wise`` or ``row_wise`` (default :func:`default_sharding`).
        meter: records the ``shard``, ``train`` and ``evaluate`` stages.
        progress: a progress bar (rank 0 only).
    """
    meter = meter or StageMeter(device=group.device)
    device = group.device
    with meter.stage("shard"):
        seed_everything(config.seed)  # the same dense initialisation on every process
        model = ShardedSAMLP(name, shard.num_nodes, shard.num_features, shard.num_classes, config)
        sharded = shard_model(model, group, sharding)
        optimizer = torch.optim.Adam(sharded.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        torch.manual_seed(config.seed + 1_000_003 * group.rank)  # dropout draws differ between processes
        generator = torch.Generator(device=device).manual_seed(config.seed + 1_000_003 * group.rank)
    n_local = shard.nodes.numel()
    global_nodes = int(_all_sum([float(n_local)], group)[0])
    steps = 1 if config.batch_size <= 0 else max(1, math.ceil(global_nodes / config.batch_size))

    def batch_inputs(local: Tensor) -> tuple[Tensor, ...]:
        ids, lengths, weights = shard.rows(local)
        return (ids.to(device), lengths.to(device), weights.to(device),
                select_rows(shard.x, local).to(device))

    def train_epoch(epoch: int) -> float:
        order = torch.randperm(n_local, generator=torch.Generator().manual_seed(
            config.seed * 100003 + epoch + 7919 * group.rank))
        total = 0.0
        for local in torch.tensor_split(order, steps):
            optimizer.zero_grad()
            perm, mu = draw_mixing(local.numel(), config.mix_a, config.mix_per_sample, generator, device=device)
            loss = sharded(*batch_inputs(local), probs=shard.probs[local].to(device), y=shard.y[local].to(device),
                           label_mask=shard.is_train[local].to(device), perm=perm, mu=mu)
            loss.backward()
            optimizer.step()
            total += loss.item() * local.numel()
        return _all_sum([total], group)[0] / global_nodes

    def correct(mask: Tensor) -> tuple[float, float]:
        local = mask.nonzero().view(-1)
        chunks = _all_max(max(1, math.ceil(local.numel() / 65536)), group)  # same number of calls everywhere
        right = 0
        for part in torch.tensor_split(local, chunks):
            logits = sharded(*batch_inputs(part))
            right += int((logits.argmax(-1).cpu() == shard.y[part]).sum())
        return float(right), float(local.numel())

    def validate() -> float:
        right, total = _all_sum(list(correct(shard.is_val)), group)
        return right / total if total else float("nan")

    with meter.stage("train"):
        fit = fit_with_early_stopping(_LocalState(sharded), train_epoch, validate, max_epochs=config.max_epochs,
                                      patience=config.patience, eval_every=config.eval_every,
                                      progress=progress and group.is_main,
                                      desc=f"{name} on {group.world_size} process(es)")
    with meter.stage("evaluate"), torch.no_grad():
        sharded.eval()
        val_right, val_total, test_right, test_total = _all_sum([*correct(shard.is_val), *correct(shard.is_test)],
                                                                group)
    shards = [{"shape": s["shape"], "offsets": s["offsets"]} for s in local_table_shards(sharded)]
    return DistributedResult(val_acc=val_right / val_total if val_total else float("nan"),
                             test_acc=test_right / test_total if test_total else float("nan"),
                             best_epoch=fit.best_epoch, epochs_run=fit.epochs_run,
                             sharding=sharding or default_sharding(device),
                             table_shape=[shard.num_nodes, model.dense.hidden], table_shards=shards,
                             history=fit.history)
