"""The ``imtl_g`` gradient-level weighting, through torchjd.

IMTL-G (Liu et al. 2021, Towards Impartial Multi-task Learning): weights that make the update's
projection onto every task's unit gradient equal, then rescaled to sum to one.
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
class ImtlGOptions(GradientOptions):
    """Options of ``strategy = "imtl_g"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    def __attrs_post_init__(self) -> None:
        require_modules("imtl_g", "torchjd")


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: ImtlGOptions
) -> LossWeighting:
    from torchjd.aggregation import IMTLG

    aggregator = IMTLG()
    return cmi_core.AggregatorWeighting(terms, fixed, options.where, aggregator)


@cmi_core.hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            name="imtl_g",
            summary="IMTL-G: equal projections on every unit task gradient (Liu et al. 2021)",
            factory=make_weighting,
            config_cls=ImtlGOptions,
        )
    ]
