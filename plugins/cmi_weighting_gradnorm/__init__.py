"""The ``gradnorm`` gradient-level weighting (Chen et al. 2018, GradNorm: Gradient Normalization
for Adaptive Loss Balancing in Deep Multitask Networks).

Learnable task weights ``w_i`` train on the balance loss ``sum_i |G_i - G_mean * r_i^a|``
(``a``: the ``asymmetry`` option, the paper's alpha),
where ``G_i = w_i |grad L_i|`` on the shared part and ``r_i`` is task ``i``'s relative inverse
training rate; the weights are renormalised to sum to the number of tasks after every step.
This module only declares the plugin; torch is imported when a strategy is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import GradientOptions, field, non_negative
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting


@attrs.frozen
class GradNormOptions(GradientOptions):
    """Options of ``strategy = "gradnorm"``; the weights train at ``lr_scale`` x the base lr."""

    asymmetry: float = field(
        1.5, non_negative, "the paper's alpha: pull on slow tasks; 0: equal norms"
    )


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: GradNormOptions
) -> LossWeighting:
    from cmi_weighting_gradnorm.strategy import GradNormWeighting

    return GradNormWeighting(terms, fixed, options.where, options.asymmetry)


cmi_register_weightings = cmi_core.registering(
    WeightingSpec(
        name="gradnorm",
        summary="GradNorm: weights learned to balance task gradient norms (Chen et al. 2018)",
        factory=make_weighting,
        config_cls=GradNormOptions,
    )
)
