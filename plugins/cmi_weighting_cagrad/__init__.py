"""The ``cagrad`` gradient-level weighting, through torchjd.

CAGrad (Liu et al. 2021, Conflict-Averse Gradient Descent): the update that maximises the
worst task's improvement within a ball of radius ``c |g0|`` around the mean gradient ``g0``.
This module only declares the plugin; torch and torchjd are imported when a strategy is built.
"""

from __future__ import annotations

from typing import Any

import attrs

from cmi_core import GradientOptions, aggregator_strategy, field, hookimpl, non_negative, positive
from cmi_core.specs import WeightingSpec


@attrs.frozen
class CagradOptions(GradientOptions):
    """Options of ``strategy = "cagrad"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    c: float = field(
        0.5, non_negative, "radius of the ball around the mean gradient; 0 is the mean"
    )
    norm_eps: float = field(0.0001, positive, "added to the Gramian's norm before normalising")


def _aggregator(options: CagradOptions, n_tasks: int) -> Any:
    from torchjd.aggregation import CAGrad

    return CAGrad(c=options.c, norm_eps=options.norm_eps)


@hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        aggregator_strategy(
            "cagrad",
            "CAGrad: best worst-task descent near the mean gradient (Liu et al. 2021)",
            _aggregator,
            CagradOptions,
            requires=("torchjd", "cvxpy", "clarabel"),
        )
    ]
