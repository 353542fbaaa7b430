"""The ``aligned_mtl`` gradient-level weighting, through torchjd.

Aligned-MTL (Senushkin et al. 2023, Independent Component Alignment for Multi-Task Learning):
the task gradients are made orthogonal with equal norms (the Gramian's eigen-decomposition
stabilises the linear system), scaled by ``scale_mode``, and averaged.
This module only declares the plugin; torch and torchjd are imported when a strategy is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import GradientOptions, field, one_of, require_modules
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting


@attrs.frozen
class AlignedMtlOptions(GradientOptions):
    """Options of ``strategy = "aligned_mtl"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    scale_mode: str = field(
        "min",
        one_of("min", "median", "rmse"),
        "which singular value sets the aligned gradients' scale",
    )

    def __attrs_post_init__(self) -> None:
        require_modules("aligned_mtl", "torchjd")


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: AlignedMtlOptions
) -> LossWeighting:
    from torchjd.aggregation import AlignedMTL

    aggregator = AlignedMTL(scale_mode=options.scale_mode)
    return cmi_core.AggregatorWeighting(terms, fixed, options.where, aggregator)


@cmi_core.hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            name="aligned_mtl",
            summary="Aligned-MTL: aligned principal components (Senushkin et al. 2023)",
            factory=make_weighting,
            config_cls=AlignedMtlOptions,
        )
    ]
