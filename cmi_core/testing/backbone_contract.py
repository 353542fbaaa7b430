"""The contract every backbone plugin must meet: shapes, the padding mask, gradients."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
from torch import Tensor

from cmi_core.backbone import Backbone
from cmi_core.builders import build_backbone
from cmi_core.specs import PluginSpec
from cmi_core.testing.plugin_contract import PluginContract, reloaded

Build = Callable[[], Backbone]
TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}


def left_padded(sequences: Sequence[Tensor], length: int) -> tuple[Tensor, Tensor]:
    """Batch ``[T_i, C]`` sequences as the dataset does (keep the end); padding is noise."""
    channels = sequences[0].shape[1]
    x = torch.randn(len(sequences), length, channels) * 100.0
    mask = torch.zeros(len(sequences), length, dtype=torch.bool)
    for i, seq in enumerate(sequences):
        x[i, length - len(seq) :] = seq
        mask[i, length - len(seq) :] = True
    return x, mask


class BackboneContract(PluginContract):
    """Checks of a ``Backbone`` plugin; override the ``plugin_name`` fixture.

    ``in_channels`` (default 7) can be overridden too.
    """

    kind = "backbone"

    @pytest.fixture
    def in_channels(self) -> int:
        return 7

    @pytest.fixture
    def build(
        self,
        plugin_name: str,
        plugin_options: dict[str, Any],
        plugin_modules: Sequence[str],
        in_channels: int,
    ) -> Build:
        def build() -> Backbone:
            torch.manual_seed(0)
            return build_backbone(
                plugin_name, in_channels, modules=plugin_modules, **plugin_options
            )

        return build

    def test_output_is_batch_by_out_dim(self, build: Build, in_channels: int) -> None:
        backbone = build().eval()
        assert isinstance(backbone, Backbone), (
            f"the factory returned a {type(backbone).__name__}: a backbone plugin must build a "
            "cmi_core.Backbone"
        )
        assert isinstance(backbone.out_dim, int) and backbone.out_dim > 0, (
            f"out_dim = {backbone.out_dim!r}: a backbone must declare its embedding size as a "
            "positive int"
        )
        x, mask = left_padded([torch.randn(n, in_channels) for n in (20, 11, 5)], 20)
        with torch.no_grad():
            out = backbone(x, mask)
        assert out.shape == (3, backbone.out_dim), (
            f"output shape {tuple(out.shape)} for a batch of 3: it must be [B, out_dim] = "
            f"(3, {backbone.out_dim})"
        )
        assert torch.isfinite(out).all(), "the embedding has non-finite values: it must be finite"

    def test_the_per_frame_output_is_what_the_spec_declares(
        self, build: Build, in_channels: int, spec: PluginSpec
    ) -> None:
        backbone = build().eval()
        declared = bool(getattr(spec, "frames", False))
        assert (backbone.frame_dim is not None) == declared, (
            f"BackboneSpec(frames={declared}) but frame_dim = {backbone.frame_dim!r}: a backbone "
            "with a per-frame output sets frame_dim and declares frames=True (cmi check reads it)"
        )
        if not declared:
            return
        x, mask = left_padded([torch.randn(n, in_channels) for n in (20, 11, 5)], 20)
        with torch.no_grad():
            pooled, frames = backbone.encode(x, mask)
            plain = backbone(x, mask)
        assert frames.shape == (3, 20, backbone.frame_dim), (
            f"per-frame output of shape {tuple(frames.shape)}: encode must give [B, T, "
            f"frame_dim] = (3, 20, {backbone.frame_dim}) on the input's time axis"
        )
        assert torch.isfinite(frames[mask]).all(), "the per-frame output must be finite"
        assert torch.equal(pooled, plain), (
            "encode's pooled output differs from forward's: it must be the very same "
            "computation, so a run with per-frame tasks trains the backbone it would without"
        )
        alone, _ = left_padded([x[1, mask[1]]], 20)
        with torch.no_grad():
            _, frames_alone = backbone.encode(alone, mask[1:2])
        torch.testing.assert_close(
            frames[1, mask[1]],
            frames_alone[0, mask[1]],
            **TOLERANCE,
            msg=lambda detail: (
                "a real frame's per-frame output moved with the other sequences or the padding "
                "values: it must sit at the frame it came from and ignore padding. " + detail
            ),
        )

    @pytest.mark.parametrize("where", ["front", "back"])
    def test_padding_does_not_move_the_embedding(
        self, build: Build, in_channels: int, where: str
    ) -> None:
        backbone = build().eval()
        x = torch.randn(2, 16, in_channels)
        noise = torch.randn(2, 9, in_channels) * 100.0
        parts = [noise, x] if where == "front" else [x, noise]
        padded = torch.cat(parts, dim=1)
        mask = torch.cat(
            [torch.zeros(2, 9, dtype=torch.bool), torch.ones(2, 16, dtype=torch.bool)], dim=1
        )
        mask = mask if where == "front" else mask.flip(1)
        with torch.no_grad():
            plain = backbone(x, torch.ones(2, 16, dtype=torch.bool))
            moved = backbone(padded, mask)
        torch.testing.assert_close(
            moved,
            plain,
            **TOLERANCE,
            msg=lambda detail: (
                f"padding ({where}, filled with noise) moved the embedding: masked frames must "
                f"have no effect on it. {detail}"
            ),
        )

    def test_variable_lengths_match_each_sequence_alone(
        self, build: Build, in_channels: int
    ) -> None:
        backbone = build().eval()
        sequences = [torch.randn(n, in_channels) for n in (1, 3, 17, 32)]
        x, mask = left_padded(sequences, 32)
        with torch.no_grad():
            batched = backbone(x, mask)
            alone = torch.cat(
                [backbone(s[None], torch.ones(1, len(s), dtype=torch.bool)) for s in sequences]
            )
        torch.testing.assert_close(
            batched,
            alone,
            **TOLERANCE,
            msg=lambda detail: (
                "a sequence in a left-padded batch of several lengths gives another embedding "
                "than alone: the backbone must depend only on each sequence's real frames. "
                f"{detail}"
            ),
        )

    def test_gradient_reaches_every_parameter_and_no_padded_frame(
        self, build: Build, in_channels: int
    ) -> None:
        backbone = build().train()
        x, mask = left_padded([torch.randn(n, in_channels) for n in (24, 10, 3, 24)], 24)
        x.requires_grad_(True)
        out = backbone(x, mask)
        (out * torch.randn_like(out)).sum().backward()
        for name, param in backbone.named_parameters():
            assert param.grad is not None, (
                f"parameter {name} gets no gradient: every parameter must take part in the output"
            )
            assert torch.isfinite(param.grad).all(), (
                f"{name}: non-finite gradient; gradients must be finite"
            )
        assert x.grad[mask].abs().sum() > 0, (
            "real frames get no gradient: the embedding must depend on the input"
        )
        assert torch.all(x.grad[~mask] == 0), (
            "padded frames influence the embedding: masked frames must get zero gradient"
        )

    def test_a_sequence_without_real_frames_gives_a_finite_embedding(
        self, build: Build, in_channels: int
    ) -> None:
        backbone = build().eval()
        x = torch.randn(2, 8, in_channels)
        mask = torch.ones(2, 8, dtype=torch.bool)
        mask[1] = False
        with torch.no_grad():
            out = backbone(x, mask)
        assert torch.isfinite(out).all(), (
            "a sequence without real frames gives a non-finite embedding: an empty mask must "
            "still give finite values (no division by a zero count)"
        )

    def test_state_dict_round_trip(self, build: Build, in_channels: int) -> None:
        trained = build().train()
        x, mask = left_padded([torch.randn(n, in_channels) for n in (12, 7)], 12)
        trained(x, mask)  # updates normalisation statistics, if any
        restored = reloaded(trained, build())
        with torch.no_grad():
            torch.testing.assert_close(
                restored.eval()(x, mask),
                trained.eval()(x, mask),
                msg=lambda detail: (
                    "a backbone restored from its state_dict gives another embedding: everything "
                    f"the output depends on must be a parameter or a persistent buffer. {detail}"
                ),
            )

    def test_deterministic_for_a_seed(self, build: Build, in_channels: int) -> None:
        x, mask = left_padded([torch.randn(n, in_channels) for n in (12, 7)], 12)

        def run() -> Tensor:
            backbone = build().train()  # build() seeds; dropout draws from the same stream
            return backbone(x, mask).detach()

        assert torch.equal(run(), run()), (
            "two builds from the same seed give different outputs: a backbone must be "
            "deterministic for a seed (draw randomness from torch's generator only)"
        )
