"""The fixed-formula weighting (exp024)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor

from cmi_core.weighting import FixedWeights, LossWeighting, weighted_sum


class FixedWeighting(LossWeighting):
    """``sum_i w_i * L_i`` with the fixed weights of ``[loss]``; nothing is learned."""

    def __init__(self, terms: Sequence[str], fixed: FixedWeights) -> None:
        super().__init__(terms, fixed)
        self.weights = fixed.for_terms(self.terms)

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        return weighted_sum(losses, self.weights)

    def reference_total(self, losses: Mapping[str, float]) -> float:
        """docs/weighting.md: ``alpha*L18 + (1 - alpha)*Lbin + w9*L9 + wkl*Lkl``."""
        fixed = self.fixed
        weight = {
            "multiclass": fixed.alpha,
            "binary": 1.0 - fixed.alpha,
            "nine_class": fixed.nine_class_loss_weight,
            "kl": fixed.kl_weight,
        }
        return sum(weight[t] * losses[t] for t in self.terms)
