"""The dynamic-weight-average strategy (torch is imported here, when a model is built)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from cmi_core.weighting import FixedWeights, LossWeighting


class DynamicWeightAverage(LossWeighting):
    """``total = sum_i fixed_i * w_i * L_i`` with ``w = K * softmax(r / T)``.

    ``r_i`` is term i's mean training loss over the last closed window divided by its mean over
    the window before. A window is ``window`` training steps, or with ``window = 0`` one
    training epoch (closed when the next one starts). Until two windows are closed every
    ``w_i`` is 1. The history lives in buffers, so checkpoints hold it and DDP broadcasts
    rank 0's copy at every forward pass.
    """

    learns = True  # no parameters, but the weights follow the loss history in the buffers

    def __init__(
        self, terms: Sequence[str], fixed: FixedWeights, temperature: float, window: int
    ) -> None:
        super().__init__(terms, fixed)
        self.temperature, self.window = temperature, window
        n = len(self.terms)
        fixed_weights = [fixed.for_terms(self.terms)[t] for t in self.terms]
        self.register_buffer("fixed_weights", torch.tensor(fixed_weights), persistent=False)
        self.register_buffer("window_sum", torch.zeros(n))
        self.register_buffer("window_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("means", torch.ones(2, n))  # [window before, last window]
        self.register_buffer("windows", torch.zeros((), dtype=torch.long))

    def dynamic_weights(self) -> Tensor:
        """``K * softmax(r / T)`` once two windows are closed, else all ones."""
        rates = self.means[1] / self.means[0].clamp_min(1e-12)
        weights = len(self.terms) * torch.softmax(rates / self.temperature, dim=0)
        return torch.where(self.windows >= 2, weights, torch.ones_like(weights))

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        values = torch.stack([losses[t] for t in self.terms])
        total = (self.fixed_weights * self.dynamic_weights() * values).sum()
        if self.training:  # validation must not change the history
            self._record(values.detach())
        return total

    def before_train_epoch(self) -> None:
        if self.window == 0:
            self._close_window(self.window_steps > 0)

    @torch.no_grad()
    def _record(self, values: Tensor) -> None:
        self.window_sum += values
        self.window_steps += 1
        if self.window:
            self._close_window(self.window_steps == self.window)

    @torch.no_grad()
    def _close_window(self, close: Tensor) -> None:
        """Shift the window means when ``close`` (a 0-d bool tensor: no device sync)."""
        mean = self.window_sum / self.window_steps.clamp_min(1)
        self.means.copy_(torch.where(close, torch.stack([self.means[1], mean]), self.means))
        self.windows += close
        self.window_sum.mul_(~close)
        self.window_steps.mul_(~close)

    def reference_total(self, losses: Mapping[str, float]) -> float:
        """docs/weighting.md: ``sum_i fixed_i * K softmax_i(r / T) * L_i`` (w = 1 before two
        windows are closed), ``r_i`` the ratio of the last two closed windows' means."""
        fixed = self.fixed.for_terms(self.terms)
        if int(self.windows) < 2:
            return sum(fixed[t] * losses[t] for t in self.terms)
        before, last = self.means.tolist()
        rates = [b / max(a, 1e-12) for a, b in zip(before, last, strict=True)]
        exps = [math.exp((r - max(rates)) / self.temperature) for r in rates]  # no overflow
        weights = [len(self.terms) * e / sum(exps) for e in exps]
        return sum(fixed[t] * w * losses[t] for t, w in zip(self.terms, weights, strict=True))

    def effective_weights(self) -> dict[str, Tensor | float]:
        weights = (self.fixed_weights * self.dynamic_weights()).detach()
        return dict(zip(self.terms, weights.unbind(), strict=True))
