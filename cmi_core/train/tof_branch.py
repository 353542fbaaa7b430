"""The thermopile/ToF image branch: each frame's five 8x8 ToF images through a small 2-D CNN,
fused with any IMU backbone by replacing the 320 pixel channels with a per-frame embedding.

The top solutions of the competition read the ToF sensors as images (2nd and 11th place)
rather than as summaries: what is near which part of the sensor tells a cheek from a neck.
The embedding joins the frame's other channels before the backbone, so every backbone takes
it unchanged (it only sees ``embed_dim`` channels where the pixels were).

About half of the test sequences have no thermopile or ToF readings. For those (the presence
flag is 0, as it is for the training items whose thm/ToF ``drop_thm_tof_p`` hides), the branch
gives a learned "missing" embedding instead of the CNN's, a gate trained on both kinds of item,
so the backbone can tell an absent image from an empty one and lean on the IMU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cmi_core.data.features import TOF_IMAGE_FEATURES, TOF_SIDE
from cmi_core.data.schema import TOF_SENSORS


class TofImageBranch(nn.Module):
    """``x [B, T, C]`` whose channels ``start .. start+320`` are the ToF images and channel
    ``presence`` the thm/ToF presence flag -> ``[B, T, C - 320 + embed_dim]``."""

    def __init__(self, start: int, presence: int, embed_dim: int = 16) -> None:
        super().__init__()
        self.start, self.presence, self.embed_dim = start, presence, embed_dim
        self.cnn = nn.Sequential(
            nn.Conv2d(TOF_SENSORS, 8, 3, padding=1),
            nn.SiLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.SiLU(),
            nn.Flatten(),
            nn.Linear(16 * (TOF_SIDE // 2) ** 2, embed_dim),
        )
        self.missing = nn.Parameter(torch.zeros(embed_dim))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``mask [B, T]`` (True = real frame): padded frames stay all zeros."""
        end = self.start + len(TOF_IMAGE_FEATURES)
        b, t, _ = x.shape
        images = x[..., self.start : end].reshape(b * t, TOF_SENSORS, TOF_SIDE, TOF_SIDE)
        embedding = self.cnn(images).reshape(b, t, self.embed_dim)
        present = x[..., self.presence : self.presence + 1]
        embedding = present * embedding + (1.0 - present) * self.missing
        embedding = embedding * mask.unsqueeze(-1).to(embedding.dtype)
        return torch.cat([x[..., : self.start], embedding, x[..., end:]], dim=-1)


def backbone_channels(feature_names: tuple[str, ...], embed_dim: int) -> int:
    """What the backbone receives: the 320 pixel channels replaced by the embedding."""
    if TOF_IMAGE_FEATURES[0] not in feature_names:
        return len(feature_names)
    return len(feature_names) - len(TOF_IMAGE_FEATURES) + embed_dim


def image_branch(feature_names: tuple[str, ...], embed_dim: int) -> TofImageBranch | None:
    """The branch for these channels, or None where they hold no ToF images."""
    if TOF_IMAGE_FEATURES[0] not in feature_names:
        return None
    return TofImageBranch(
        feature_names.index(TOF_IMAGE_FEATURES[0]),
        feature_names.index("thm_tof_present"),
        embed_dim,
    )
