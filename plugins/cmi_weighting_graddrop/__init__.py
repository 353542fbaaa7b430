"""The ``graddrop`` gradient-level weighting, through torchjd.

GradDrop (Chen et al. 2020, Just Pick a Sign): per coordinate, keep only the positive or only
the negative task-gradient components, chosen at random by their sign purity. It has no
weights to log; under DDP each rank draws its own masks (the ranks' updates are averaged).
This module only declares the plugin; torch and torchjd are imported when a strategy is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import GradientOptions, field, in_range, require_modules
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting


@attrs.frozen
class GraddropOptions(GradientOptions):
    """Options of ``strategy = "graddrop"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    leak: float = field(0.0, in_range(0, 1), "share of every task gradient that always passes")

    def __attrs_post_init__(self) -> None:
        require_modules("graddrop", "torchjd")


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: GraddropOptions
) -> LossWeighting:
    import torch
    from torchjd.aggregation import GradDrop

    aggregator = GradDrop(leak=torch.full((len(terms),), options.leak))
    return cmi_core.AggregatorWeighting(terms, fixed, options.where, aggregator)


@cmi_core.hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            name="graddrop",
            summary="GradDrop: random sign dropout per coordinate (Chen et al. 2020)",
            factory=make_weighting,
            config_cls=GraddropOptions,
        )
    ]
