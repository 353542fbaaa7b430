"""The ``rocket`` backbone: the contract kit, and what the kit cannot see (buffers, biases)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

import pytest
import torch

import cmi_core
from cmi_core.testing import BackboneContract


def installed() -> bool:
    """Whether the ``rocket`` entry point is installed (``pip install -e .`` after adding it)."""
    return any(ep.name == "rocket" for ep in entry_points(group="cmi.plugins"))


# until the package is reinstalled, the plugin is registered by its module, as a config's
# ``[plugins] modules`` would; registering it both ways would be a conflict
MODULES = () if installed() else ("cmi_backbone_rocket",)
SMALL = {"dilations": [1, 2, 3], "biases_per_kernel": 2, "projection": 16}


def build(in_channels: int = 5, **options: Any) -> Any:
    torch.manual_seed(0)
    return cmi_core.build_backbone("rocket", in_channels, modules=MODULES, **{**SMALL, **options})


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"projection": 0, "input_norm": False, "difference": False, "pooling": ["ppv", "mpv"]},
        {"pooling": ["ppv", "lspv", "mipv"], "ppv_softness": 0.5, "max_channels": 2},
        {"hydra_groups": 4, "hydra_kernels": 3, "hydra_dilations": [1, 2]},
        {"hydra_groups": 2, "difference": False, "projection": 0},
        {"levels": 3, "hydra_groups": 2, "input_norm": False},
    ],
)
class TestRocketBackbone(BackboneContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "rocket"

    @pytest.fixture
    def plugin_modules(self) -> Sequence[str]:
        return MODULES

    @pytest.fixture
    def plugin_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return {**SMALL, **options}


def test_embedding_size_is_the_projection_or_the_feature_count() -> None:
    assert build(projection=24).out_dim == 24
    # 84 kernels x 3 dilations x 2 biases x 4 poolings x 2 series (with the difference)
    assert build(projection=0).out_dim == 84 * 3 * 2 * 4 * 2
    assert build(projection=0, difference=False, pooling=["ppv"]).out_dim == 84 * 3 * 2
    # + Hydra: 2 series x 2 dilations x 4 groups x 3 kernels x 2 counts
    hydra = {"hydra_groups": 4, "hydra_kernels": 3, "hydra_dilations": [1, 2]}
    assert build(projection=0, **hydra).out_dim == 84 * 3 * 2 * 4 * 2 + 2 * 2 * 4 * 3 * 2
    # + levels: 5 channels x 4 spans
    assert build(projection=0, levels=4).out_dim == 84 * 3 * 2 * 4 * 2 + 5 * 4


def test_kernels_and_biases_are_buffers_not_parameters() -> None:
    backbone = build()
    buffers = dict(backbone.named_buffers())
    parameters = dict(backbone.named_parameters())
    for name in ("weights", "biases", "scales", "fitted"):
        assert f"features.{name}" in buffers
    assert not any(name.startswith("features.") for name in parameters)
    before = backbone.features.weights.clone()
    optimiser = torch.optim.SGD(backbone.parameters(), lr=1.0)
    x, mask = torch.randn(4, 20, 5), torch.ones(4, 20, dtype=torch.bool)
    backbone.train()(x, mask).square().sum().backward()
    optimiser.step()
    assert torch.equal(backbone.features.weights, before)


def test_a_training_step_builds_no_graph_through_the_fixed_features() -> None:
    """Nothing before the features trains, so backward stops at them (the step's cost)."""
    backbone = build().train()
    assert not list(backbone.input_norm.parameters())
    x, mask = torch.randn(4, 20, 5), torch.ones(4, 20, dtype=torch.bool)
    from cmi_backbone_rocket.encoder import series_of

    series = series_of(backbone.input_norm(x, mask), mask, difference=True)
    assert not backbone.features(series).requires_grad
    assert backbone(x, mask).requires_grad  # the standardisation and projection train


def test_kernels_are_the_84_minirocket_patterns() -> None:
    from cmi_backbone_rocket.encoder import kernel_patterns

    patterns = kernel_patterns()
    assert patterns.shape == (84, 9)
    assert torch.all(patterns.sum(dim=1) == 0)  # 3 x 2 - 6 x 1: offsets cancel
    assert len({tuple(p.tolist()) for p in patterns}) == 84


def test_biases_are_fitted_once_from_the_first_training_batch() -> None:
    backbone = build().train()
    assert not backbone.features.fitted
    x, mask = torch.randn(8, 30, 5), torch.ones(8, 30, dtype=torch.bool)
    backbone(x, mask)
    fitted = backbone.features.biases.clone()
    assert backbone.features.fitted and fitted.abs().sum() > 0
    # quantiles of each kernel's own output: distinct biases per kernel, increasing in q
    assert torch.unique(fitted).numel() > fitted.numel() // 2
    backbone(x * 10.0, mask)
    assert torch.equal(backbone.features.biases, fitted)


def test_a_loaded_state_decides_whether_the_next_training_call_fits() -> None:
    x, mask = torch.randn(8, 30, 5), torch.ones(8, 30, dtype=torch.bool)
    fitted = build().train()
    fitted(x, mask)
    restored = build()
    restored.load_state_dict(fitted.state_dict())
    restored.train()(x * 10.0, mask)
    assert torch.equal(restored.features.biases, fitted.features.biases)
    fitted.load_state_dict(build().state_dict())  # back to unfitted: the next call fits anew
    fitted.train()(x * 10.0, mask)
    assert fitted.features.fitted
    assert not torch.equal(fitted.features.biases, restored.features.biases)


def test_evaluation_does_not_fit_the_biases() -> None:
    backbone = build().eval()
    with torch.no_grad():
        backbone(torch.randn(4, 20, 5), torch.ones(4, 20, dtype=torch.bool))
    assert not backbone.features.fitted
    assert torch.all(backbone.features.biases == 0)


def test_longest_stretch_counts_runs_and_breaks_at_false() -> None:
    from cmi_backbone_rocket.encoder import longest_stretch

    positive = torch.tensor([[0, 1, 1, 0, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0, 0, 1], [0] * 8])
    assert longest_stretch(positive.bool()).tolist() == [3, 2, 0]


def test_ppv_and_mpv_match_their_definitions_with_hard_steps() -> None:
    from cmi_backbone_rocket import RocketOptions
    from cmi_backbone_rocket.encoder import pool

    z = torch.tensor([-1.0, 2.0, 0.5, -3.0, 4.0, 9.0]).view(1, 1, 1, 6)
    frames = torch.tensor([True, True, True, True, True, False]).view(1, 1, 1, 6)
    o = RocketOptions(pooling=["ppv", "mpv", "mipv", "lspv"], ppv_softness=0.0)
    ppv, mpv, mipv, lspv = pool(z, frames, torch.ones(1), o).flatten().tolist()
    assert ppv == pytest.approx(3 / 5)  # 2.0, 0.5, 4.0 of five pooled frames; 9.0 is not pooled
    assert mpv == pytest.approx((2.0 + 0.5 + 4.0) / 3)
    assert mipv == pytest.approx((1 + 2 + 4) / 3 / 5)
    assert lspv == pytest.approx(2 / 5)


def test_unpadded_kernels_pool_only_full_receptive_fields() -> None:
    from cmi_backbone_rocket.encoder import RocketFeatures

    mask = torch.zeros(1, 30, dtype=torch.bool)
    mask[0, 10:] = True  # 20 real frames
    same = torch.tensor([True, False] * 42)
    frames = RocketFeatures._pooled_frames(mask, 2, same)
    assert frames[0, 0].sum() == 20  # 'same' padding: every real frame
    assert frames[0, 1].sum() == 20 - 2 * 8  # dilation 2: 8 frames of each edge are short
    assert frames[0, 1, :18].sum() == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dilations": []}, r"dilations: must be a non-empty list of integers >= 1"),
        ({"dilations": [1, 2, 2]}, r"dilations: has repeats"),
        ({"pooling": ["ppv", "max"]}, r"pooling: must be a non-empty list of ppv, mpv"),
        ({"biases_per_kernel": 0}, r"biases_per_kernel: must be >= 1"),
        ({"projection": -1}, r"projection: must be >= 0"),
        ({"hydra_kernels": 1}, r"hydra_kernels: must be >= 2"),
        ({"hydra_groups": -1}, r"hydra_groups: must be >= 0"),
        ({"hydra_dilations": [0]}, r"hydra_dilations: must be a non-empty list"),
        ({"levels": -1}, r"levels: must be in \[0, 16\]"),
    ],
)
def test_bad_options_are_config_errors(options: dict, message: str) -> None:
    with pytest.raises(cmi_core.ConfigError, match=message):
        cmi_core.build_backbone("rocket", 7, modules=MODULES, **options)


