"""The ``dwa`` weighting: dynamic weight average (Liu, Johns & Davison, CVPR 2019).

A term whose loss falls more slowly gets more weight: ``w_i = K * softmax_i(r_i / T)`` with
``r_i = Lbar_i(t-1) / Lbar_i(t-2)``, the ratio of term i's mean loss over the last two
windows (by default training epochs, as in the paper; 1 before two windows are complete).
The result multiplies the fixed weights of ``[loss]``, so with equal rates this is exactly the
``none`` formula. Nothing is learned: the weights come from loss history.
This module only declares the plugin; torch is imported when a strategy is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import at_least, field, positive
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting


@attrs.frozen
class DWAOptions:
    """Options of ``[loss.weighting]`` for ``strategy = "dwa"``."""

    temperature: float = field(2.0, positive, "softmax temperature T; larger is more even")
    window: int = field(
        0, at_least(0), "training steps per averaging window; 0: one training epoch (the paper)"
    )


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: DWAOptions
) -> LossWeighting:
    from cmi_weighting_dwa.strategy import DynamicWeightAverage

    return DynamicWeightAverage(terms, fixed, options.temperature, options.window)


cmi_register_weightings = cmi_core.registering(
    WeightingSpec(
        name="dwa",
        summary="Dynamic weight average (Liu et al. 2019): more weight to slower-falling terms",
        factory=make_weighting,
        config_cls=DWAOptions,
    )
)
