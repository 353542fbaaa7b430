"""The ``nash_mtl`` gradient-level weighting, through torchjd.

Nash-MTL (Navon et al. 2022, Multi-Task Learning as a Bargaining Game): weights ``alpha`` with
``alpha_i (G alpha)_i = 1`` (the Nash bargaining solution), solved with cvxpy. Its solver state
(last weights, step counter) is not checkpointed: a resumed run starts it afresh.
"""

from __future__ import annotations

from typing import Any

import attrs

from cmi_core import (
    GradientOptions,
    aggregator_strategy,
    at_least,
    field,
    non_negative,
    registering,
)


@attrs.frozen
class NashMtlOptions(GradientOptions):
    """Options of ``strategy = "nash_mtl"`` (needs ``pip install 'cmi-trainer[mtl]'``)."""

    max_norm: float = field(1.0, non_negative, "the update's norm is clipped to this; 0 disables")
    update_weights_every: int = field(
        1, at_least(1), "steps between two solutions of the bargaining problem"
    )
    optim_niter: int = field(20, at_least(1), "solver iterations per solution")


def _aggregator(options: NashMtlOptions, n_tasks: int) -> Any:
    from torchjd.aggregation import NashMTL

    return NashMTL(
        n_tasks=n_tasks,
        max_norm=options.max_norm,
        update_weights_every=options.update_weights_every,
        optim_niter=options.optim_niter,
    )


cmi_register_weightings = registering(
    aggregator_strategy(
        "nash_mtl",
        "Nash-MTL: Nash bargaining over the task gradients (Navon et al. 2022)",
        _aggregator,
        NashMtlOptions,
        requires=("torchjd", "cvxpy", "ecos"),
    )
)
