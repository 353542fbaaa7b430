"""Dynamic weight averaging (Liu, Johns & Davison 2019) as a cmi-trainer weighting plugin.

A term whose loss falls more slowly gets more weight: ``w_i = K * softmax_i(r_i / T)``, where
``r_i`` is term i's mean loss over the last window of steps divided by its mean over the window
before. The result multiplies the fixed weights of ``[loss]``, so with equal rates this is
exactly the ``none`` formula. Nothing is learned by gradient: the weights come from loss
history kept in buffers, so the strategy declares ``learns = True``.

This module only declares the plugin (no torch import, so ``cmi plugins`` stays fast).
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
    """Options of ``[loss.weighting.dwa]``, used when ``strategy = "dwa"``."""

    temperature: float = field(2.0, positive, "softmax temperature T; larger is more even")
    window: int = field(20, at_least(1), "training steps per averaging window")


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: DWAOptions
) -> LossWeighting:
    from cmi_weighting_dwa.strategy import DynamicWeightAveraging

    return DynamicWeightAveraging(terms, fixed, options.temperature, options.window)


@cmi_core.hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            name="dwa",
            summary="Dynamic weight averaging: more weight to the terms whose loss falls slowest",
            factory=make_weighting,
            config_cls=DWAOptions,
        )
    ]
