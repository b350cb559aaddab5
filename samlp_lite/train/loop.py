"""The early-stopping loop shared by teachers and students."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm


@dataclass
class FitResult:
    """Outcome of :func:`fit_with_early_stopping`.

    Attributes:
        best_epoch: epoch (1-based) whose validation accuracy was best; its weights are loaded.
        best_val_acc: that validation accuracy.
        epochs_run: epochs actually trained before stopping.
        history: one dict per evaluation: ``epoch``, ``loss``, ``val_acc``.
        wall_s: seconds spent in the loop.
    """

    best_epoch: int
    best_val_acc: float
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    wall_s: float = 0.0


def fit_with_early_stopping(model: nn.Module, train_epoch: Callable[[int], float],
                            validate: Callable[[], float], *, max_epochs: int, patience: int,
                            eval_every: int = 1, progress: bool = True, desc: str = "train") -> FitResult:
    """Train until validation accuracy stops improving, then restore the best weights.

    Args:
        model: the module whose ``state_dict`` is checkpointed in memory.
        train_epoch: runs one epoch given the 1-based epoch number, returns the mean loss.
        validate: returns validation accuracy (the model is put in eval mode around it).
        max_epochs: upper bound on epochs.
        patience: stop after this many epochs without a better validation accuracy.
        eval_every: validate every this many epochs.
        progress: show a tqdm bar with epoch, loss and validation accuracy.
        desc: label of the progress bar.
    """
    start = time.perf_counter()
    best_val, best_epoch, best_state = -1.0, 0, None
    history: list[dict] = []
    bar = tqdm(range(1, max_epochs + 1), desc=desc, disable=not progress, leave=False, mininterval=0.5)
    epoch = 0
    for epoch in bar:
        model.train()
        loss = float(train_epoch(epoch))
        if not torch.isfinite(torch.tensor(loss)):
            raise FloatingPointError(f"{desc}: loss became {loss} at epoch {epoch}; "
                                     "lower lr or check the input features for NaN/inf")
        if epoch % eval_every and epoch != max_epochs:
            continue
        model.eval()
        with torch.no_grad():
            val_acc = float(validate())
        history.append({"epoch": epoch, "loss": loss, "val_acc": val_acc})
        if val_acc > best_val:
            best_val, best_epoch = val_acc, epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{loss:.4f}", val=f"{val_acc:.4f}", best=f"{best_val:.4f}", refresh=False)
        if epoch - best_epoch >= patience:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(best_epoch=best_epoch, best_val_acc=best_val, epochs_run=epoch,
                     history=history, wall_s=time.perf_counter() - start)
