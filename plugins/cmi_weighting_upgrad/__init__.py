"""The ``upgrad`` gradient-level weighting, through torchjd.

UPGrad (Quinton & Rey 2024, Jacobian Descent for Multi-Objective Optimization): each task
gradient is projected onto the dual cone of all of them and the projections are averaged, so the
update never conflicts with any task (its dot product with every task gradient is >= 0).
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
class UpgradOptions(ProjectorOptions):
    """Options of ``strategy = "upgrad"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    def __attrs_post_init__(self) -> None:
        require_modules("upgrad", "torchjd", "quadprog", "qpsolvers")


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: UpgradOptions
) -> LossWeighting:
    from torchjd.aggregation import UPGrad
    from torchjd.linalg import QuadprogProjector

    aggregator = UPGrad(
        projector=QuadprogProjector(norm_eps=options.norm_eps, reg_eps=options.reg_eps)
    )
    return cmi_core.AggregatorWeighting(terms, fixed, options.where, aggregator)


@cmi_core.hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            name="upgrad",
            summary="UPGrad: gradients projected on their dual cone, averaged (Quinton & Rey 2024)",
            factory=make_weighting,
            config_cls=UpgradOptions,
        )
    ]
