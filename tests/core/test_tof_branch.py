"""The ToF image branch: shapes with every built-in backbone, padded frames, the learned
"missing" embedding for IMU-only sequences, training of its weights, and configs without it."""

from __future__ import annotations

import pytest
import torch

from cmi_core.config import FeatureConfig, load_config
from cmi_core.data.features import feature_names
from cmi_core.errors import ConfigError
from cmi_core.train.assemble import build_model
from cmi_core.train.network import backbone_in_channels
from cmi_core.train.tof_branch import image_branch

NAMES = feature_names(FeatureConfig(thm_tof=True, tof_images=True))
PRESENCE = NAMES.index("thm_tof_present")
START = NAMES.index("tof_1_px0")


def inputs(batch: int = 3, frames: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(batch, frames, len(NAMES))
    x[..., PRESENCE] = 1.0
    x[..., START:] = torch.rand(batch, frames, 320)
    mask = torch.ones(batch, frames, dtype=torch.bool)
    mask[0, :4] = False
    x[0, :4] = 0.0
    return x, mask


def test_the_images_become_an_embedding_beside_the_other_channels() -> None:
    branch = image_branch(NAMES, 16)
    assert branch is not None
    x, mask = inputs()
    out = branch(x, mask)
    assert out.shape == (3, 12, START + 16)
    torch.testing.assert_close(out[..., :START], x[..., :START])
    assert torch.all(out[0, :4] == 0.0)  # padded frames stay empty


def test_a_sequence_without_thm_tof_gets_the_missing_embedding_whatever_its_pixels() -> None:
    branch = image_branch(NAMES, 16)
    with torch.no_grad():
        branch.missing.copy_(torch.arange(16.0))
    x, mask = inputs()
    x[1, :, PRESENCE] = 0.0
    other = x.clone()
    other[1, :, START:] = torch.rand(12, 320)
    out, out_other = branch(x, mask), branch(other, mask)
    torch.testing.assert_close(out[1, :, START:], torch.arange(16.0).expand(12, 16))
    torch.testing.assert_close(out[1], out_other[1])
    assert not torch.allclose(out[2, :, START:], out[1, :, START:])


def test_configs_without_images_build_no_branch() -> None:
    assert image_branch(feature_names(FeatureConfig(thm_tof=True)), 16) is None
    cfg = load_config("configs/best.toml")
    assert backbone_in_channels(cfg, 32) == 32
    model = build_model(cfg, 32)
    assert model.network.image_branch is None
    assert not any(k.startswith("image_branch") for k in model.state_dict())


@pytest.mark.parametrize("backbone", ["squeezeformer", "resse_gru", "inception"])
def test_every_backbone_takes_the_fused_channels_and_the_branch_trains(backbone: str) -> None:
    cfg = load_config("configs/tof_branch.toml", [f"model.backbone={backbone!r}".replace("'", '"')])
    assert backbone_in_channels(cfg, len(NAMES)) == START + 16
    model = build_model(cfg, len(NAMES))
    assert model.network.image_branch is not None
    assert any(k.startswith("image_branch.cnn") for k in model.state_dict())
    params = {id(p) for p in model.parameters()}
    assert all(id(p) in params for p in model.network.image_branch.parameters())
    x, mask = inputs()
    out = model(x, mask, torch.zeros(3, 7))
    assert out["multiclass"].shape == (3, 18)
    out["multiclass"].sum().backward()
    assert model.network.image_branch.cnn[0].weight.grad.abs().sum() > 0


def test_images_need_the_thm_tof_summaries() -> None:
    with pytest.raises(ConfigError, match=r"tof_images.*needs data\.features\.thm_tof = true"):
        load_config("configs/tof_branch.toml", ["data.features.thm_tof=false"])
