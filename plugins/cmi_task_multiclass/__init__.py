"""The ``multiclass`` task: the 18-class gesture head, the competition's prediction.

Cross-entropy with ``[loss] label_smoothing``, mixup-aware; its fixed weight is ``alpha``. The
validation score (``val/cmi_score``) is computed from this head by the trainer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core.specs import TaskSpec

if TYPE_CHECKING:
    from torch import Tensor, nn


@attrs.frozen
class MulticlassOptions:
    """No options of its own: the weight is ``[loss] alpha``, smoothing ``label_smoothing``."""


class MulticlassTask(cmi_core.Task):
    """18 gestures (``schema.GESTURES`` order), target ``y18``."""

    def build_head(self, in_dim: int, dropout: float) -> nn.Module:
        return cmi_core.head_mlp(in_dim, 128, len(cmi_core.GESTURES), dropout)

    def target(self, batch: Mapping[str, Tensor]) -> Tensor:
        return batch["y18"]

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        import torch.nn.functional as F

        smoothing = self.context.label_smoothing

        def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
            return F.cross_entropy(logits, target, label_smoothing=smoothing, reduction="none")

        return cmi_core.mixed_loss(cross_entropy, outputs[self.name], self.target(batch), batch)


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="multiclass",
            summary="18-class gesture head, cross-entropy (exp024's L18; the prediction)",
            factory=MulticlassTask,
            config_cls=MulticlassOptions,
            predicts=True,
        )
    ]
