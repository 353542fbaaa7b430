"""The ``mgda`` gradient-level weighting, through torchjd.

MGDA (Sener & Koltun 2018, Multi-Task Learning as Multi-Objective Optimization): the minimum-norm
point of the convex hull of the task gradients, found by Frank-Wolfe; for two tasks it is
``w g1 + (1-w) g2`` with ``w = clip((g2-g1).g2 / |g1-g2|^2, 0, 1)``.
This module only declares the plugin; torch and torchjd are imported when a strategy is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import GradientOptions, at_least, field, positive, require_modules
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting


@attrs.frozen
class MgdaOptions(GradientOptions):
    """Options of ``strategy = "mgda"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    epsilon: float = field(
        0.001, positive, "Frank-Wolfe stops when a step changes the weights less"
    )
    max_iters: int = field(100, at_least(1), "Frank-Wolfe iterations at most")

    def __attrs_post_init__(self) -> None:
        require_modules("mgda", "torchjd")


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: MgdaOptions
) -> LossWeighting:
    from torchjd.aggregation import MGDA

    aggregator = MGDA(epsilon=options.epsilon, max_iters=options.max_iters)
    return cmi_core.AggregatorWeighting(terms, fixed, options.where, aggregator)


@cmi_core.hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            name="mgda",
            summary="MGDA: min-norm convex combination of task gradients (Sener & Koltun 2018)",
            factory=make_weighting,
            config_cls=MgdaOptions,
        )
    ]
