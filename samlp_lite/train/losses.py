"""Training losses (the book's method chapter, "Training"): labels, GLNN's KD, and structure-mixing KD.

KD follows Hinton et al. and GLNN: ``tau^2 * KL(p || softmax(z / tau))`` averaged over the
batch, where ``p = softmax(t / tau)`` are the cached teacher soft labels.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from samlp_lite.data.adjacency import AdjacencyBatch
from samlp_lite.models.students import SAMLP


def _check_matrix(name: str, t: Tensor) -> None:
    if t.dim() != 2:
        raise ValueError(f"{name} must be [B, C], got shape {list(t.shape)}")


def _check_same_shape(a_name: str, a: Tensor, b_name: str, b: Tensor) -> None:
    _check_matrix(a_name, a)
    if a.shape != b.shape:
        raise ValueError(
            f"{a_name} {list(a.shape)} and {b_name} {list(b.shape)} must have the same shape"
        )


def _check_tau(tau: float) -> None:
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")


def label_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of ``logits`` ``[B, C]`` against class ids ``y`` (long ``[B]``)."""
    _check_matrix("logits", logits)
    if y.dim() != 1 or y.numel() != logits.size(0):
        raise ValueError(
            f"y must be [B] with B = {logits.size(0)} (rows of logits), got {list(y.shape)}"
        )
    return F.cross_entropy(logits, y.long())


def teacher_probabilities(teacher_logits: Tensor, tau: float = 1.0) -> Tensor:
    """Soft labels ``softmax(teacher_logits / tau)``, ``[B, C]`` (default ``tau`` 1)."""
    _check_matrix("teacher_logits", teacher_logits)
    _check_tau(tau)
    return torch.softmax(teacher_logits / tau, dim=-1)


def kd_loss(student_logits: Tensor, teacher_probs: Tensor, tau: float = 1.0) -> Tensor:
    """``tau^2 * KL(teacher_probs || softmax(student_logits / tau))``, mean over the batch.

    Args:
        student_logits: ``[B, C]``.
        teacher_probs: ``[B, C]`` rows on the simplex (use :func:`teacher_probabilities`
            with the same ``tau``).
        tau: temperature (default 1).

    Returns:
        Scalar; 0 for an empty batch.
    """
    _check_same_shape("student_logits", student_logits, "teacher_probs", teacher_probs)
    _check_tau(tau)
    if student_logits.size(0) == 0:
        return student_logits.sum() * 0.0
    log_q = F.log_softmax(student_logits / tau, dim=-1)
    return tau**2 * F.kl_div(log_q, teacher_probs, reduction="batchmean")


def combined_loss(
    student_logits: Tensor,
    teacher_probs: Tensor | None = None,
    y: Tensor | None = None,
    *,
    lam: float = 0.0,
    tau: float = 1.0,
    label_mask: Tensor | None = None,
) -> Tensor:
    """``lam * CE + (1 - lam) * KD`` on one batch (GLNN's base loss).

    Args:
        student_logits: ``[B, C]``.
        teacher_probs: ``[B, C]`` soft labels; KD runs over every row. May be ``None``
            when ``lam == 1``.
        y: long ``[B]`` labels; only rows where ``label_mask`` is True enter the CE. May be
            ``None`` when ``lam == 0``.
        lam: weight of the label loss in ``[0, 1]`` (default 0, GLNN's default).
        tau: KD temperature (default 1).
        label_mask: bool ``[B]``, rows with a training label (default: all rows).

    Returns:
        Scalar loss; a term with weight 0 is skipped, and CE is 0 when no row is labelled.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must lie in [0, 1], got {lam}")
    total = student_logits.new_zeros(())
    if lam > 0:
        if y is None:
            raise ValueError("y is required when lam > 0")
        logits, labels = student_logits, y
        if label_mask is not None:
            if label_mask.dtype != torch.bool or label_mask.shape != (student_logits.size(0),):
                raise ValueError(f"label_mask must be bool [{student_logits.size(0)}]")
            logits, labels = student_logits[label_mask], y[label_mask]
        if labels.numel():
            total = total + lam * label_loss(logits, labels)
    if lam < 1:
        if teacher_probs is None:
            raise ValueError("teacher_probs is required when lam < 1")
        total = total + (1.0 - lam) * kd_loss(student_logits, teacher_probs, tau)
    return total


def draw_mixing(
    batch_size: int,
    a: float = 1.0,
    per_sample: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw the partner permutation and mixing weights for structure mixing.

    Args:
        batch_size: B.
        a: Beta(a, a) parameter, positive (default 1: uniform).
        per_sample: one ``mu`` per node ``[B]`` instead of one for the batch (default False).
        generator: torch generator that makes the draw repeatable (default: global RNG).
        device: where to put the results (default: the generator's device, else CPU).

    Returns:
        ``(perm, mu)``: long ``[B]`` permutation and float ``mu`` (0-d, or ``[B]``).
    """
    if not a > 0:
        raise ValueError(f"the Beta parameter a must be positive, got {a}")
    if batch_size < 0:
        raise ValueError(f"batch_size must be non-negative, got {batch_size}")
    gen_device = generator.device if generator is not None else torch.device("cpu")
    perm = torch.randperm(batch_size, generator=generator, device=gen_device)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=gen_device))
    rng = np.random.default_rng(seed)
    draws = rng.beta(a, a, size=batch_size if per_sample else ())
    mu = torch.as_tensor(draws, dtype=torch.float32)
    device = device if device is not None else gen_device
    return perm.to(device), mu.to(device)


