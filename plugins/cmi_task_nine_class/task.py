"""The ``nine_class`` task itself (imports torch: loaded when the task is built)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

import cmi_core


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
