"""The ``none`` weighting: exp024's fixed formula, no learnable parameters.

``total = alpha*L18 + (1-alpha)*Lbin + w9*L9 + wkl*Lkl`` over the active terms, bit-identical to
writing the formula out by hand. This module only declares the plugin; torch is imported when a
strategy is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting


@attrs.frozen
class NoneOptions:
    """``none`` has no options of its own; it uses ``alpha``, ``w9`` and ``wkl`` of ``[loss]``."""


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: NoneOptions
) -> LossWeighting:
    from cmi_weighting_none.strategy import FixedWeighting

    return FixedWeighting(terms, fixed)


cmi_register_weightings = cmi_core.registering(
    WeightingSpec(
        name="none",
        summary="Fixed weights: alpha*L18 + (1-alpha)*Lbin + w9*L9 + wkl*Lkl (exp024)",
        factory=make_weighting,
        config_cls=NoneOptions,
    )
)
