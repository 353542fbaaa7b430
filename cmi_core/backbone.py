"""The backbone interface: a sequence encoder that honours the padding mask."""

from __future__ import annotations

from torch import Tensor, nn


class Backbone(nn.Module):
    """Maps ``x [B, T, C]`` and ``mask [B, T]`` (True = real frame) to ``[B, out_dim]``.

    Padded frames must not change the output: the contract kit checks that an embedding does
    not move when padding is added in front of a sequence.

    A backbone whose structure has a per-frame representation (before its pooling) sets
    ``frame_dim`` and implements :meth:`encode`; per-frame tasks (``TaskSpec.level ==
    "frame"``) need one, and ``cmi check`` refuses a frame task with a backbone that has none.
    """

    out_dim: int
    frame_dim: int | None = None
    """Width of the per-frame output; None: the backbone gives none."""

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        raise NotImplementedError

    def encode(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(pooled [B, out_dim], frames [B, T, frame_dim])`` from one pass: ``pooled`` is
        what :meth:`forward` returns, ``frames`` the representation of every input frame on the
        input's time axis (padded frames hold values a per-frame loss must mask out)."""
        raise NotImplementedError(f"{type(self).__name__} gives no per-frame output")


class PooledFrames(Backbone):
    """A backbone that computes every frame's representation, then pools it: implement
    :meth:`frames` and set ``pool``; :meth:`forward` and :meth:`encode` follow from them, so the
    pooled output is the same tensor with or without per-frame tasks."""

    pool: nn.Module

    def frames(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(frames [B, T, frame_dim], mask [B, T])``: the per-frame output and the mask of
        the frames the pooling may read."""
        raise NotImplementedError

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        frames, mask = self.frames(x, mask)
        return self.pool(frames, mask)

    def encode(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        frames, mask = self.frames(x, mask)
        return self.pool(frames, mask), frames
