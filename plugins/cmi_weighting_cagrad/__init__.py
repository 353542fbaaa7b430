"""The ``cagrad`` gradient-level weighting, through torchjd.

CAGrad (Liu et al. 2021, Conflict-Averse Gradient Descent): the update that maximises the
worst task's improvement within a ball of radius ``c |g0|`` around the mean gradient ``g0``.
This module only declares the plugin; torch and torchjd are imported when a strategy is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import GradientOptions, field, non_negative, positive, require_modules
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting


@attrs.frozen
class CagradOptions(GradientOptions):
    """Options of ``strategy = "cagrad"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    c: float = field(
        0.5, non_negative, "radius of the ball around the mean gradient; 0 is the mean"
    )
    norm_eps: float = field(0.0001, positive, "added to the Gramian's norm before normalising")

    def __attrs_post_init__(self) -> None:
        require_modules("cagrad", "torchjd", "cvxpy", "clarabel")


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: CagradOptions
) -> LossWeighting:
    from torchjd.aggregation import CAGrad

    aggregator = CAGrad(c=options.c, norm_eps=options.norm_eps)
    return cmi_core.AggregatorWeighting(terms, fixed, options.where, aggregator)


@cmi_core.hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            name="cagrad",
            summary="CAGrad: best worst-task descent near the mean gradient (Liu et al. 2021)",
            factory=make_weighting,
            config_cls=CagradOptions,
        )
    ]
