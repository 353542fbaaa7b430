"""The ``pcgrad`` gradient-level weighting, through torchjd.

PCGrad (Yu et al. 2020, Gradient Surgery for Multi-Task Learning): each task gradient that
conflicts with another (negative dot product) is projected onto that one's normal plane, in a
random order, and the results are summed.
"""

from __future__ import annotations

from cmi_core import aggregator_strategy, registering

cmi_register_weightings = registering(
    aggregator_strategy(
        "pcgrad",
        "PCGrad: conflicting gradients projected on normal planes (Yu et al. 2020)",
        "torchjd.aggregation:PCGrad",
    )
)
