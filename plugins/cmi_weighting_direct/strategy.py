"""Direct weighting: the fixed formula with learnable alpha, w9 and wkl."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from cmi_core.weighting import FixedWeights, LossWeighting, weighted_sum

_EPS = 1e-8
_EXP025_TERMS = ("multiclass", "binary", "nine_class", "kl")


class WeightCollapseWarning(UserWarning):
    """A learned weight fell below the collapse threshold."""


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


class DirectWeighting(LossWeighting):
    """``alpha*L18 + (1-alpha)*Lbin + w9*L9 + wkl*Lkl`` with learned ``alpha``, ``w9``, ``wkl``.

    Raw parameters exist only for active terms: ``alpha`` (multiclass/binary), ``w9``
    (nine_class), ``wkl`` (kl), and ``w_<task>`` (``weight = exp(w_<task>)``, starting at the
    task's fixed weight) for every other task. They are clamped to ``[low, high]`` in the
    forward pass and projected back after every optimizer step.
    """

    learns = True

    def __init__(
        self,
        terms: Sequence[str],
        fixed: FixedWeights,
        low: float,
        high: float,
        collapse_threshold: float,
    ) -> None:
        super().__init__(terms, fixed)
        self.low, self.high, self.collapse_threshold = low, high, collapse_threshold
        self._warned = False
        start = {
            "alpha": _logit(fixed.alpha),
            "w9": math.log(max(fixed.nine_class_loss_weight, _EPS)),
            "wkl": math.log(max(fixed.kl_weight, _EPS)),
        }
        wanted = {
            "alpha": "multiclass" in self.terms or "binary" in self.terms,
            "w9": "nine_class" in self.terms,
            "wkl": "kl" in self.terms,
        }
        fixed_weights = fixed.for_terms(self.terms)
        for term in self.terms:
            if term not in _EXP025_TERMS:
                start[f"w_{term}"] = math.log(max(fixed_weights[term], _EPS))
                wanted[f"w_{term}"] = True
        self.raw = nn.ParameterDict(
            {
                name: nn.Parameter(torch.tensor(min(max(value, low), high)))
                for name, value in start.items()
                if wanted[name]
            }
        )

    def _weights(self) -> dict[str, Tensor]:
        raw = {name: p.clamp(self.low, self.high) for name, p in self.raw.items()}
        weights: dict[str, Tensor] = {}
        if "alpha" in raw:
            alpha = torch.sigmoid(raw["alpha"])
            weights.update(multiclass=alpha, binary=1.0 - alpha)
        if "w9" in raw:
            weights["nine_class"] = torch.exp(raw["w9"])
        if "wkl" in raw:
            weights["kl"] = torch.exp(raw["wkl"])
        for term in self.terms:
            if term not in _EXP025_TERMS:
                weights[term] = torch.exp(raw[f"w_{term}"])
        return {t: weights[t] for t in self.terms}

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        return weighted_sum(losses, self._weights())

    def effective_weights(self) -> dict[str, Tensor | float]:
        return {t: w.detach() for t, w in self._weights().items()}

    def raw_values(self) -> dict[str, Tensor | float]:
        return {f"{name}_raw": p.detach() for name, p in self.raw.items()}

    def parameter_range(self) -> tuple[float, float]:
        return self.low, self.high

    def reference_total(self, losses: Mapping[str, float]) -> float:
        """docs/weighting.md: ``alpha = sigmoid(a)``, ``w9 = exp(b)``, ``wkl = exp(c)`` (raw
        values clamped), ``total = alpha*L18 + (1 - alpha)*Lbin + w9*L9 + wkl*Lkl``."""
        raw = {name: min(max(p.item(), self.low), self.high) for name, p in self.raw.items()}
        alpha = 1.0 / (1.0 + math.exp(-raw["alpha"]))
        weight = {"multiclass": alpha, "binary": 1.0 - alpha}
        if "w9" in raw:
            weight["nine_class"] = math.exp(raw["w9"])
        if "wkl" in raw:
            weight["kl"] = math.exp(raw["wkl"])
        for term in self.terms:
            if term not in _EXP025_TERMS:
                weight[term] = math.exp(raw[f"w_{term}"])
        return sum(weight[t] * losses[t] for t in self.terms)

    def after_optimizer_step(self) -> None:
        self.clamp_parameters_(self.low, self.high)
        if not self._warned and self.collapse_threshold > 0:
            self._warn_if_collapsed()

    def _warn_if_collapsed(self) -> None:
        with torch.no_grad():
            weights = self._weights()
        if float(torch.stack(list(weights.values())).min()) >= self.collapse_threshold:
            return  # one device sync per step, until the warning has fired
        values = ", ".join(f"{t}={float(w):.4g}" for t, w in weights.items())
        warnings.warn(
            f"direct weighting: a learned weight fell below collapse_threshold="
            f"{self.collapse_threshold:g} ({values}); minimising the weighted sum drives the "
            "weights toward 0, so compare runs on the unweighted score (docs/weighting.md)",
            WeightCollapseWarning,
            stacklevel=3,  # the trainer's call of after_optimizer_step
        )
        self._warned = True
