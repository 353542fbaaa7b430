"""The ``uncertainty`` weighting (Kendall, Gal & Cipolla 2018), the heart of exp025.

One learnable ``s_i = log(sigma_i^2)`` per active term:
``kendall``: ``total = sum_i exp(-s_i) * L_i + s_i`` (can be negative: its optimum is
``s_i = ln L_i``); ``liebel`` (Liebel & Koerner 2018):
``total = sum_i L_i / (2 sigma_i^2) + ln(1 + sigma_i^2)``, which stays non-negative.
This module only declares the plugin; torch is imported when a strategy is built.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import field, one_of, ordered_pair
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting

VARIANTS = ("kendall", "liebel")


@attrs.frozen
class UncertaintyOptions:
    """Options of ``[loss.weighting.uncertainty]``, used when ``strategy = "uncertainty"``."""

    clamp: list[float] = field([-10.0, 10.0], ordered_pair, "range of every s_i")
    init_value: float = field(0.0, None, "initial s_i (clamped into clamp)")
    variant: str = field("kendall", one_of(*VARIANTS), "kendall or liebel")
    init_from_fixed: bool = field(
        False, None, "start each weight at its fixed [loss] weight (s_i = -ln w_i), not init_value"
    )


def initial_values(
    terms: tuple[str, ...], fixed: FixedWeights, options: UncertaintyOptions
) -> dict[str, float]:
    """Each term's starting ``s_i``: ``init_value``, or where its effective weight equals the
    fixed weight (kendall ``exp(-s) = w``, liebel ``exp(-s) / 2 = w``), so that a run starts
    exactly as exp024 and only *learning* can move it away. A fixed weight of 0 starts at the
    top of ``clamp`` (the smallest weight allowed)."""
    if not options.init_from_fixed:
        return dict.fromkeys(terms, options.init_value)
    scale = 1.0 if options.variant == "kendall" else 0.5
    return {
        term: math.log(scale / weight) if weight > 0 else options.clamp[1]
        for term, weight in fixed.for_terms(terms).items()
    }


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: UncertaintyOptions
) -> LossWeighting:
    from cmi_weighting_uncertainty.strategy import UncertaintyWeighting

    low, high = options.clamp
    starts = initial_values(terms, fixed, options)
    return UncertaintyWeighting(terms, fixed, low, high, starts, options.variant)


cmi_register_weightings = cmi_core.registering(
    WeightingSpec(
        name="uncertainty",
        summary="Learned homoscedastic-uncertainty weights: sum exp(-s_i)*L_i + s_i (exp025)",
        factory=make_weighting,
        config_cls=UncertaintyOptions,
    )
)
