"""The ``direct`` weighting: alpha, w9 and wkl themselves are learned.

``alpha = sigmoid(a)``, ``w9 = exp(b)``, ``wkl = exp(c)``, initialised from ``[loss]``'s fixed
weights, raw parameters clamped. Minimising ``alpha*L18 + (1-alpha)*Lbin + w9*L9 + wkl*Lkl``
drives w9 and wkl toward 0 and alpha toward the smaller loss: the strategy warns once, with the
values, when a learned weight falls below ``collapse_threshold`` (see docs/weighting.md).
This module only declares the plugin; torch is imported when a strategy is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import field, non_negative, ordered_pair
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting


@attrs.frozen
class DirectOptions:
    """Options of ``[loss.weighting.direct]``, used when ``strategy = "direct"``."""

    clamp: list[float] = field([-10.0, 10.0], ordered_pair, "range of the raw parameters a, b, c")
    collapse_threshold: float = field(
        0.01, non_negative, "warn once when a learned weight falls below this; 0 disables"
    )


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: DirectOptions
) -> LossWeighting:
    from cmi_weighting_direct.strategy import DirectWeighting

    low, high = options.clamp
    return DirectWeighting(terms, fixed, low, high, options.collapse_threshold)


cmi_register_weightings = cmi_core.registering(
    WeightingSpec(
        name="direct",
        summary="Learned alpha=sigmoid(a), w9=exp(b), wkl=exp(c); warns when weights collapse",
        factory=make_weighting,
        config_cls=DirectOptions,
    )
)
