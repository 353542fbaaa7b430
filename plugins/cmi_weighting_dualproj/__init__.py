"""The ``dualproj`` gradient-level weighting, through torchjd.

DualProj (Quinton & Rey 2024): the mean task gradient projected onto the dual cone of the task
gradients, the closest vector to it that conflicts with no task.
"""

from __future__ import annotations

from cmi_core import Projected, ProjectorOptions, aggregator_strategy, registering

cmi_register_weightings = registering(
    aggregator_strategy(
        "dualproj",
        "DualProj: mean gradient projected onto the dual cone (Quinton & Rey 2024)",
        Projected("torchjd.aggregation:DualProj"),
        ProjectorOptions,
        requires=("torchjd", "quadprog", "qpsolvers"),
    )
)
