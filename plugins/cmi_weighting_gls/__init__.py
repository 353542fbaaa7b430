"""The ``gls`` weighting: geometric loss strategy (Chennupati et al., CVPR Workshops 2019).

``total = (prod_i L_i)^(1/n)`` over the n balanced terms, computed as
``exp(mean_i ln(L_i + eps))``. Its gradient ``d total / d L_i = total / (n L_i)`` weighs each
term by the inverse of its own loss, so a term's scale does not decide how much it trains.
By default the ``kl`` term stays out of the product and is added as ``wkl * Lkl``: a
consistency term whose loss falls toward 0 would otherwise take almost all of the gradient.
Nothing is learned.
This module only declares the plugin; torch is imported when a strategy is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import field, in_range
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting


@attrs.frozen
class GLSOptions:
    """Options of ``[loss.weighting]`` for ``strategy = "gls"``."""

    eps: float = field(
        1e-8, in_range(1e-12, 1e-2), "added to every loss before the logarithm (a zero loss)"
    )
    kl_fixed: bool = field(True, None, "add kl as wkl * Lkl outside the geometric mean")


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: GLSOptions
) -> LossWeighting:
    from cmi_weighting_gls.strategy import GeometricLoss

    return GeometricLoss(terms, fixed, options.eps, options.kl_fixed)


cmi_register_weightings = cmi_core.registering(
    WeightingSpec(
        name="gls",
        summary="Geometric loss strategy (Chennupati et al. 2019): (prod_i L_i)^(1/n)",
        factory=make_weighting,
        config_cls=GLSOptions,
    )
)
