"""The ``aligned_mtl`` gradient-level weighting, through torchjd.

Aligned-MTL (Senushkin et al. 2023, Independent Component Alignment for Multi-Task Learning):
the task gradients are made orthogonal with equal norms (the Gramian's eigen-decomposition
stabilises the linear system), scaled by ``scale_mode``, and averaged.
This module only declares the plugin; torch and torchjd are imported when a strategy is built.
"""

from __future__ import annotations

from typing import Any

import attrs

from cmi_core import GradientOptions, aggregator_strategy, field, hookimpl, one_of
from cmi_core.specs import WeightingSpec


@attrs.frozen
class AlignedMtlOptions(GradientOptions):
    """Options of ``strategy = "aligned_mtl"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    scale_mode: str = field(
        "min",
        one_of("min", "median", "rmse"),
        "which singular value sets the aligned gradients' scale",
    )


def _aggregator(options: AlignedMtlOptions, n_tasks: int) -> Any:
    from torchjd.aggregation import AlignedMTL

    return AlignedMTL(scale_mode=options.scale_mode)


@hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        aggregator_strategy(
            "aligned_mtl",
            "Aligned-MTL: aligned principal components (Senushkin et al. 2023)",
            _aggregator,
            AlignedMtlOptions,
        )
    ]
