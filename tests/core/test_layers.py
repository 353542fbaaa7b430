"""cmi_core.layers: the mask-aware pieces backbone plugins share."""

from __future__ import annotations

import torch

from cmi_core.layers import AttentionPool, InputNorm, MaskedBatchNorm1d, MeanPool, real_frames


def test_input_norm_standardises_each_channel_over_real_frames_only() -> None:
    x = torch.randn(4, 10, 3) * torch.tensor([0.07, 0.5, 5.0]) + torch.tensor([0.0, 1.0, -2.0])
    mask = torch.ones(4, 10, dtype=torch.bool)
    mask[:, :4] = False
    x[~mask] = 1000.0  # padding that would dominate the statistics if it were counted
    out = InputNorm(3).train()(x, mask)[mask]
    torch.testing.assert_close(out.mean(dim=0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=0, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)


def test_pools_ignore_masked_frames() -> None:
    h = torch.randn(2, 6, 4)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [0, 1, 1, 0, 1, 1]], dtype=torch.bool)
    noisy = h.masked_fill(~mask.unsqueeze(-1), 1e3)
    attention = AttentionPool(4)
    for pool in (MeanPool(), attention):
        torch.testing.assert_close(pool(noisy, mask), pool(h, mask))


def test_a_sequence_without_real_frames_counts_as_all_real() -> None:
    mask = torch.tensor([[False, True], [False, False]])
    assert real_frames(mask).tolist() == [[False, True], [True, True]]


def test_masked_batch_norm_trains_under_bf16_autocast_with_float32_statistics() -> None:
    torch.manual_seed(0)
    norm = MaskedBatchNorm1d(3).train()
    x = torch.randn(4, 3, 10) * 5 + 2
    mask = torch.ones(4, 10, dtype=torch.bool)
    mask[:, :3] = False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = norm(x.bfloat16(), mask)
    assert out.dtype == torch.bfloat16
    assert norm.running_mean.dtype == torch.float32
    real = x[:, :, 3:]
    expected_mean = 0.1 * real.mean(dim=(0, 2))  # momentum 0.1 from zeros
    torch.testing.assert_close(norm.running_mean, expected_mean, atol=2e-2, rtol=2e-2)


def test_every_public_layer_states_its_layout_in_its_docstring_and_the_docs():
    import inspect
    from pathlib import Path

    from cmi_core import layers

    table = (Path(__file__).parents[2] / "docs" / "backbones.md").read_text()
    public = [
        obj
        for name, obj in vars(layers).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == layers.__name__
    ]
    assert len(public) >= 6
    for obj in public:
        assert "Layout: ``" in (obj.__doc__ or ""), obj.__name__
        assert f"| `{obj.__name__}(" in table, obj.__name__
