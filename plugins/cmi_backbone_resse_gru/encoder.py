"""Residual squeeze-and-excitation convolutions, a bidirectional GRU and attention pooling.

Padded frames (``mask == False``) never reach a real frame's output: they are zeroed before
every convolution (a real frame next to padding sees the same zeros as at the sequence edge),
batch-norm statistics and the squeeze skip them, the GRU never sees them (real frames are
packed together in their order and run through ``pack_padded_sequence``), and the attention
pooling ignores them. Hence an embedding does not move when padding is added.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from cmi_backbone_resse_gru import ResSEGRUOptions
from cmi_core.backbone import Backbone
from cmi_core.layers import (
    AttentionPool,
    ChannelDropout,
    InputNorm,
    MaskedBatchNorm1d,
    real_frames,
)


def _zero_padding(x: Tensor, mask: Tensor) -> Tensor:
    """``x [B, C, T]`` with padded frames set to 0 (``masked_fill``: NaN in padding too)."""
    return x.masked_fill(~mask.unsqueeze(1), 0.0)


class SqueezeExcite(nn.Module):
    """Rescale channels by a gate computed from their mean over real frames (Hu et al. 2018)."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.Linear(channels, channels // reduction),
            nn.SiLU(),
            nn.Linear(channels // reduction, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        weight = mask.unsqueeze(1).to(x.dtype)
        squeezed = (x * weight).sum(dim=2) / weight.sum(dim=2).clamp(min=1.0)
        return x * self.gate(squeezed).unsqueeze(-1)


class ResSEBlock(nn.Module):
    """conv -> BN -> SiLU -> conv -> BN -> SE, plus the (projected) input, -> SiLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, reduction: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2, bias=False)
        self.norm1 = MaskedBatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, padding=kernel // 2, bias=False)
        self.norm2 = MaskedBatchNorm1d(c_out)
        self.excite = SqueezeExcite(c_out, reduction)
        self.shortcut = nn.Conv1d(c_in, c_out, 1, bias=False) if c_in != c_out else None

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = _zero_padding(x, mask)
        h = F.silu(self.norm1(self.conv1(x), mask))
        h = self.norm2(self.conv2(_zero_padding(h, mask)), mask)
        residual = x if self.shortcut is None else self.shortcut(x)
        return F.silu(self.excite(h, mask) + residual)


def pack_real_frames(h: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Move each sequence's real frames to the front, in order: ``(h, lengths)``.

    Left padding, right padding and masked frames inside a sequence are all handled alike.
    """
    order = _real_first(mask)
    gathered = torch.gather(h, 1, order.unsqueeze(-1).expand_as(h))
    return gathered, mask.sum(dim=1)


def unpack_real_frames(packed: Tensor, mask: Tensor) -> Tensor:
    """The inverse of :func:`pack_real_frames`: ``packed [B, L, D]`` (``L <= T``, real frames
    first, zeros after) back to ``[B, T, D]`` at the frames they came from."""
    padded = F.pad(packed, (0, 0, 0, mask.shape[1] - packed.shape[1]))
    index = _real_first(mask).unsqueeze(-1).expand_as(padded)
    return torch.zeros_like(padded).scatter(1, index, padded)


def _real_first(mask: Tensor) -> Tensor:
    """The frame order that puts each sequence's real frames first, in their order."""
    return torch.argsort((~mask).to(torch.int8), dim=1, stable=True)


class ResSEGRUEncoder(Backbone):
    """``x [B, T, C]``, ``mask [B, T]`` (True = real frame) -> ``[B, 2 * gru_hidden]``."""

    def __init__(self, in_channels: int, o: ResSEGRUOptions) -> None:
        super().__init__()
        self.out_dim = self.frame_dim = 2 * o.gru_hidden
        self.input_norm = InputNorm(in_channels) if o.input_norm else None
        widths = [in_channels] + [o.channels] * o.n_blocks
        self.blocks = nn.ModuleList(
            ResSEBlock(c_in, c_out, o.kernel_size, o.se_reduction)
            for c_in, c_out in pairwise(widths)
        )
        self.conv_dropout = nn.Dropout1d(o.dropout)  # whole channels of [B, C, T]
        self.dropout = ChannelDropout(o.dropout)  # the same on [B, T, C]
        self.gru = nn.GRU(
            o.channels, o.gru_hidden, o.gru_layers, batch_first=True, bidirectional=True
        )
        self.pool = AttentionPool(self.out_dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        out, frames, _ = self._packed_frames(x, mask)
        return self.pool(out, frames)

    def encode(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The pooled output as :meth:`forward`; the GRU outputs moved back to the frames
        they came from (zeros on padding)."""
        out, frames, mask = self._packed_frames(x, mask)
        return self.pool(out, frames), unpack_real_frames(out, mask)

    def _packed_frames(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The GRU output of the real frames packed to the front (after dropout), its mask,
        and the real-frame mask of the input."""
        mask = real_frames(mask)
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)  # NaN or Inf in padding cannot leak
        if self.input_norm is not None:
            x = self.input_norm(x, mask)
        h = x.transpose(1, 2)
        for block in self.blocks:
            h = self.conv_dropout(block(h, mask))
        packed, lengths = pack_real_frames(h.transpose(1, 2), mask)
        sequence = pack_padded_sequence(
            packed, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.gru(sequence)
        out, _ = pad_packed_sequence(out, batch_first=True)
        frames = torch.arange(out.shape[1], device=out.device) < lengths.unsqueeze(1)
        return self.dropout(out), frames, mask
