"""Hydra's competing convolution kernels (Dempster, Schmidt & Webb, DMKD 2023) in torch.

MultiRocket-Hydra, the strongest kernel classifier in this project's baselines, concatenates
MultiRocket's pooled features with Hydra's. Hydra draws random normal kernels of length 9
(demeaned, scaled to unit absolute sum) in groups; at every frame the kernels of a group
compete, and the features count, per kernel, the frames it won: the sum of its output where it
was the largest of its group, and the number of frames where it was the smallest. Each group
convolves the sum of a random subset of the input channels; half of the groups see the series,
half its first difference, as in the reference. Counts are summed over real frames only, so
padding never votes, and pass through Hydra's ``sqrt`` before they are standardised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cmi_backbone_rocket import RocketOptions

KERNEL_LENGTH = 9


def hydra_kernels(n: int) -> Tensor:
    """``[n, 1, 9]`` random normal kernels, each demeaned and scaled to unit absolute sum."""
    w = torch.randn(n, 1, KERNEL_LENGTH)
    w = w - w.mean(dim=-1, keepdim=True)
    return w / w.abs().sum(dim=-1, keepdim=True)


def channel_picks(groups: int, in_channels: int, max_channels: int) -> Tensor:
    """``[groups, C]`` counts: the channels a group sums (Hydra: C // 2 of them, 2..max, drawn
    with replacement, so a channel can count twice)."""
    per_group = min(max(in_channels // 2, 2), max_channels)
    picks = torch.randint(in_channels, (groups, per_group))
    return F.one_hot(picks, in_channels).sum(dim=1).float()


def competition_counts(z: Tensor, frames: Tensor) -> Tensor:
    """``z [B, G, K, T]`` kernel outputs, ``frames [B, T]`` -> ``[B, G, K, 2]``: per kernel the
    sum of its output over frames where it won its group, and the frames where it lost."""
    weight = frames[:, None, :].to(z.dtype)
    top, winner = z.max(dim=2)
    loser = z.min(dim=2).indices  # argmin: the same index, 2.6x slower (bench/bench_hydra.py)
    wins = torch.zeros(z.shape[:3], dtype=z.dtype, device=z.device)
    losses = torch.zeros_like(wins)
    wins.scatter_add_(2, winner, top * weight)
    losses.scatter_add_(2, loser, weight.expand_as(top))
    return torch.stack([wins, losses], dim=-1)


def sparse_sqrt(counts: Tensor) -> Tensor:
    """Hydra's ``sqrt(max(count, 0))``, with a zero gradient where the count is 0 (``sqrt``'s
    own is infinite there, and would turn a backward pass through the input into NaN)."""
    positive = counts > 0
    return torch.where(positive, counts.where(positive, 1.0).sqrt(), 0.0)


class HydraFeatures(nn.Module):
    """The series (``encoder.series_of``: padding zeroed, each with its real frames) ->
    ``[B, hydra features]``.

    Takes the same series as the MiniRocket features (the input, and its first difference
    with its own mask), so both parts see one padding rule. Kernels and channel picks are
    buffers drawn from torch's generator (seeded by the run); nothing here trains.
    """

    def __init__(self, in_channels: int, o: RocketOptions) -> None:
        super().__init__()
        self.options = o
        n_series, n_dil = o.n_series(), len(o.hydra_dilations)
        g, k = o.hydra_groups, o.hydra_kernels
        picks = channel_picks(n_series * n_dil * g, in_channels, o.max_channels)
        self.register_buffer("picks", picks.view(n_series, n_dil, g, in_channels))
        self.register_buffer(
            "kernels",
            hydra_kernels(n_series * n_dil * g * k).view(n_series, n_dil, g * k, 1, KERNEL_LENGTH),
        )

    def forward(self, series: list[tuple[Tensor, Tensor]]) -> Tensor:
        o, features = self.options, []
        for s, (x, frames) in enumerate(series):
            for i, dilation in enumerate(o.hydra_dilations):
                mixed = torch.einsum("btc,gc->bgt", x, self.picks[s, i].to(x.dtype))
                z = F.conv1d(
                    mixed,
                    self.kernels[s, i].to(x.dtype),
                    dilation=dilation,
                    padding=4 * dilation,
                    groups=o.hydra_groups,
                )
                z = z.view(x.shape[0], o.hydra_groups, o.hydra_kernels, -1)
                features.append(competition_counts(z, frames).flatten(1))
        return sparse_sqrt(torch.cat(features, dim=1))
