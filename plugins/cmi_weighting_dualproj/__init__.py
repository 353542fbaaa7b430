"""The ``dualproj`` gradient-level weighting, through torchjd.

DualProj (Quinton & Rey 2024): the mean task gradient projected onto the dual cone of the task
gradients, the closest vector to it that conflicts with no task.
This module only declares the plugin; torch and torchjd are imported when a strategy is built.
"""

from __future__ import annotations

from typing import Any

from cmi_core import ProjectorOptions, aggregator_strategy, hookimpl, quadprog_projector
from cmi_core.specs import WeightingSpec


def _aggregator(options: ProjectorOptions, n_tasks: int) -> Any:
    from torchjd.aggregation import DualProj

    return DualProj(projector=quadprog_projector(options))


@hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        aggregator_strategy(
            "dualproj",
            "DualProj: mean gradient projected onto the dual cone (Quinton & Rey 2024)",
            _aggregator,
            ProjectorOptions,
            requires=("torchjd", "quadprog", "qpsolvers"),
        )
    ]
