"""The squeezeformer backbone beyond the contract: sizes, masked BatchNorm, dropout, options."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import cmi_core
from cmi_core.config import config_from_dict
from cmi_core.registry.manager import get_plugin_manager

FULL = {"d_model": 256, "n_layers": 8, "n_heads": 8, "ff_dim": 1024}


def _size(**options: object) -> int:
    return sum(
        p.numel() for p in cmi_core.build_backbone("squeezeformer", 16, **options).parameters()
    )


def test_default_size_fits_a_cpu_and_full_size_matches_the_original() -> None:
    assert 50_000 <= _size() <= 150_000
    # DOMAIN.md 7.7: ~12M encoder, plus ~3.2M for the 4-layer transformer over [CLS]
    assert 11_500_000 <= _size(**FULL) <= 12_500_000
    assert 14_500_000 <= _size(**FULL, pooling="cls", pool_layers=4) <= 16_000_000


def test_batch_norm_statistics_come_from_real_frames_only() -> None:
    from cmi_backbone_squeezeformer.encoder import MaskedBatchNorm1d

    x = torch.randn(3, 4, 10)  # [B, C, T]
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[1, :6] = False
    mask[2, 7:] = False
    masked, plain = MaskedBatchNorm1d(4), torch.nn.BatchNorm1d(4)
    out = masked(x, mask)
    real = x.permute(0, 2, 1)[mask]  # [N_real, C]
    expected = plain(real)
    torch.testing.assert_close(out.permute(0, 2, 1)[mask], expected)
    torch.testing.assert_close(masked.running_mean, plain.running_mean)
    torch.testing.assert_close(masked.running_var, plain.running_var)
    masked.eval()
    plain.eval()
    torch.testing.assert_close(masked(x, mask).permute(0, 2, 1)[mask], plain(real))


def test_dropout_drops_whole_channels_of_a_sequence() -> None:
    from cmi_backbone_squeezeformer.encoder import ChannelDropout

    dropout = ChannelDropout(0.5)
    h = torch.ones(4, 30, 16)
    out = dropout(h)
    assert torch.equal(out, out[:, :1].expand_as(out))  # one mask per sequence and channel
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(dropout.eval()(h), h)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pooling": "max"}, r"pooling: unknown value 'max'"),
        ({"kernel_size": 30}, r"kernel_size: must be an odd number"),
        ({"n_heads": 5}, r"n_heads \(5\) must divide d_model \(64\)"),
        ({"d_modle": 32}, r"d_modle: unknown key \(did you mean 'd_model'\?\)"),
    ],
)
def test_bad_options_are_config_errors(options: dict, message: str) -> None:
    with pytest.raises(cmi_core.ConfigError, match=message):
        cmi_core.build_backbone("squeezeformer", 7, **options)


def test_plugin_modules_do_not_import_torch() -> None:
    """``cmi plugins`` imports every plugin's top-level module: it must stay light."""
    code = (
        "import sys, cmi_weighting_none, cmi_weighting_uncertainty, cmi_weighting_direct, "
        "cmi_backbone_squeezeformer, cmi_backbone_resse_gru, cmi_backbone_inception, "
        "cmi_core.testing.pytest_plugin\n"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.plugin_listing
def test_a_config_naming_an_unknown_backbone_or_option_gets_one_line_each() -> None:
    with pytest.raises(cmi_core.ConfigError) as error:
        config_from_dict({"model": {"backbone": "squeezformer"}}, "my.toml")
    installed = ", ".join(sorted(get_plugin_manager().names("backbone")))  # third-party too
    assert {"inception", "resse_gru", "squeezeformer"} <= set(installed.split(", "))
    assert error.value.lines() == [
        "my.toml: model.backbone: unknown backbone 'squeezformer' (did you mean "
        f"'squeezeformer'?); available: {installed}"
    ]
    raw = {
        "model": {"squeezeformer": {"d_modle": 32}},
        "loss": {"weighting": {"strategy": "direct", "direct": {"colapse_threshold": 0.1}}},
    }
    with pytest.raises(cmi_core.ConfigError) as error:
        config_from_dict(raw, "my.toml")
    keys = (
        "d_model, n_layers, n_heads, ff_dim, kernel_size, dropout, dropout_kind, pooling, "
        "pool_layers, positions"
    )
    assert error.value.lines() == [
        "my.toml: model.squeezeformer.d_modle: unknown key (did you mean 'd_model'?); "
        f"valid keys: {keys}, max_positions, input_norm",
        "my.toml: loss.weighting.direct.colapse_threshold: unknown key (did you mean "
        "'collapse_threshold'?); valid keys: clamp, collapse_threshold",
    ]
