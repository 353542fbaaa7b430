"""The ``binary`` task: target vs non-target gesture, BCE, mixup-aware; weight ``1 - alpha``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core.specs import TaskSpec

if TYPE_CHECKING:
    from torch import Tensor, nn


@attrs.frozen
class BinaryOptions:
    """No options of its own: the weight is ``1 - [loss] alpha``."""


class BinaryTask(cmi_core.Task):
    """One logit per sequence, target ``ybin`` (1 for the 8 target gestures)."""

    def build_head(self, in_dim: int, dropout: float) -> nn.Module:
        return cmi_core.head_mlp(in_dim, 64, 1, dropout)

    def logits(self, head_output: Tensor) -> Tensor:
        return head_output.squeeze(-1)

    def target(self, batch: Mapping[str, Tensor]) -> Tensor:
        return batch["ybin"]

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        import torch.nn.functional as F

        def bce(logits: Tensor, target: Tensor) -> Tensor:
            return F.binary_cross_entropy_with_logits(
                logits, target.to(logits.dtype), reduction="none"
            )

        return cmi_core.mixed_loss(bce, outputs[self.name], self.target(batch), batch)


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="binary",
            summary="Target vs non-target head, BCE (exp024's Lbin)",
            factory=BinaryTask,
            config_cls=BinaryOptions,
        )
    ]
