"""The resse_gru and inception backbones beyond the contract kit: options, holes, packing."""

from __future__ import annotations

import pytest
import torch

import cmi_core
from cmi_core.config import config_from_dict

SMALL = {
    "resse_gru": {"channels": 16, "n_blocks": 2, "gru_hidden": 8},
    "inception": {"n_filters": 4, "bottleneck": 4, "kernel_size": 9, "depth": 3},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_masked_frames_inside_a_sequence_do_not_move_the_embedding(name: str) -> None:
    """Frames without usable IMU inside a sequence are masked like padding (docs/data.md)."""
    torch.manual_seed(0)
    backbone = cmi_core.build_backbone(name, 5, **SMALL[name]).eval()
    x = torch.randn(2, 20, 5)
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[0, 6:9] = False
    mask[1, 12] = False
    noisy = x.clone()
    noisy[~mask] = torch.randn(int((~mask).sum()), 5) * 100.0
    with torch.no_grad():
        torch.testing.assert_close(backbone(noisy, mask), backbone(x, mask))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_nan_in_padding_does_not_reach_the_embedding(name: str) -> None:
    backbone = cmi_core.build_backbone(name, 5, **SMALL[name]).train()
    x = torch.randn(2, 12, 5)
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[:, :4] = False
    x[~mask] = float("nan")
    assert torch.isfinite(backbone(x, mask)).all()


def test_real_frames_are_packed_to_the_front_in_order() -> None:
    from cmi_backbone_resse_gru.encoder import pack_real_frames

    h = torch.arange(12.0).view(2, 6, 1)
    mask = torch.tensor([[0, 0, 1, 1, 0, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    packed, lengths = pack_real_frames(h, mask)
    assert lengths.tolist() == [3, 4]
    assert packed[0, :3, 0].tolist() == [2.0, 3.0, 5.0]
    assert packed[1, :4, 0].tolist() == [6.0, 7.0, 8.0, 9.0]


def test_resse_gru_embedding_is_twice_the_gru_width() -> None:
    backbone = cmi_core.build_backbone("resse_gru", 7, gru_hidden=24)
    assert backbone.out_dim == 48


@pytest.mark.parametrize(
    ("kernel", "expected"), [(39, (39, 19, 9)), (19, (19, 9, 5)), (5, (5, 3, 1))]
)
def test_inception_branch_kernels_are_odd_halves(kernel: int, expected: tuple) -> None:
    from cmi_backbone_inception import InceptionOptions

    assert InceptionOptions(kernel_size=kernel).kernel_sizes() == expected


def test_inception_takes_a_single_channel_without_bottleneck() -> None:
    backbone = cmi_core.build_backbone("inception", 1, **SMALL["inception"]).eval()
    assert backbone.inception[0].bottleneck is None
    with torch.no_grad():
        assert backbone(torch.randn(3, 10, 1), torch.ones(3, 10, dtype=torch.bool)).shape == (3, 16)


def test_inception_has_a_shortcut_per_three_modules() -> None:
    for depth, shortcuts in [(2, 0), (3, 1), (7, 2)]:
        backbone = cmi_core.build_backbone("inception", 3, depth=depth)
        assert len(backbone.shortcuts) == shortcuts


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("resse_gru", {"kernel_size": 4}, r"kernel_size: must be an odd number"),
        ("resse_gru", {"se_reduction": 32, "channels": 16}, r"se_reduction \(32\) must be <="),
        ("resse_gru", {"dropout": 0.95}, r"dropout: must be in \[0, 0.9\]"),
        ("resse_gru", {"gru_hiden": 8}, r"gru_hiden: unknown key \(did you mean 'gru_hidden'"),
        ("inception", {"kernel_size": 3}, r"kernel_size: must be an odd number >= 5"),
        ("inception", {"pooling": "max"}, r"pooling: unknown value 'max'"),
        ("inception", {"depth": 0}, r"depth: must be >= 1"),
    ],
)
def test_bad_options_are_config_errors(name: str, options: dict, message: str) -> None:
    with pytest.raises(cmi_core.ConfigError, match=message):
        cmi_core.build_backbone(name, 7, **options)


def test_a_config_file_gets_one_line_per_bad_option() -> None:
    raw = {"model": {"backbone": "inception", "inception": {"n_filters": 0, "kernel_size": 8}}}
    with pytest.raises(cmi_core.ConfigError) as error:
        config_from_dict(raw, "my.toml")
    assert error.value.lines() == [
        "my.toml: model.inception.n_filters: must be >= 1, got 0",
        "my.toml: model.inception.kernel_size: must be an odd number >= 5, got 8",
    ]
