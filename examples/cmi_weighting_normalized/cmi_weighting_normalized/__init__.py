"""Initial-loss normalisation as a cmi-trainer weighting plugin (an example package).

Each term is divided by its loss at the first training step, then weighted by the fixed
weights of ``[loss]``: ``total = sum_i fixed_i * L_i / max(L_i(0), floor)``. Every term then
starts at its fixed weight whatever its scale (a KL term of 0.01 counts as much as a
cross-entropy of 2.5). Nothing is learned: the reference losses are recorded once.

This module only declares the plugin (no torch import, so ``cmi plugins`` stays fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import field, positive
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting


@attrs.frozen
class NormalizedOptions:
    """Options of ``[loss.weighting]`` for ``strategy = "normalized"``."""

    floor: float = field(1e-3, positive, "smallest reference loss; bounds a weight at 1/floor")


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: NormalizedOptions
) -> LossWeighting:
    from cmi_weighting_normalized.strategy import InitialLossNormalization

    return InitialLossNormalization(terms, fixed, options.floor)


@cmi_core.hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            name="normalized",
            summary="Each loss divided by its first training-step value, times the fixed weights",
            factory=make_weighting,
            config_cls=NormalizedOptions,
        )
    ]
