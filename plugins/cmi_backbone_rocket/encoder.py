"""Fixed dilated convolution kernels with PPV-type pooling (MiniRocket / MultiRocket) in torch.

The 84 MiniRocket kernels (length 9, weight 2 at three positions and -1 at the other six, so
each sums to zero) run at every dilation over a random subset of the input channels, on the
series and, as in MultiRocket, on its first difference. Each kernel's output is compared with
a few biases (quantiles of its output on the first training batch) and pooled over the frames:
PPV (proportion of positive values), MPV (mean of positive values), MIPV (mean index of positive
values) and LSPV (longest stretch of positive values). Kernels, channel subsets and biases are
buffers: saved and restored with the model, never trained.

Padded frames (``mask == False``) never reach a feature: they are zeroed before the
convolutions (a real frame next to padding sees the same zeros as at the sequence edge), half
of the kernels pool over the real frames ('same' padding), the other half only over frames
whose whole receptive field is real (MiniRocket's unpadded half), and every count is over those
frames only.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cmi_backbone_rocket import RocketOptions
from cmi_backbone_rocket.hydra import KERNEL_LENGTH, HydraFeatures
from cmi_backbone_rocket.levels import LevelFeatures
from cmi_core.backbone import Backbone
from cmi_core.layers import MaskedBatchNorm1d, real_frames

GOLDEN_RATIO = (math.sqrt(5.0) + 1.0) / 2.0


def kernel_patterns() -> Tensor:
    """The 84 MiniRocket kernels ``[84, 9]``: -1 everywhere, 2 at each choice of 3 positions."""
    patterns = torch.full((84, KERNEL_LENGTH), -1.0)
    for k, positions in enumerate(combinations(range(KERNEL_LENGTH), 3)):
        patterns[k, list(positions)] = 2.0
    return patterns


def channel_subsets(groups: int, in_channels: int, max_channels: int) -> Tensor:
    """``[groups, 84, C]`` 0/1: the channels each kernel sums over (MiniRocket multivariate).

    Subset sizes are ``2 ** U(0, log2(limit + 1))`` rounded down, so single channels and small
    groups are common, as in aeon's MiniRocket; drawn from torch's generator (seeded by the run).
    """
    limit = min(in_channels, max_channels)
    sizes = (2.0 ** (torch.rand(groups, 84) * math.log2(limit + 1))).floor().clamp(1, limit)
    ranks = torch.rand(groups, 84, in_channels).argsort(dim=-1).argsort(dim=-1)
    return (ranks < sizes.unsqueeze(-1)).float()


def low_discrepancy_quantiles(count: int) -> Tensor:
    """MiniRocket's bias quantiles: the fractional parts of ``k * golden ratio``, k = 1.."""
    return torch.remainder(torch.arange(1, count + 1, dtype=torch.float64) * GOLDEN_RATIO, 1.0)


def longest_stretch(positive: Tensor) -> Tensor:
    """Length of the longest run of True along the last axis (a non-pooled frame ends a run).

    One pass over the frames on small integers, each step a whole ``[B, K, nb]`` slice: ~3x
    faster on a CPU than a cumsum-and-scatter over segments, and ~10x faster than ``cummax``.
    """
    dtype = torch.int16 if positive.shape[-1] < 2**15 else torch.int32
    steps = positive.movedim(-1, 0).to(dtype)
    run, best = torch.zeros_like(steps[0]), torch.zeros_like(steps[0])
    for step in steps:
        run = (run + 1).mul_(step)
        torch.maximum(best, run, out=best)
    return best