def test_hydra_counts_wins_by_output_and_losses_by_frames() -> None:
    """One group of 3 kernels over 4 frames, the last one padding (hand-computed)."""
    from cmi_backbone_rocket.hydra import competition_counts

    z = torch.tensor([[1.0, -2.0, 0.5, 9.0], [3.0, 1.0, -1.0, -9.0], [2.0, 4.0, 0.0, 0.0]])
    frames = torch.tensor([[True, True, True, False]])
    counts = competition_counts(z.view(1, 1, 3, 4), frames)[0, 0]
    # winners: kernel 1 (3.0), kernel 2 (4.0), kernel 0 (0.5); losers: 0, 0, 1
    torch.testing.assert_close(counts[:, 0], torch.tensor([0.5, 3.0, 4.0]))
    torch.testing.assert_close(counts[:, 1], torch.tensor([2.0, 1.0, 0.0]))


def test_hydra_kernels_and_channel_picks_follow_hydra() -> None:
    from cmi_backbone_rocket.hydra import channel_picks, hydra_kernels

    torch.manual_seed(0)
    w = hydra_kernels(50)
    torch.testing.assert_close(w.sum(dim=-1), torch.zeros(50, 1), atol=1e-6, rtol=0)
    torch.testing.assert_close(w.abs().sum(dim=-1), torch.ones(50, 1))
    assert channel_picks(6, 16, 9).sum(dim=1).tolist() == [8.0] * 6  # 16 // 2
    assert channel_picks(6, 16, 3).sum(dim=1).tolist() == [3.0] * 6  # at most max_channels
    assert channel_picks(6, 3, 9).sum(dim=1).tolist() == [2.0] * 6  # at least 2