def _mix_weights(mu: Tensor | float, batch_size: int, like: Tensor) -> Tensor:
    mu = torch.as_tensor(mu, dtype=like.dtype, device=like.device)
    if mu.numel() == 1:
        return mu.reshape(())
    if mu.numel() != batch_size:
        raise ValueError(f"mu must be a scalar or [{batch_size}], got shape {list(mu.shape)}")
    return mu.reshape(batch_size, *([1] * (like.dim() - 1)))


def mix_rows(t: Tensor, perm: Tensor, mu: Tensor | float) -> Tensor:
    """``mu * t + (1 - mu) * t[perm]`` row-wise for dense ``t`` ``[B, ...]``.

    Args:
        t: dense ``[B, ...]``.
        perm: long ``[B]`` partner of each row.
        mu: scalar or ``[B]`` weight of the row itself.
    """
    if perm.dim() != 1 or perm.numel() != t.size(0):
        raise ValueError(f"perm must be [{t.size(0)}], got shape {list(perm.shape)}")
    weight = _mix_weights(mu, t.size(0), t)
    return weight * t + (1 - weight) * t[perm]


def mixing_kd_loss(
    model: SAMLP,
    x: Tensor | None,
    adj: AdjacencyBatch | None,
    teacher_probs: Tensor,
    tau: float,
    perm: Tensor,
    mu: Tensor | float,
    mix_features: bool = False,
    target_probs: Tensor | None = None,
    *,
    structure_pre: Tensor | None = None,
    feature_pre: Tensor | None = None,
) -> Tensor:
    """KD loss on virtual nodes with mixed structure (SA-MLP's structure mixing).

    Virtual node i has adjacency row ``mu a_i + (1 - mu) a_perm(i)`` (and, with
    ``mix_features``, features ``mu x_i + (1 - mu) x_perm(i)``; otherwise its own ``x_i``).
    Because ``W_A`` is linear, ``W_A(mu a_i + (1 - mu) a_j) + b_A`` equals
    ``mu (W_A a_i + b_A) + (1 - mu)(W_A a_j + b_A)``, so the rows are mixed exactly at the
    structure pre-activation instead of as N-wide rows. Features, dense or sparse, are
    mixed at the feature pre-activation, exact for the same reason (the first feature
    layer is linear) and it lets the caller reuse the pre-activations of its plain pass.

    Args:
        model: an :class:`~samlp_lite.models.students.SAMLP`.
        x: ``[B, d]`` features of the batch (dense or sparse); unused when
            ``feature_pre`` is given or the model has no feature branch.
        adj: adjacency rows of the batch; unused when ``structure_pre`` is given.
        teacher_probs: ``[B, C]`` soft labels of the real batch nodes.
        tau: KD temperature.
        perm: long ``[B]`` partner permutation (see :func:`draw_mixing`).
        mu: scalar or ``[B]`` mixing weights.
        mix_features: also mix the features (default False).
        target_probs: ``[B, C]`` targets for the virtual nodes; default is the
            interpolation ``mu p_i + (1 - mu) p_perm(i)`` (``mix_target=interpolate``).
            Pass the teacher's own prediction on the virtual nodes for
            ``mix_target=teacher``.
        structure_pre: ``[B, h]`` ``model.structure_preactivation(adj)`` of the real batch,
            if already computed (default: computed here).
        feature_pre: ``[B, h]`` ``model.feature_preactivation(x)``, if already computed.

    Returns:
        Scalar KD loss (weight it by ``beta`` in the caller).
    """
    if not isinstance(model, SAMLP):
        raise ValueError(f"mixing_kd_loss needs an SAMLP student, got {type(model).__name__}")
    if not (model.use_structure or mix_features):
        raise ValueError("nothing to mix: the model has no structure branch and "
                         "mix_features is False")
    if model.use_structure:
        if structure_pre is None:
            structure_pre = model.structure_preactivation(adj)
        structure_pre = mix_rows(structure_pre, perm, mu)
    if model.use_features:
        if feature_pre is None:
            feature_pre = model.feature_preactivation(x)
        if mix_features:
            feature_pre = mix_rows(feature_pre, perm, mu)
    logits = model.decode(structure_pre, feature_pre)
    if target_probs is None:
        _check_same_shape("logits", logits, "teacher_probs", teacher_probs)
        target_probs = mix_rows(teacher_probs, perm, mu)
    return kd_loss(logits, target_probs, tau)
