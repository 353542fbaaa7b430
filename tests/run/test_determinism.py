"""A fold interrupted after an epoch and resumed trains exactly like the uninterrupted fold."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cmi_core.runs.run import run_experiment
from tests.run.conftest import SendSignal, tiny_config, with_callbacks


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_an_interrupted_and_resumed_fold_equals_the_uninterrupted_fold(
    run_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(
        run_cache,
        cv={"folds": [0]},
        trainer={"max_epochs": 2},
        data={"augment": {"mixup_alpha": 0.4}},  # mixup draws from its own generator
    )
    whole = run_experiment(cfg, tmp_path / "whole", progress=False)

    interrupted = tmp_path / "interrupted"
    with_callbacks(monkeypatch, lambda k: [SendSignal()])  # stops in epoch 1, keeps epoch 0
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, interrupted, progress=False)
    assert torch.load(interrupted / "fold_0" / "last.ckpt", weights_only=True)["epoch"] == 0
    monkeypatch.undo()
    resumed = run_experiment(cfg, interrupted, resume=True, progress=False)

    for key in ("cmi_score", "binary_f1", "macro_f1", "best_epoch", "epochs_trained", "weights"):
        assert resumed["folds"][0][key] == whole["folds"][0][key], key
    for name in ("last.ckpt", "best.pt"):
        expected, got = (
            _state(tmp_path / "whole" / "fold_0" / name),
            _state(interrupted / "fold_0" / name),
        )
        assert expected.keys() == got.keys()
        for key in expected:
            assert torch.equal(expected[key], got[key]), f"{name}: {key} differs"
