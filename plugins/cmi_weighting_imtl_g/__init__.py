"""The ``imtl_g`` gradient-level weighting, through torchjd.

IMTL-G (Liu et al. 2021, Towards Impartial Multi-task Learning): weights that make the update's
projection onto every task's unit gradient equal, then rescaled to sum to one.
This module only declares the plugin; torch and torchjd are imported when a strategy is built.
"""

from __future__ import annotations

from cmi_core import aggregator_strategy, hookimpl
from cmi_core.specs import WeightingSpec


@hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        aggregator_strategy(
            "imtl_g",
            "IMTL-G: equal projections on every unit task gradient (Liu et al. 2021)",
            "torchjd.aggregation:IMTLG",
        )
    ]
