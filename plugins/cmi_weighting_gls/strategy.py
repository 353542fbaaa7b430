"""The geometric loss strategy (torch is imported here, when a model is built)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from cmi_core.weighting import FixedWeights, LossWeighting, weighted_sum


class GeometricLoss(LossWeighting):
    """``total = exp(mean_i ln(L_i + eps))`` over the balanced terms, plus ``wkl * Lkl`` when
    ``kl`` is held at its fixed weight.

    A loss is clamped at 0 first (a KL term can round to a tiny negative). The effective
    weight of a balanced term is the gradient ``d total / d L_i = total / (n (L_i + eps))`` of
    the last forward pass (``1/n`` before the first), so ``sum_i w_i L_i`` is the total again.
    """

    learns = False  # a fixed formula: its gradient weights are derived from the losses, not state

    def __init__(
        self, terms: Sequence[str], fixed: FixedWeights, eps: float, kl_fixed: bool
    ) -> None:
        super().__init__(terms, fixed)
        self.eps = eps
        self.balanced = tuple(t for t in self.terms if not (kl_fixed and t == "kl"))
        self.held = {t: w for t, w in fixed.for_terms(self.terms).items() if t not in self.balanced}
        n = len(self.balanced)
        # derived from the last losses, not state: a plain attribute, outside the state_dict
        self.gradient_weights = torch.full((n,), 1.0 / n)

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        shifted = torch.stack([losses[t] for t in self.balanced]).clamp_min(0.0) + self.eps
        total = shifted.log().mean().exp()
        self.gradient_weights = (total / (len(self.balanced) * shifted)).detach()
        return total + weighted_sum(losses, self.held) if self.held else total

    def reference_total(self, losses: Mapping[str, float]) -> float:
        """docs/weighting.md: ``(prod_i (L_i + eps))^(1/n)`` over the balanced terms, plus the
        held terms at their fixed weights."""
        product = math.prod(max(losses[t], 0.0) + self.eps for t in self.balanced)
        held = sum(w * losses[t] for t, w in self.held.items())
        return product ** (1 / len(self.balanced)) + held

    def effective_weights(self) -> dict[str, Tensor | float]:
        weights = dict(zip(self.balanced, self.gradient_weights.unbind(), strict=True))
        return {t: weights.get(t, self.held.get(t)) for t in self.terms}
