"""Uncertainty weighting: one learnable log-variance per active loss term."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cmi_core.weighting import FixedWeights, LossWeighting


class UncertaintyWeighting(LossWeighting):
    """One ``s_i`` per term; ``kendall``: ``sum exp(-s_i) L_i + s_i``,
    ``liebel``: ``sum exp(-s_i) L_i / 2 + ln(1 + exp(s_i))``.

    ``s_i`` is clamped to ``[low, high]`` in the forward pass and projected back into the range
    after every optimizer step (a parameter left outside would get no gradient again). The fixed
    weights of ``[loss]`` are not used.
    """

    learns = True

    def __init__(
        self,
        terms: Sequence[str],
        fixed: FixedWeights,
        low: float,
        high: float,
        initial: Mapping[str, float],
        variant: str,
    ) -> None:
        super().__init__(terms, fixed)
        self.low, self.high, self.variant = low, high, variant
        self.s = nn.ParameterDict(
            {t: nn.Parameter(torch.tensor(min(max(float(initial[t]), low), high))) for t in terms}
        )

    def _log_variances(self) -> Tensor:
        return torch.stack([self.s[t] for t in self.terms]).clamp(self.low, self.high)

    def _weights(self, s: Tensor) -> Tensor:
        precision = torch.exp(-s)
        return precision if self.variant == "kendall" else 0.5 * precision

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        s = self._log_variances()
        values = torch.stack([losses[t] for t in self.terms])
        regulariser = s if self.variant == "kendall" else F.softplus(s)
        return (self._weights(s) * values + regulariser).sum()

    def effective_weights(self) -> dict[str, Tensor | float]:
        weights = self._weights(self._log_variances()).detach()
        return dict(zip(self.terms, weights.unbind(), strict=True))

    def raw_values(self) -> dict[str, Tensor | float]:
        return {f"s_{t}": self.s[t].detach() for t in self.terms}

    def after_optimizer_step(self) -> None:
        self.clamp_parameters_(self.low, self.high)

    def parameter_range(self) -> tuple[float, float]:
        return self.low, self.high

    def reference_total(self, losses: Mapping[str, float]) -> float:
        """docs/weighting.md: kendall ``sum exp(-s)L + s``; liebel
        ``sum L/(2 sigma^2) + ln(1 + sigma^2)`` with ``sigma^2 = exp(s)``, s clamped."""
        total = 0.0
        for term in self.terms:
            s = min(max(self.s[term].item(), self.low), self.high)
            if self.variant == "kendall":
                total += math.exp(-s) * losses[term] + s
            else:
                variance = math.exp(s)
                total += losses[term] / (2.0 * variance) + math.log1p(variance)
        return total
