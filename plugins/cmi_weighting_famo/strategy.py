"""The FAMO strategy (torch is imported here, when a model is built)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from cmi_core.weighting import FixedWeights, LossWeighting, weighted_sum

EPS = 1e-8  # added to every loss before its logarithm, as in the official implementation
BETAS = (0.9, 0.999)  # Adam's defaults, as the official implementation uses them


class FAMOWeighting(LossWeighting):
    """``total = c * sum_i z_i ln(L_i + eps)`` over the balanced terms, ``z = softmax(xi)``,
    ``c`` detached; plus ``wkl * Lkl`` when ``kl`` is held at its fixed weight.

    The logits are buffers, not parameters: they follow FAMO's own update rule, never the
    trainer's optimizer. ``after_optimizer_step`` marks the step; the next training forward
    pass applies the logit update with its own losses as the post-step losses, then records
    them as the pre-step losses of the coming step. The update is applied through
    ``torch.where`` on the pending flag, so it never synchronises a GPU. The effective weight
    of term i is ``c * z_i / (L_i + eps)``, the factor of ``grad L_i`` in the total's gradient.
    """

    learns = True  # its logits follow the loss history (their own update, in buffers)

    def __init__(
        self,
        terms: Sequence[str],
        fixed: FixedWeights,
        logit_lr: float,
        decay: float,
        adam: bool,
        kl_fixed: bool,
    ) -> None:
        super().__init__(terms, fixed)
        self.logit_lr, self.decay, self.adam = logit_lr, decay, adam
        self.balanced = tuple(t for t in self.terms if not (kl_fixed and t == "kl"))
        self.held = {t: w for t, w in fixed.for_terms(self.terms).items() if t not in self.balanced}
        n = len(self.balanced)
        self.register_buffer("logits", torch.zeros(n))
        self.register_buffer("previous_log_losses", torch.zeros(n))
        self.register_buffer("pending", torch.zeros((), dtype=torch.bool))
        self.register_buffer("adam_moments", torch.zeros(2, n))
        self.register_buffer("adam_steps", torch.zeros((), dtype=torch.long))
        # derived from the last losses, not state: a plain attribute, outside the state_dict
        self.gradient_weights = torch.full((n,), 1.0 / n)

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        shifted = torch.stack([losses[t] for t in self.balanced]).clamp_min(0.0) + EPS
        log_losses = shifted.log()
        if self.training:
            self._update_logits(log_losses.detach())
        z = torch.softmax(self.logits, dim=0)
        c = 1.0 / (z / shifted.detach()).sum()
        self.gradient_weights = (c * z / shifted).detach()
        total = c * (z * log_losses).sum()
        return total + weighted_sum(losses, self.held) if self.held else total

    def reference_total(self, losses: Mapping[str, float]) -> float:
        """docs/weighting.md: ``c * sum_i z_i ln(L_i + eps)`` with ``z = softmax(xi)`` and
        ``c = 1 / sum_i z_i / (L_i + eps)``, plus the held terms at their fixed weights (at the
        current logits: a pending logit update is not applied)."""
        exps = [math.exp(x) for x in self.logits.tolist()]
        z = [e / sum(exps) for e in exps]
        shifted = [max(losses[t], 0.0) + EPS for t in self.balanced]
        c = 1 / sum(zi / li for zi, li in zip(z, shifted, strict=True))
        total = c * sum(zi * math.log(li) for zi, li in zip(z, shifted, strict=True))
        return total + sum(w * losses[t] for t, w in self.held.items())

    def after_optimizer_step(self) -> None:
        self.pending.fill_(True)

    @torch.no_grad()
    def _update_logits(self, log_losses: Tensor) -> None:
        """One FAMO logit step if an optimizer step happened since the last recorded losses."""
        delta = self.previous_log_losses - log_losses
        z = torch.softmax(self.logits, dim=0)
        gradient = z * (delta - (z * delta).sum()) + self.decay * self.logits  # J^T delta + g*xi
        if self.adam:
            gradient = self._adam_direction(gradient)
        self.logits.copy_(
            torch.where(self.pending, self.logits - self.logit_lr * gradient, self.logits)
        )
        self.previous_log_losses.copy_(log_losses)
        self.pending.fill_(False)

    def _adam_direction(self, gradient: Tensor) -> Tensor:
        """Adam's bias-corrected step direction for ``gradient`` (state advances if pending)."""
        (beta1, beta2), steps = BETAS, self.adam_steps + 1
        first = beta1 * self.adam_moments[0] + (1 - beta1) * gradient
        second = beta2 * self.adam_moments[1] + (1 - beta2) * gradient.square()
        self.adam_moments.copy_(
            torch.where(self.pending, torch.stack([first, second]), self.adam_moments)
        )
        self.adam_steps.copy_(torch.where(self.pending, steps, self.adam_steps))
        # in float64: float32 rounds 1 - 0.999**t by 1e-5 (torch.optim.Adam uses Python floats)
        corrected_first = first / (1 - beta1 ** steps.double())
        corrected_second = second / (1 - beta2 ** steps.double())
        return corrected_first / (corrected_second.sqrt() + EPS)

    def effective_weights(self) -> dict[str, Tensor | float]:
        weights = dict(zip(self.balanced, self.gradient_weights.unbind(), strict=True))
        return {t: weights.get(t, self.held.get(t)) for t in self.terms}

    def raw_values(self) -> dict[str, Tensor | float]:
        logits = zip(self.balanced, self.logits.unbind(), strict=True)
        return {f"logit_{t}": value for t, value in logits}
