"""The ``pcgrad`` gradient-level weighting, through torchjd.

PCGrad (Yu et al. 2020, Gradient Surgery for Multi-Task Learning): each task gradient that
conflicts with another (negative dot product) is projected onto that one's normal plane, in a
random order, and the results are summed.
This module only declares the plugin; torch and torchjd are imported when a strategy is built.
"""

from __future__ import annotations

from cmi_core import aggregator_strategy, hookimpl
from cmi_core.specs import WeightingSpec


@hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        aggregator_strategy(
            "pcgrad",
            "PCGrad: conflicting gradients projected on normal planes (Yu et al. 2020)",
            "torchjd.aggregation:PCGrad",
        )
    ]
