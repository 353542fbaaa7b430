"""Per-frame tasks (``phase``, ``behavior``): a head on the backbone's per-frame output, a
masked per-frame loss that follows mixup, a one-line config error without a per-frame output,
and a tiny training run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import cmi_core
from cmi_core.config import config_from_dict
from cmi_core.errors import ConfigError
from cmi_core.task import TaskContext, masked_frame_cross_entropy
from cmi_core.train.assemble import build_model
from cmi_core.train.network import CMINetwork
from tests.core.conftest import CHANNELS, TINY_BACKBONE, make_batch

NAMES = ["multiclass", "binary", "orientation", "phase", "behavior"]


def _raw(tmp_path: Path, names: list[str], backbone: str = "squeezeformer") -> dict:
    return {
        "data": {"cache_dir": str(tmp_path)},
        "model": {"backbone": backbone, "squeezeformer": TINY_BACKBONE},
        "loss": {"tasks": {"names": names}, "weighting": {"strategy": "uncertainty"}},
    }


def test_a_frame_task_with_a_backbone_without_frames_is_a_one_line_config_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(_raw(tmp_path, ["multiclass", "phase"], "rocket"), "<test>")
    message = str(caught.value)
    assert "task 'phase' needs a per-frame output; backbone 'rocket' gives none" in message
    assert "\n" not in message.strip()


def test_the_network_refuses_a_frame_task_on_a_backbone_without_frames() -> None:
    backbone = cmi_core.build_backbone("rocket", CHANNELS)
    with pytest.raises(ConfigError, match="task 'phase' needs a per-frame output"):
        CMINetwork(backbone, tasks=[cmi_core.build_task("phase")])


def test_the_loss_is_the_mean_over_known_frames_per_sequence() -> None:
    logits = torch.randn(2, 5, 3)
    target = torch.tensor([[-1, -1, 0, 2, 1], [-1, -1, -1, -1, -1]])
    per_sample = masked_frame_cross_entropy(0.0)(logits, target)
    expected = F.cross_entropy(logits[0, 2:], target[0, 2:])
    torch.testing.assert_close(per_sample, torch.stack([expected, torch.tensor(0.0)]))


def test_the_frame_target_follows_mixup() -> None:
    task = cmi_core.build_task("phase")
    batch = make_batch(4, 12)
    logits = torch.randn(4, 12, 2)
    perm, lam = torch.tensor([2, 3, 0, 1]), 0.3
    mixed = task.loss({"phase": logits}, {**batch, "mix_index": perm, "mix_lambda": lam})
    per = masked_frame_cross_entropy(TaskContext().label_smoothing)
    own, other = per(logits, batch["yphase"]), per(logits, batch["yphase"][perm])
    torch.testing.assert_close(mixed, (lam * own + (1 - lam) * other).mean())


@pytest.mark.parametrize("strategy", ["uncertainty", "upgrad"])
def test_frame_tasks_train_beside_the_sequence_tasks(tmp_path: Path, strategy: str) -> None:
    raw = _raw(tmp_path, NAMES)
    raw["loss"]["weighting"]["strategy"] = strategy
    torch.manual_seed(0)
    model = build_model(config_from_dict(raw, "<test>"), CHANNELS)
    batch = make_batch(4, 20)
    outputs = model(batch["x"], batch["mask"], batch["demographics"])
    assert outputs["phase"].shape == (4, 20, 2) and outputs["behavior"].shape == (4, 20, 4)
    assert outputs["multiclass"].shape == (4, 18)
    model.zero_grad()
    model.backward(model.training_step(batch, 0))
    for task in ("phase", "behavior", "orientation"):
        grads = [p.grad for p in model.heads[task].parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), task
    assert set(model.weighting.effective_weights()) == set(NAMES)


def test_without_frame_tasks_the_representation_is_the_pooled_one(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(config_from_dict(_raw(tmp_path, NAMES[:3]), "<test>"), CHANNELS)
    batch = make_batch(3, 16)
    features = model.shared_representation(batch["x"], batch["mask"], batch["demographics"])
    assert model.network.frame_dim is None and features.shape == (3, 16 + 16)
