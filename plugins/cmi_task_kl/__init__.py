"""The ``kl`` task: consistency between the 18-class and 9-class heads, no head of its own.

``KL(p9 <- 18 || q9)`` with ``[loss] kl_temperature``: the 18-class probabilities summed into
the 9 classes by name (``GESTURE_TO_NINE``; the original exp024/exp025 code summed "the first
8 indices", which in sorted order are not the 8 targets). Not mixup-aware by design: it
compares two heads on the same (mixed) input. Weight ``[loss] kl_weight``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core.specs import TaskSpec

if TYPE_CHECKING:
    from torch import Tensor


@attrs.frozen
class KLOptions:
    """No options of its own: weight ``[loss] kl_weight``, temperature ``kl_temperature``."""


class KLTask(cmi_core.Task):
    """Reads the ``multiclass`` and ``nine_class`` logits (its ``depends_on``)."""

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        z18 = outputs["multiclass"]
        mapping = tuple(int(i) for i in cmi_core.GESTURE_TO_NINE)
        aggregation = cmi_core.aggregation_matrix(
            mapping, len(cmi_core.NINE_CLASSES), z18.device, z18.dtype
        )
        return cmi_core.kl_consistency(
            z18, outputs["nine_class"], self.context.kl_temperature, aggregation
        )


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="kl",
            summary="KL between the 18-class head summed to 9 classes and the 9-class head",
            factory=KLTask,
            config_cls=KLOptions,
            depends_on=("multiclass", "nine_class"),
        )
    ]
