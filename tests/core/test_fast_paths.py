"""The fold speed-ups of issue 22 keep the numbers: each fast path against the plain one."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from cmi_core.train.callbacks import _all_finite

from .conftest import ModelFactory, make_batch


def test_depthwise_convolution_on_the_channels_last_view_is_bit_identical() -> None:
    """The 2-D call on a [B, C, 1, T] view must give Conv1d's exact outputs and gradients:
    fold scores are compared to the fourth decimal across commits (bench/bench_fold.py)."""
    from cmi_backbone_squeezeformer.encoder import ConvModule

    torch.manual_seed(0)
    module = ConvModule(d_model=32, kernel_size=15)
    h = torch.randn(8, 40, 32)  # [B, T, C], transposed as the module does
    upstream = torch.randn(8, 32, 40)
    results = []
    for conv in (module.depthwise, module._depthwise):
        x = h.clone().requires_grad_()
        module.zero_grad()
        out = conv(x.transpose(1, 2))
        out.backward(upstream)
        results.append((out.detach(), x.grad, module.depthwise.weight.grad.clone()))
    for plain, fast in zip(*results, strict=True):
        assert torch.equal(plain, fast)


@pytest.mark.parametrize(
    ("values", "finite"),
    [
        ([[1.0, 2.0], [3.0]], True),
        ([[1e30, -1e30], [2.0]], True),  # the norm overflows; the values are finite
        ([[1.0, float("nan")], [2.0]], False),
        ([[1.0], [float("-inf")]], False),
        ([[1e30], [float("inf")]], False),
        ([], True),
    ],
)
def test_the_fused_finiteness_check_agrees_with_a_per_tensor_check(
    values: list[list[float]], finite: bool
) -> None:
    tensors = [torch.tensor(v) for v in values] + [torch.tensor([7], dtype=torch.int64)]
    assert _all_finite(tensors) is finite


def _losses_by_step(metrics_csv: Path, tag: str) -> dict[int, float]:
    import csv

    with metrics_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    return {int(r["step"]): float(r[tag]) for r in rows if r.get(tag)}


def test_step_tags_land_on_logging_steps_and_epoch_means_weigh_batch_sizes(
    make_model: ModelFactory, tmp_path: Path
) -> None:
    """Per-step tags only where Lightning writes them; ``train/loss/*`` the batch-size-weighted
    mean of all steps (the per-step logging runs every step here, to see every value)."""
    sizes = [6, 2, 4, 3]
    train = [make_batch(n, 30, seed=i) for i, n in enumerate(sizes)]
    val = [make_batch(5, 30, seed=9)]

    def fit(root: Path, every: int) -> Path:
        model = make_model("uncertainty")
        trainer = pl.Trainer(
            max_epochs=1,
            default_root_dir=root,
            logger=pl.loggers.CSVLogger(root),
            log_every_n_steps=every,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        torch.manual_seed(0)
        trainer.fit(model, DataLoader(train, batch_size=None), DataLoader(val, batch_size=None))
        return root / "lightning_logs/version_0/metrics.csv"

    every_step = _losses_by_step(fit(tmp_path / "a", 1), "loss/total")
    assert sorted(every_step) == [0, 1, 2, 3]
    mean = sum(every_step[k] * n for k, n in enumerate(sizes)) / sum(sizes)
    epoch = _losses_by_step(tmp_path / "a/lightning_logs/version_0/metrics.csv", "train/loss/total")
    assert list(epoch.values()) == [pytest.approx(mean, rel=1e-5)]

    every_other = _losses_by_step(fit(tmp_path / "b", 2), "loss/total")
    assert every_other == {k: every_step[k] for k in (1, 3)}  # same values, fewer writes
