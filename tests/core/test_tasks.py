"""Tasks as plugins (issue 20): the exp025 terms as task plugins compute exp024's formula, keep
the heads' checkpoint keys, and new tasks train beside them under any weighting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import cmi_core
from cmi_core.config import config_from_dict
from cmi_core.data.schema import GESTURE_TO_NINE
from cmi_core.errors import ConfigError
from cmi_core.registry.manager import get_plugin_manager
from cmi_core.train.assemble import build_model
from cmi_core.train.losses import task_losses
from cmi_core.train.network import CMINetwork
from cmi_core.weighting import TERMS
from tests.core.conftest import CHANNELS, TINY_BACKBONE, make_batch

BUILT_IN = (
    "multiclass",
    "binary",
    "nine_class",
    "kl",
    "orientation",
    "composite",
    "phase",
    "behavior",
)


def test_the_built_in_tasks_are_registered_as_kind_task() -> None:
    names = get_plugin_manager().names("task")
    assert set(BUILT_IN) <= set(names)
    infos = {(i.kind, i.name): i.status for i in get_plugin_manager().infos()}
    assert all(infos[("task", name)] == "active" for name in BUILT_IN)


def _exp024_losses(outputs: dict[str, torch.Tensor], batch: dict, eps: float) -> dict:
    """The exp024/exp025 formulas written out with torch.nn.functional, independently of the
    task plugins (the code of ``losses.py`` before tasks were plugins)."""

    def mixed(loss_fn: Any, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        lam, perm = batch["mix_lambda"], batch["mix_index"]
        return (lam * loss_fn(logits, target) + (1 - lam) * loss_fn(logits, target[perm])).mean()

    def ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, label_smoothing=eps, reduction="none")

    def bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, target.float(), reduction="none")

    matrix = torch.zeros(18, 9)
    matrix[torch.arange(18), torch.as_tensor(GESTURE_TO_NINE)] = 1.0
    p9 = outputs["multiclass"].softmax(-1) @ matrix
    kl = F.kl_div(outputs["nine_class"].log_softmax(-1), p9, reduction="batchmean")
    return {
        "multiclass": mixed(ce, outputs["multiclass"], batch["y18"]),
        "binary": mixed(bce, outputs["binary"], batch["ybin"]),
        "nine_class": mixed(ce, outputs["nine_class"], batch["y9"]),
        "kl": kl,
    }


def test_the_task_plugins_compute_the_exp024_formula_bit_for_bit() -> None:
    batch = make_batch(6, seed=3)
    batch |= {"mix_index": torch.tensor([5, 4, 3, 2, 1, 0]), "mix_lambda": torch.tensor(0.3)}
    generator = torch.Generator().manual_seed(1)
    outputs = {
        "multiclass": torch.randn(6, 18, generator=generator),
        "binary": torch.randn(6, generator=generator),
        "nine_class": torch.randn(6, 9, generator=generator),
    }
    context = cmi_core.TaskContext(label_smoothing=0.1, kl_temperature=1.0)
    tasks = [cmi_core.build_task(name, context) for name in TERMS]
    new = task_losses(tasks, outputs, batch)
    old = _exp024_losses(outputs, batch, 0.1)
    assert list(new) == list(TERMS)
    for term in TERMS:
        assert torch.equal(new[term], old[term]), term
    weighting = cmi_core.build_weighting("none", TERMS)
    expected = 0.5 * old["multiclass"] + 0.5 * old["binary"] + 0.2 * old["nine_class"]
    assert torch.equal(weighting(new), expected + 0.1 * old["kl"])


def test_the_heads_keep_their_checkpoint_keys_and_shapes() -> None:
    backbone = cmi_core.build_backbone("squeezeformer", CHANNELS, **TINY_BACKBONE)
    state = CMINetwork(backbone).state_dict()
    heads = {k: tuple(v.shape) for k, v in state.items() if k.startswith("heads.")}
    expected = {}
    for name, hidden, out in (("multiclass", 128, 18), ("binary", 64, 1), ("nine_class", 128, 9)):
        expected |= {f"heads.{name}.0.weight": (32,), f"heads.{name}.0.bias": (32,)}
        expected |= {f"heads.{name}.2.weight": (hidden, 32), f"heads.{name}.2.bias": (hidden,)}
        expected |= {f"heads.{name}.5.weight": (out, hidden), f"heads.{name}.5.bias": (out,)}
    assert heads == expected


def _config(tmp_path: Path, names: list[str] | None, strategy: str = "none", **loss: Any) -> Any:
    """A config of the tiny backbone with ``[loss.tasks] names`` (unset when None)."""
    tasks = {} if names is None else {"names": names}
    raw = {
        "data": {"cache_dir": str(tmp_path)},
        "model": {"squeezeformer": TINY_BACKBONE},
        "loss": {**loss, "tasks": tasks, "weighting": {"strategy": strategy}},
    }
    return config_from_dict(raw, "<test>")


def test_kl_without_the_nine_class_head_is_a_one_line_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, ["multiclass", "binary", "kl"])
    message = str(caught.value)
    assert "loss.tasks.names" in message and "'kl' depends on ['nine_class']" in message


def test_an_unknown_task_names_the_closest_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown task 'orientaton'.*'orientation'"):
        _config(tmp_path, ["multiclass", "orientaton"])


def test_task_options_are_checked_like_every_plugin(tmp_path: Path) -> None:
    raw = {
        "data": {"cache_dir": str(tmp_path)},
        "loss": {"tasks": {"names": ["multiclass", "orientation"], "orientation": {"wieght": 1}}},
    }
    with pytest.raises(ConfigError, match=r"loss\.tasks\.orientation\.wieght"):
        config_from_dict(raw, "<test>")


def test_without_names_the_old_keys_choose_the_tasks(tmp_path: Path) -> None:
    cfg = _config(tmp_path, None, nine_class_head_enabled=False)
    model = build_model(cfg, CHANNELS)
    assert model.weighting.terms == ("multiclass", "binary")
    assert set(model.heads) == {"multiclass", "binary"}


@pytest.mark.parametrize("strategy", get_plugin_manager().names("weighting"))
def test_auxiliary_tasks_train_under_any_weighting(tmp_path: Path, strategy: str) -> None:
    names = ["multiclass", "binary", "nine_class", "kl", "orientation", "composite"]
    raw = {
        "data": {"cache_dir": str(tmp_path)},
        "model": {"squeezeformer": TINY_BACKBONE},
        "loss": {
            "tasks": {"names": names, "orientation": {"weight": 0.3}},
            "weighting": {"strategy": strategy},
        },
    }
    torch.manual_seed(0)
    model = build_model(config_from_dict(raw, "<test>"), CHANNELS)
    assert model.weighting.terms == tuple(names)
    model.eval().zero_grad()
    model.backward(model.training_step(make_batch(8), 0))
    for task in ("orientation", "composite"):
        grads = [p.grad for p in model.heads[task].parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), task
    weights = model.weighting.effective_weights()
    if strategy != "graddrop":  # graddrop drops gradient signs at random: it has no weights
        assert set(weights) == set(names), weights
    if strategy == "none":
        assert float(weights["orientation"]) == 0.3 and float(weights["composite"]) == 1.0


def test_registering_the_tasks_imports_no_torch() -> None:
    """``cmi plugins`` and ``cmi check`` load every plugin: a task plugin declares itself
    without torch and imports its class when built (as the backbones do)."""
    code = (
        "import sys\nfrom cmi_core.registry.manager import get_plugin_manager\n"
        "manager = get_plugin_manager()\n"
        "assert 'orientation' in manager.names('task'), manager.names('task')\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", done.stdout + done.stderr
