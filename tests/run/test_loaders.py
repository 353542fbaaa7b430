"""The run's data loaders: mixup only in training, seeded, no batch of one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cmi_core.data.source import load_data
from cmi_core.train import assemble
from tests.run.conftest import tiny_config


def _loaders(run_cache: Path, mixup_alpha: float) -> tuple:
    cfg = tiny_config(run_cache, data={"augment": {"mixup_alpha": mixup_alpha}})
    data = load_data(cfg)
    idx = np.arange(len(data.sequence_ids))
    return assemble.make_loaders(cfg, data, idx[:65], idx[65:100])


def test_mixup_mixes_training_batches_only_and_is_seeded(run_cache: Path) -> None:
    firsts = []
    for _ in range(2):
        torch.manual_seed(0)
        train, val = _loaders(run_cache, mixup_alpha=0.4)
        firsts.append(next(iter(train)))
    batch = firsts[0]
    assert sorted(batch["mix_index"].tolist()) == list(range(32))
    assert 0.0 < float(batch["mix_lambda"]) < 1.0
    assert "mix_index" not in next(iter(val))
    for key in ("x", "mix_index", "mix_lambda"):
        assert torch.equal(firsts[0][key], firsts[1][key])


def test_without_mixup_batches_are_plain_and_the_last_short_batch_is_dropped(
    run_cache: Path,
) -> None:
    train, val = _loaders(run_cache, mixup_alpha=0.0)
    assert "mix_index" not in next(iter(train))
    assert [len(b["y18"]) for b in train] == [32, 32]  # 65 sequences: the single one is dropped
    assert [len(b["y18"]) for b in val] == [35]  # 4x the training batch, nothing dropped