def pool(z: Tensor, frames: Tensor, scale: Tensor, o: RocketOptions) -> Tensor:
    """``z [B, K, nb, T]`` (output - bias) pooled over ``frames [B, K, 1, T]`` -> ``[B, K, nb, P]``.

    PPV is a count (MiniRocket), or with ``ppv_softness > 0`` a sigmoid step of that width
    times the kernel's output spread, which lets gradients reach the input; MPV carries a
    gradient too; MIPV and LSPV are counts and carry none.
    """
    weight = frames.to(z.dtype)
    count = weight.sum(dim=-1).clamp(min=1)
    positive = (z > 0) & frames
    as_float = positive.to(z.dtype)
    n_positive = as_float.sum(dim=-1)
    out = []
    for name in o.pooling:
        if name == "ppv" and o.ppv_softness > 0:
            step = torch.sigmoid(z / (o.ppv_softness * scale[None, :, None, None]))
            out.append((step * weight).sum(dim=-1) / count)
        elif name == "ppv":
            out.append(n_positive / count)
        elif name == "mpv":
            out.append((z * as_float).sum(dim=-1) / n_positive.clamp(min=1))
        elif name == "mipv":
            rank = weight.cumsum(dim=-1) - 1  # frame index counted over pooled frames only
            mean_index = (as_float * rank).sum(dim=-1) / n_positive.clamp(min=1) / count
            out.append(torch.where(n_positive > 0, mean_index, -1.0))
        else:  # lspv
            out.append(longest_stretch(positive).to(z.dtype) / count)
    return torch.stack(out, dim=-1)


