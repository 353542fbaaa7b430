"""The ``aligned_mtl`` gradient-level weighting, through torchjd.

Aligned-MTL (Senushkin et al. 2023, Independent Component Alignment for Multi-Task Learning):
the task gradients are made orthogonal with equal norms (the Gramian's eigen-decomposition
stabilises the linear system), scaled by ``scale_mode``, and averaged.
"""

from __future__ import annotations

import attrs

from cmi_core import GradientOptions, aggregator_strategy, field, one_of, registering


@attrs.frozen
class AlignedMtlOptions(GradientOptions):
    """Options of ``strategy = "aligned_mtl"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    scale_mode: str = field(
        "min",
        one_of("min", "median", "rmse"),
        "which singular value sets the aligned gradients' scale",
    )


cmi_register_weightings = registering(
    aggregator_strategy(
        "aligned_mtl",
        "Aligned-MTL: aligned principal components (Senushkin et al. 2023)",
        "torchjd.aggregation:AlignedMTL",
        AlignedMtlOptions,
    )
)
