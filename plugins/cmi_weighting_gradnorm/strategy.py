"""GradNorm: task weights trained to equalise the task gradients' norms on the shared part."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from cmi_core import GradientUpdate, GradientWeighting
from cmi_core.weighting import FixedWeights

MIN_WEIGHT = 1e-4  # a weight pushed to or below 0 would silence its task for good


class GradNormWeighting(GradientWeighting):
    """Update ``sum_i w_i g_i``; ``w`` learns from the balance loss (Algorithm 1 of the paper).

    ``G_i = w_i |g_i|``, ``Lt_i = L_i / L_i(0)`` (``L_i(0)``: the first step's loss, kept in a
    buffer so resume keeps it), ``r_i = Lt_i / mean(Lt)``, target ``mean(G) * r_i^a`` held
    constant; the balance loss ``sum_i |G_i - target_i|`` is differentiated w.r.t. ``w`` only.
    """

    def __init__(
        self, terms: Sequence[str], fixed: FixedWeights, where: str, asymmetry: float
    ) -> None:
        super().__init__(terms, fixed, where)
        self.asymmetry = asymmetry
        self.w = nn.Parameter(torch.ones(len(self.terms)))
        self.register_buffer("initial_losses", torch.full((len(self.terms),), float("nan")))

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        values = torch.stack([losses[t] for t in self.terms])
        return (self.w.detach() * values).sum()

    def combine(self, jacobian: Tensor, losses: Tensor) -> GradientUpdate:
        if torch.isnan(self.initial_losses).any():
            self.initial_losses.copy_(losses)
        weights = self.w.detach()
        norms = self.w * jacobian.norm(dim=1)
        ratios = losses / self.initial_losses
        target = (norms.mean() * (ratios / ratios.mean()) ** self.asymmetry).detach()
        balance = (norms - target).abs().sum()
        return GradientUpdate(weights @ jacobian, weights, balance)

    def effective_weights(self) -> dict[str, Tensor | float]:
        return dict(zip(self.terms, self.w.detach().unbind(), strict=True))

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Renormalise: ``sum_i w_i = T`` (the paper's step 11)."""
        self.w.clamp_(min=MIN_WEIGHT)
        self.w.mul_(len(self.terms) / self.w.sum())
