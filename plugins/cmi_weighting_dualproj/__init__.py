"""The ``dualproj`` gradient-level weighting, through torchjd.

DualProj (Quinton & Rey 2024): the mean task gradient projected onto the dual cone of the task
gradients, the closest vector to it that conflicts with no task.
This module only declares the plugin; torch and torchjd are imported when a strategy is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import ProjectorOptions, require_modules
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting


@attrs.frozen
class DualprojOptions(ProjectorOptions):
    """Options of ``strategy = "dualproj"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    def __attrs_post_init__(self) -> None:
        require_modules("dualproj", "torchjd", "quadprog", "qpsolvers")


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: DualprojOptions
) -> LossWeighting:
    from torchjd.aggregation import DualProj
    from torchjd.linalg import QuadprogProjector

    aggregator = DualProj(
        projector=QuadprogProjector(norm_eps=options.norm_eps, reg_eps=options.reg_eps)
    )
    return cmi_core.AggregatorWeighting(terms, fixed, options.where, aggregator)


@cmi_core.hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            name="dualproj",
            summary="DualProj: mean gradient projected onto the dual cone (Quinton & Rey 2024)",
            factory=make_weighting,
            config_cls=DualprojOptions,
        )
    ]