def first_difference(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """``x[t] - x[t-1]`` where both frames are real, else a masked 0."""
    diff = torch.zeros_like(x)
    diff[:, 1:] = x[:, 1:] - x[:, :-1]
    both = torch.zeros_like(mask)
    both[:, 1:] = mask[:, 1:] & mask[:, :-1]
    return diff.masked_fill(~both.unsqueeze(-1), 0.0), both


def series_of(x: Tensor, mask: Tensor, difference: bool) -> list[tuple[Tensor, Tensor]]:
    """The series the kernels convolve, each with its real frames: the input and, with
    ``difference`` (MultiRocket, Hydra), its first difference."""
    return [(x, mask), first_difference(x, mask)] if difference else [(x, mask)]


class RocketFeatures(nn.Module):
    """The series (``series_of``: padding already zeroed) -> ``[B, n_features]``."""

    def __init__(self, in_channels: int, o: RocketOptions) -> None:
        super().__init__()
        self.options = o
        n_series, n_dil = o.n_series(), len(o.dilations)
        subsets = channel_subsets(n_series * n_dil, in_channels, o.max_channels)
        weights = subsets.unsqueeze(-1) * kernel_patterns()[None, :, None, :]
        self.register_buffer("weights", weights.view(n_series, n_dil, 84, in_channels, -1))
        kernel = torch.arange(84)
        same = torch.stack(
            [(kernel + i + s) % 2 == 0 for s in range(n_series) for i in range(n_dil)]
        )
        self.register_buffer("same_padding", same.view(n_series, n_dil, 84))
        self.register_buffer("biases", torch.zeros(n_series, n_dil, 84, o.biases_per_kernel))
        self.register_buffer("scales", torch.ones(n_series, n_dil, 84))
        self.register_buffer("fitted", torch.tensor(False))
        self._known_fitted = False  # read ``fitted`` (a device sync) until it is seen True

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._known_fitted = False

    def _must_fit(self) -> bool:
        """Whether this training call fits the biases; one device read per module at most."""
        if not self.training or self._known_fitted:
            return False
        self._known_fitted = bool(self.fitted)
        return not self._known_fitted

    def forward(self, series: list[tuple[Tensor, Tensor]]) -> Tensor:
        fit = self._must_fit()
        features = []
        for s, (h, m) in enumerate(series):
            h = h.transpose(1, 2)
            for i, dilation in enumerate(self.options.dilations):
                out = F.conv1d(h, self.weights[s, i], dilation=dilation, padding=4 * dilation)
                frames = self._pooled_frames(m, dilation, self.same_padding[s, i])
                if fit:
                    self._fit(out, frames, s, i)
                z = out.unsqueeze(2) - self.biases[s, i][None, :, :, None].to(out.dtype)
                features.append(pool(z, frames.unsqueeze(2), self.scales[s, i], self.options))
        if fit:
            self.fitted.fill_(True)
            self._known_fitted = True
        return torch.cat([f.flatten(1) for f in features], dim=1)

    @staticmethod
    def _pooled_frames(mask: Tensor, dilation: int, same: Tensor) -> Tensor:
        """``[B, 84, T]``: real frames for 'same' kernels, fully-real receptive fields else."""
        ones = torch.ones(1, 1, KERNEL_LENGTH, device=mask.device)
        real = mask.unsqueeze(1).float()
        covered = F.conv1d(real, ones, dilation=dilation, padding=4 * dilation)
        whole = covered > KERNEL_LENGTH - 0.5
        return torch.where(same[None, :, None], mask.unsqueeze(1), whole)

    @torch.no_grad()
    def _fit(self, out: Tensor, frames: Tensor, s: int, i: int) -> None:
        """Biases: quantiles of each kernel's output on one random sequence of the batch
        (MiniRocket); the spread over all sequences sets the PPV step width."""
        o, out = self.options, out.float()
        n_dil, nb = len(o.dilations), o.biases_per_kernel
        offset = (s * n_dil + i) * 84 * nb
        quantiles = low_discrepancy_quantiles(offset + 84 * nb)[offset:].view(84, nb)
        pick = torch.randint(out.shape[0], (84,))
        for k in range(84):
            values = out[pick[k], k][frames[pick[k], k]]
            every = out[:, k][frames[:, k]]
            if values.numel() == 0:
                values = every
            if values.numel() == 0:
                continue
            q = quantiles[k].to(values.device, values.dtype)
            self.biases[s, i, k] = torch.quantile(values, q)
            self.scales[s, i, k] = every.std(correction=0).clamp(min=1e-6) if every.numel() else 1


class Standardise(MaskedBatchNorm1d):
    """Each channel of ``x [B, T, C]`` standardised over real frames, without a learned affine.

    Nothing before the fixed kernels trains, so a training step builds no autograd graph
    through the feature maps (~10^7 values a batch): the backward pass stops at the features.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels, affine=False)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        h = x.transpose(1, 2)
        if not self.training:
            return nn.BatchNorm1d.forward(self, h).transpose(1, 2)
        x32, weight = h.float(), mask.unsqueeze(1).float()
        count = weight.sum().clamp(min=1.0)
        mean = (x32 * weight).sum(dim=(0, 2)) / count
        centred = x32 - mean[:, None]
        var = (centred.square() * weight).sum(dim=(0, 2)) / count
        self._update_running_stats(mean, var, count)
        return (centred * torch.rsqrt(var + self.eps)[:, None]).to(x.dtype).transpose(1, 2)


class RocketEncoder(Backbone):
    """``x [B, T, C]``, ``mask [B, T]`` -> ``[B, projection]`` (or the raw features' width)."""

    def __init__(self, in_channels: int, o: RocketOptions) -> None:
        super().__init__()
        n_features = o.n_features(in_channels)
        self.out_dim = o.projection or n_features
        self.input_norm = Standardise(in_channels) if o.input_norm else None
        self.features = RocketFeatures(in_channels, o)
        self.hydra = HydraFeatures(in_channels, o) if o.hydra_groups else None
        self.levels = LevelFeatures(o.levels) if o.levels else None
        self.norm = nn.BatchNorm1d(n_features)  # StandardScaler of the ridge pipelines
        self.dropout = nn.Dropout(o.dropout)
        self.projection = nn.Linear(n_features, o.projection) if o.projection else None

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = real_frames(mask)
        padding = ~mask.unsqueeze(-1)
        x = x.masked_fill(padding, 0.0)  # NaN or Inf in padding cannot leak
        if self.input_norm is not None:
            x = self.input_norm(x, mask).masked_fill(padding, 0.0)
        series = series_of(x, mask, self.features.options.difference)
        h = self.features(series)
        if self.hydra is not None:
            h = torch.cat([h, self.hydra(series)], dim=1)
        if self.levels is not None:
            h = torch.cat([h, self.levels(x, mask)], dim=1)
        h = self.dropout(self.norm(h))
        return h if self.projection is None else self.projection(h)
