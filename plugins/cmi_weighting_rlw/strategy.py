"""The random-loss-weighting strategy (torch is imported here, when a model is built)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from cmi_core.weighting import FixedWeights, LossWeighting, weighted_sum


class RandomLossWeighting(LossWeighting):
    """``total = sum_i w_i L_i`` with ``w`` redrawn after every optimizer step.

    The weights of the coming step are drawn when the strategy is built and after each
    optimizer step, and kept in a buffer: every forward pass of one step (gradient
    accumulation, a checkpoint's reload) sees the same weights, and the draw runs on the
    buffer's device with torch's generator for that device (no host synchronisation).
    """

    learns = True  # no gradient, but the weights in its buffer change every step (redrawn)

    def __init__(
        self,
        terms: Sequence[str],
        fixed: FixedWeights,
        distribution: str,
        std: float,
        concentration: float,
    ) -> None:
        super().__init__(terms, fixed)
        self.distribution, self.std, self.concentration = distribution, std, concentration
        n = len(self.terms)
        self.register_buffer("weights", torch.full((n,), 1.0 / n))
        self.draw_()

    @torch.no_grad()
    def draw_(self) -> None:
        """Replace the weights by a fresh sample on the probability simplex."""
        n, device = len(self.terms), self.weights.device
        if self.distribution == "normal":
            sample = torch.softmax(self.std * torch.randn(n, device=device), dim=0)
        else:
            alpha = torch.full((n,), self.concentration, device=device)
            sample = torch.distributions.Dirichlet(alpha).sample()
        self.weights.copy_(sample)

    def _weights(self) -> Tensor:
        return self.weights if self.training else torch.full_like(self.weights, 1 / len(self.terms))

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        return weighted_sum(losses, dict(zip(self.terms, self._weights().unbind(), strict=True)))

    def reference_total(self, losses: Mapping[str, float]) -> float:
        """docs/weighting.md: ``sum_i w_i L_i`` with this step's draw (``1/K`` in validation)."""
        weights = (
            self.weights.tolist() if self.training else [1 / len(self.terms)] * len(self.terms)
        )
        return sum(w * losses[t] for t, w in zip(self.terms, weights, strict=True))

    def after_optimizer_step(self) -> None:
        self.draw_()

    def effective_weights(self) -> dict[str, Tensor | float]:
        return dict(zip(self.terms, self._weights().unbind(), strict=True))
