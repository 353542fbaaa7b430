"""The ``kl`` task itself (imports torch: loaded when the task is built)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

import cmi_core


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
