"""The backbone interface: a sequence encoder that honours the padding mask."""

from __future__ import annotations

from torch import Tensor, nn


class Backbone(nn.Module):
    """Maps ``x [B, T, C]`` and ``mask [B, T]`` (True = real frame) to ``[B, out_dim]``.

    Padded frames must not change the output: the contract kit checks that an embedding does
    not move when padding is added in front of a sequence.
    """

    out_dim: int

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        raise NotImplementedError
