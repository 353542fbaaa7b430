"""Mask-aware building blocks for backbone plugins (public API).

Every backbone must keep padded frames (``mask == False``) out of a real frame's output; the
contract kit checks it. These layers do the parts that are easy to get subtly wrong: batch
statistics over real frames only, pooling over real frames only, and cheap dropout. Each
docstring ends with its tensor layout (``B`` batch, ``T`` frames, ``C`` channels): everything
takes ``[B, T, C]`` but ``MaskedBatchNorm1d``, which takes ``[B, C, T]`` as ``Conv1d`` does.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def real_frames(mask: Tensor) -> Tensor:
    """``mask`` as bool, with a sequence that has no real frame counted as all real.

    An empty sequence would otherwise give a softmax or a mean over nothing (NaN).

    Layout: ``mask [B, T]`` -> ``[B, T]`` (bool).
    """
    mask = mask.bool()
    return mask | ~mask.any(dim=1, keepdim=True)


class ChannelDropout(nn.Module):
    """Zero whole channels of ``[B, T, C]`` per sequence (the same mask over all frames).

    One random number per sequence and channel, like Keras' SpatialDropout1D: element-wise
    masks cost ~18 % of a CPU training step (docs/benchmarks.md, "Training step").

    Layout: ``h [B, T, C]`` -> ``[B, T, C]``.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, h: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return h
        keep = torch.empty(h.shape[0], 1, h.shape[2], device=h.device, dtype=h.dtype)
        return h * keep.bernoulli_(1.0 - self.p).div_(1.0 - self.p)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over ``[B, C, T]`` whose training statistics use real frames only.

    Plain BatchNorm would count padded frames, so its statistics would depend on how much
    padding a batch has. Evaluation uses the running statistics, frame by frame.

    Layout: ``x [B, C, T]`` (as ``Conv1d``), ``mask [B, T]`` -> ``[B, C, T]``.
    """

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        if not self.training:
            return super().forward(x)
        # statistics in float32 whatever the autocast dtype (bf16 sums lose digits, and the
        # running buffers are float32)
        x32, weight = x.float(), mask.unsqueeze(1).float()  # weight: [B, 1, T]
        count = weight.sum().clamp(min=1.0)
        mean = (x32 * weight).sum(dim=(0, 2)) / count
        centred = x32 - mean[:, None]
        var = (centred.square() * weight).sum(dim=(0, 2)) / count
        self._update_running_stats(mean, var, count)
        scale = self.weight * torch.rsqrt(var + self.eps)
        return (centred * scale[:, None] + self.bias[:, None]).to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, count: Tensor) -> None:
        self.num_batches_tracked += 1
        momentum = self.momentum or 1.0 / float(self.num_batches_tracked)  # None: cumulative
        unbiased = var * count / (count - 1).clamp(min=1.0)
        self.running_mean.lerp_(mean, momentum)
        self.running_var.lerp_(unbiased, momentum)


class MeanPool(nn.Module):
    """Mean of ``[B, T, C]`` over real frames.

    Layout: ``h [B, T, C]``, ``mask [B, T]`` -> ``[B, C]``.
    """

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        weight = mask.unsqueeze(-1).to(h.dtype)
        return (h * weight).sum(dim=1) / weight.sum(dim=1).clamp(min=1.0)


class AttentionPool(nn.Module):
    """A learned score per frame, softmax over real frames, weighted sum of ``[B, T, C]``.

    Every sequence needs at least one real frame (see ``real_frames``).

    Layout: ``h [B, T, C]``, ``mask [B, T]`` -> ``[B, C]``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.score = nn.Linear(channels, 1)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        scores = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))
        return torch.einsum("bt,btd->bd", scores.softmax(dim=1), h)


class InputNorm(nn.Module):
    """Standardise each channel of ``x [B, T, C]`` with batch statistics over real frames.

    Fixed-constant features differ in scale by 10x (linear acceleration vs orientation), and
    Adam moves every weight by about the learning rate: without this a small-scale channel
    needs ~10x more steps to matter. Padded frames must be finite (zero them first).

    Layout: ``x [B, T, C]``, ``mask [B, T]`` -> ``[B, T, C]``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = MaskedBatchNorm1d(channels)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.norm(x.transpose(1, 2), mask).transpose(1, 2)
