"""The ``upgrad`` gradient-level weighting, through torchjd.

UPGrad (Quinton & Rey 2024, Jacobian Descent for Multi-Objective Optimization): each task
gradient is projected onto the dual cone of all of them and the projections are averaged, so the
update never conflicts with any task (its dot product with every task gradient is >= 0).
"""

from __future__ import annotations

from cmi_core import Projected, ProjectorOptions, aggregator_strategy, registering

cmi_register_weightings = registering(
    aggregator_strategy(
        "upgrad",
        "UPGrad: gradients projected on their dual cone, averaged (Quinton & Rey 2024)",
        Projected("torchjd.aggregation:UPGrad"),
        ProjectorOptions,
        requires=("torchjd", "quadprog", "qpsolvers"),
    )
)
