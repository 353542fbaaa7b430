"""The ``rlw`` weighting: random loss weighting (Lin et al., TMLR 2022).

Every optimizer step trains on ``total = sum_i w_i L_i`` with fresh random weights on the
probability simplex: ``w = softmax(z)``, ``z ~ N(0, std^2 I)`` (``distribution = "normal"``,
the paper's default) or ``w ~ Dirichlet(concentration)``. The weights come from torch's
random number generator, so a seeded run draws the same sequence. Validation uses the mean
weight ``1/n``. The fixed weights of ``[loss]`` are not used. Nothing is learned.
This module only declares the plugin; torch is imported when a strategy is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import field, in_range, one_of
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting

DISTRIBUTIONS = ("normal", "dirichlet")


@attrs.frozen
class RLWOptions:
    """Options of ``[loss.weighting]`` for ``strategy = "rlw"``."""

    distribution: str = field("normal", one_of(*DISTRIBUTIONS), "normal (softmax) or dirichlet")
    std: float = field(1.0, in_range(1e-3, 100.0), "standard deviation of the normal sample")
    concentration: float = field(
        1.0, in_range(1e-3, 1e3), "Dirichlet concentration; 1 is uniform on the simplex"
    )


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: RLWOptions
) -> LossWeighting:
    from cmi_weighting_rlw.strategy import RandomLossWeighting

    return RandomLossWeighting(
        terms, fixed, options.distribution, options.std, options.concentration
    )


cmi_register_weightings = cmi_core.registering(
    WeightingSpec(
        name="rlw",
        summary="Random loss weighting (Lin et al. 2022): simplex weights drawn every step",
        factory=make_weighting,
        config_cls=RLWOptions,
    )
)
