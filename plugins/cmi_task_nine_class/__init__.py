"""The ``nine_class`` task: the 8 target gestures + non-target, cross-entropy with
``[loss] label_smoothing``, mixup-aware; weight ``[loss] nine_class_loss_weight``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core.specs import TaskSpec

if TYPE_CHECKING:
    from torch import Tensor, nn


@attrs.frozen
class NineClassOptions:
    """No options of its own: the weight is ``[loss] nine_class_loss_weight``."""


class NineClassTask(cmi_core.Task):
    """9 classes (``schema.NINE_CLASSES`` order), target ``y9``."""

    def build_head(self, in_dim: int, dropout: float) -> nn.Module:
        return cmi_core.head_mlp(in_dim, 128, len(cmi_core.NINE_CLASSES), dropout)

    def target(self, batch: Mapping[str, Tensor]) -> Tensor:
        return batch["y9"]

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
            name="nine_class",
            summary="9-class head (8 targets + non-target), cross-entropy (exp024's L9)",
            factory=NineClassTask,
            config_cls=NineClassOptions,
        )
    ]
