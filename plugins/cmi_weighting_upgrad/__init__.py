"""The ``upgrad`` gradient-level weighting, through torchjd.

UPGrad (Quinton & Rey 2024, Jacobian Descent for Multi-Objective Optimization): each task
gradient is projected onto the dual cone of all of them and the projections are averaged, so the
update never conflicts with any task (its dot product with every task gradient is >= 0).
This module only declares the plugin; torch and torchjd are imported when a strategy is built.
"""

from __future__ import annotations

from typing import Any

from cmi_core import ProjectorOptions, aggregator_strategy, hookimpl, quadprog_projector
from cmi_core.specs import WeightingSpec


def _aggregator(options: ProjectorOptions, n_tasks: int) -> Any:
    from torchjd.aggregation import UPGrad

    return UPGrad(projector=quadprog_projector(options))


@hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        aggregator_strategy(
            "upgrad",
            "UPGrad: gradients projected on their dual cone, averaged (Quinton & Rey 2024)",
            _aggregator,
            ProjectorOptions,
            requires=("torchjd", "quadprog", "qpsolvers"),
        )
    ]
