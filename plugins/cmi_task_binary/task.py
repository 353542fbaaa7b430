"""The ``binary`` task itself (imports torch: loaded when the task is built)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

import cmi_core


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
