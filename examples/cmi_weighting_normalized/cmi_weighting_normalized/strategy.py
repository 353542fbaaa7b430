"""The initial-loss normalisation strategy (torch is imported here, when a model is built)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from cmi_core.weighting import FixedWeights, LossWeighting


class InitialLossNormalization(LossWeighting):
    """``total = sum_i fixed_i * L_i / reference_i``, ``reference_i = max(L_i(0), floor)``.

    The reference losses live in buffers, so checkpoints hold them and DDP broadcasts them.
    Until the first training step every reference is 1 (the ``none`` formula).
    """

    learns = True  # no parameters, but the first training step sets the reference buffers

    def __init__(self, terms: Sequence[str], fixed: FixedWeights, floor: float) -> None:
        super().__init__(terms, fixed)
        self.floor = floor
        fixed_weights = [fixed.for_terms(self.terms)[t] for t in self.terms]
        self.register_buffer("fixed_weights", torch.tensor(fixed_weights), persistent=False)
        self.register_buffer("reference", torch.ones(len(self.terms)))
        self.register_buffer("recorded", torch.zeros((), dtype=torch.bool))

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        values = torch.stack([losses[t] for t in self.terms])
        if self.training:  # validation must not set the reference
            self._record(values.detach())
        return (self.fixed_weights / self.reference * values).sum()

    @torch.no_grad()
    def _record(self, values: Tensor) -> None:
        # torch.where instead of `if not self.recorded`: no GPU synchronisation per step
        first = values.clamp_min(self.floor)
        self.reference.copy_(torch.where(self.recorded, self.reference, first))
        self.recorded.fill_(True)

    def effective_weights(self) -> dict[str, Tensor | float]:
        weights = self.fixed_weights / self.reference
        return dict(zip(self.terms, weights.unbind(), strict=True))
