"""The ``graddrop`` gradient-level weighting, through torchjd.

GradDrop (Chen et al. 2020, Just Pick a Sign): per coordinate, keep only the positive or only
the negative task-gradient components, chosen at random by their sign purity. It has no
weights to log; under DDP each rank draws its own masks (the ranks' updates are averaged).
"""

from __future__ import annotations

from typing import Any

import attrs

from cmi_core import GradientOptions, aggregator_strategy, field, in_range, registering


@attrs.frozen
class GraddropOptions(GradientOptions):
    """Options of ``strategy = "graddrop"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    leak: float = field(0.0, in_range(0, 1), "share of every task gradient that always passes")


def _aggregator(options: GraddropOptions, n_tasks: int) -> Any:
    import torch
    from torchjd.aggregation import GradDrop

    return GradDrop(leak=torch.full((n_tasks,), options.leak))


cmi_register_weightings = registering(
    aggregator_strategy(
        "graddrop",
        "GradDrop: random sign dropout per coordinate (Chen et al. 2020)",
        _aggregator,
        GraddropOptions,
    )
)