def test_hydra_features_ignore_padding() -> None:
    """A left-padded sequence counts exactly as the same frames unpadded."""
    from cmi_backbone_rocket.encoder import series_of

    backbone = build(hydra_groups=4, hydra_kernels=3, hydra_dilations=[1, 2]).eval()
    x = torch.randn(1, 12, 5)
    padded = torch.cat([torch.zeros(1, 8, 5), x], dim=1)
    mask = torch.cat([torch.zeros(1, 8, dtype=torch.bool), torch.ones(1, 12, dtype=torch.bool)], 1)
    short = backbone.hydra(series_of(x, torch.ones(1, 12, dtype=torch.bool), difference=True))
    long = backbone.hydra(series_of(padded, mask, difference=True))
    torch.testing.assert_close(long, short)
    assert bool((short > 0).any())


def test_levels_are_channel_means_over_spans_of_the_real_frames() -> None:
    """Hand-computed: 7 real frames after 3 of padding, 3 spans of ranks {0,1,2} {3,4} {5,6}."""
    from cmi_backbone_rocket.levels import LevelFeatures

    values = torch.tensor([99.0, 99.0, 99.0, 1.0, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0])
    x = torch.stack([values, -values], dim=-1).unsqueeze(0)
    mask = torch.arange(10).unsqueeze(0) >= 3
    levels = LevelFeatures(3)(x, mask)
    # channel 0's spans, then channel 1's
    torch.testing.assert_close(levels, torch.tensor([[2.0, 5.0, 15.0, -2.0, -5.0, -15.0]]))
    # two real frames fill two of three spans; the third stays 0
    short = LevelFeatures(3)(x, torch.arange(10).unsqueeze(0) >= 8)
    torch.testing.assert_close(short, torch.tensor([[10.0, 20.0, 0.0, -10.0, -20.0, 0.0]]))


def test_levels_move_with_a_constant_offset_of_a_channel() -> None:
    """A posture is a channel's offset: each of that channel's spans moves by exactly it."""
    backbone = build(input_norm=False, levels=2).eval()
    x, mask = torch.randn(2, 30, 5), torch.ones(2, 30, dtype=torch.bool)
    shifted = x + torch.tensor([0.0, 3.0, 0.0, 0.0, -1.0])
    change = backbone.levels(shifted, mask) - backbone.levels(x, mask)
    expected = torch.tensor([0.0, 0, 3, 3, 0, 0, 0, 0, -1, -1]).expand(2, 10)
    torch.testing.assert_close(change, expected)
