"""The ``cagrad`` gradient-level weighting, through torchjd.

CAGrad (Liu et al. 2021, Conflict-Averse Gradient Descent): the update that maximises the
worst task's improvement within a ball of radius ``c |g0|`` around the mean gradient ``g0``.
"""

from __future__ import annotations

import attrs

from cmi_core import (
    GradientOptions,
    aggregator_strategy,
    field,
    non_negative,
    positive,
    registering,
)


@attrs.frozen
class CagradOptions(GradientOptions):
    """Options of ``strategy = "cagrad"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    c: float = field(
        0.5, non_negative, "radius of the ball around the mean gradient; 0 is the mean"
    )
    norm_eps: float = field(0.0001, positive, "added to the Gramian's norm before normalising")


cmi_register_weightings = registering(
    aggregator_strategy(
        "cagrad",
        "CAGrad: best worst-task descent near the mean gradient (Liu et al. 2021)",
        "torchjd.aggregation:CAGrad",
        CagradOptions,
        requires=("torchjd", "cvxpy", "clarabel"),
    )
)
