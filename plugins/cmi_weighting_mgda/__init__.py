"""The ``mgda`` gradient-level weighting, through torchjd.

MGDA (Sener & Koltun 2018, Multi-Task Learning as Multi-Objective Optimization): the minimum-norm
point of the convex hull of the task gradients, found by Frank-Wolfe; for two tasks it is
``w g1 + (1-w) g2`` with ``w = clip((g2-g1).g2 / |g1-g2|^2, 0, 1)``.
"""

from __future__ import annotations

import attrs

from cmi_core import GradientOptions, aggregator_strategy, at_least, field, positive, registering


@attrs.frozen
class MgdaOptions(GradientOptions):
    """Options of ``strategy = "mgda"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    epsilon: float = field(
        0.001, positive, "Frank-Wolfe stops when a step changes the weights less"
    )
    max_iters: int = field(100, at_least(1), "Frank-Wolfe iterations at most")


cmi_register_weightings = registering(
    aggregator_strategy(
        "mgda",
        "MGDA: min-norm convex combination of task gradients (Sener & Koltun 2018)",
        "torchjd.aggregation:MGDA",
        MgdaOptions,
    )
)
