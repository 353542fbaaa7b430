"""The geometric loss strategy (torch is imported here, when a model is built)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from cmi_core.weighting import FixedWeights, LossWeighting


class GeometricLoss(LossWeighting):
    """``total = exp(mean_i ln(L_i + eps))``, the geometric mean of the active losses.

    A loss is clamped at 0 first (a KL term can round to a tiny negative). The effective
    weight of term i is the gradient ``d total / d L_i = total / (n (L_i + eps))`` of the last
    forward pass (``1/n`` before the first), so ``sum_i w_i L_i`` is the total again.
    """

    def __init__(self, terms: Sequence[str], fixed: FixedWeights, eps: float) -> None:
        super().__init__(terms, fixed)
        self.eps = eps
        n = len(self.terms)
        self.register_buffer("gradient_weights", torch.full((n,), 1.0 / n), persistent=False)

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        shifted = torch.stack([losses[t] for t in self.terms]).clamp_min(0.0) + self.eps
        total = shifted.log().mean().exp()
        self.gradient_weights.copy_((total / (len(self.terms) * shifted)).detach())
        return total

    def effective_weights(self) -> dict[str, Tensor | float]:
        return dict(zip(self.terms, self.gradient_weights.unbind(), strict=True))
