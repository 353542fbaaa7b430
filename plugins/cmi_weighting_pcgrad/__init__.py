"""The ``pcgrad`` gradient-level weighting, through torchjd.

PCGrad (Yu et al. 2020, Gradient Surgery for Multi-Task Learning): each task gradient that
conflicts with another (negative dot product) is projected onto that one's normal plane, in a
random order, and the results are summed.
This module only declares the plugin; torch and torchjd are imported when a strategy is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import GradientOptions, require_modules
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting


@attrs.frozen
class PcgradOptions(GradientOptions):
    """Options of ``strategy = "pcgrad"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    def __attrs_post_init__(self) -> None:
        require_modules("pcgrad", "torchjd")


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: PcgradOptions
) -> LossWeighting:
    from torchjd.aggregation import PCGrad

    aggregator = PCGrad()
    return cmi_core.AggregatorWeighting(terms, fixed, options.where, aggregator)


@cmi_core.hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            name="pcgrad",
            summary="PCGrad: conflicting gradients projected on normal planes (Yu et al. 2020)",
            factory=make_weighting,
            config_cls=PcgradOptions,
        )
    ]
