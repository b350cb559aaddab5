"""The latent structure predictor ``g(x)`` of SA-MLP's isolated path (stage 2 of inductive distillation)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from samlp_lite.models.students import SAMLP


class LatentPredictor(nn.Module):
    """``g(x)``: a 2-layer MLP ``d -> h -> h`` predicting the structure pre-activation from features.

    With ``stage2_freeze: false`` it also owns fine-tuned copies of the student's heads and
    gate (``heads``), used only on the isolated path, so the online path keeps stage 1's.
    """

    def __init__(self, num_features: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.layer1, self.layer2 = nn.Linear(num_features, hidden), nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict()

    def forward(self, x: Tensor) -> Tensor:
        """``[B, h]`` stand-in for ``W_A a + b_A`` from ``[B, d]`` features (dense or sparse)."""
        return self.layer2(self.dropout(F.relu(self.layer1(x))))

    def decode(self, model: SAMLP, x: Tensor, feature_pre: Tensor | None = None, return_parts: bool = False):
        """The student's output on the isolated path: ``g(x)`` in place of ``W_A a + b_A``."""
        if feature_pre is None and model.use_features:
            feature_pre = model.feature_preactivation(x)
        return model.decode(self(x), feature_pre, return_parts=return_parts, heads=dict(self.heads) or None)
