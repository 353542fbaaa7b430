"""The ``imtl_g`` gradient-level weighting, through torchjd.

IMTL-G (Liu et al. 2021, Towards Impartial Multi-task Learning): weights that make the update's
projection onto every task's unit gradient equal, then rescaled to sum to one.
"""

from __future__ import annotations

from cmi_core import aggregator_strategy, registering

cmi_register_weightings = registering(
    aggregator_strategy(
        "imtl_g",
        "IMTL-G: equal projections on every unit task gradient (Liu et al. 2021)",
        "torchjd.aggregation:IMTLG",
    )
)
