"""The 13 checks of the original tests/test_exp025_learnable_weights.py (DOMAIN.md 7.12),
through the plugin interface: strategies are built by name, as the trainer builds them."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import cmi_core
from cmi_core.config import LossConfig, OptimizerConfig, config_from_dict
from cmi_core.registry.manager import get_plugin_manager
from cmi_core.train.losses import compute_losses
from cmi_core.weighting import TERMS, active_terms

from .conftest import ModelFactory, make_batch


def _initial_total(strategy: str, losses: dict[str, torch.Tensor]) -> float:
    """The documented total at initialisation (docs/weighting.md), from the raw losses:
    uncertainty at s_i = 0 is sum L_i; direct starts at the fixed 0.5, 0.5, 0.2, 0.1."""
    values = {t: v.item() for t, v in losses.items()}
    if strategy == "uncertainty":
        return sum(values.values())
    fixed = {"multiclass": 0.5, "binary": 0.5, "nine_class": 0.2, "kl": 0.1}
    return sum(fixed[t] * v for t, v in values.items())


def _training_step(model: torch.nn.Module) -> torch.Tensor:
    with warnings.catch_warnings():  # self.log outside a Trainer warns, as in the original
        warnings.simplefilter("ignore")
        return model.training_step(make_batch(), 0)


def test_1_uncertainty_initialisation() -> None:
    weighting = cmi_core.build_weighting("uncertainty", TERMS, init_value=0.0)
    assert {k: float(v) for k, v in weighting.raw_values().items()} == {
        "s_multiclass": 0.0,
        "s_binary": 0.0,
        "s_nine_class": 0.0,
        "s_kl": 0.0,
    }
    assert all(p.requires_grad for p in weighting.parameters())
    assert len(list(weighting.parameters())) == 4


def test_2_direct_initialisation() -> None:
    weighting = cmi_core.build_weighting("direct", TERMS)
    raw = weighting.raw_values()
    assert set(raw) == {"alpha_raw", "w9_raw", "wkl_raw"}
    # initialised from the fixed weights alpha 0.5, w9 0.2, wkl 0.1
    assert torch.sigmoid(raw["alpha_raw"]).item() == pytest.approx(0.5)
    assert raw["w9_raw"].item() == pytest.approx(math.log(0.2))
    assert raw["wkl_raw"].item() == pytest.approx(math.log(0.1))
    assert all(p.requires_grad for p in weighting.parameters())


def test_3_none_has_no_learnable_parameters() -> None:
    weighting = cmi_core.build_weighting("none", TERMS)
    assert list(weighting.parameters()) == []
    assert weighting.raw_values() == {}


@pytest.mark.parametrize("strategy", ["uncertainty", "direct"])
def test_4_5_weighted_loss_computation(make_model: ModelFactory, strategy: str) -> None:
    model = make_model(strategy)
    batch = make_batch()
    outputs = model(batch["x"], batch["mask"], batch["demographics"])
    losses = compute_losses(outputs, batch, model.loss_cfg, model.weighting.terms)
    assert set(losses) == set(TERMS)
    total = model.weighting(losses)
    assert total.item() == pytest.approx(_initial_total(strategy, losses), rel=1e-6)
    assert total.requires_grad


@pytest.mark.parametrize("strategy", ["uncertainty", "direct"])
def test_6_7_training_step(make_model: ModelFactory, strategy: str) -> None:
    model = make_model(strategy)
    torch.manual_seed(1)
    loss = _training_step(model)
    torch.manual_seed(1)  # the same dropout masks: the step's total is the weighted raw losses
    batch = make_batch()
    outputs = model(batch["x"], batch["mask"], batch["demographics"])
    losses = compute_losses(outputs, batch, model.loss_cfg, model.weighting.terms)
    assert loss.item() == pytest.approx(_initial_total(strategy, losses), rel=1e-6)
    assert loss.requires_grad


def test_8_gradient_flows_to_every_learnable_weight(make_model: ModelFactory) -> None:
    model = make_model("uncertainty")
    _training_step(model).backward()
    for name, param in model.weighting.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize("scheduler", ["none", "cosine"])
def test_9_parameters_change_after_an_optimizer_step(
    make_model: ModelFactory, scheduler: str
) -> None:
    model = make_model("uncertainty", optimizer=OptimizerConfig(scheduler=scheduler))
    configured = model.configure_optimizers()
    if scheduler == "none":
        assert isinstance(configured, torch.optim.AdamW)  # a bare optimizer, as the original
        optimizer = configured
    else:
        optimizer = configured["optimizer"]
    before = {n: p.detach().clone() for n, p in model.weighting.named_parameters()}
    _training_step(model).backward()
    optimizer.step()
    for name, param in model.weighting.named_parameters():
        assert param.grad.abs().item() > 0, f"{name} got a zero gradient"
        assert not torch.equal(param, before[name]), f"{name} did not change"


@pytest.mark.plugin_listing
def test_10_config_validation() -> None:
    cfg = config_from_dict({"loss": {"weighting": {"strategy": "uncertainty"}}})
    assert cfg.loss.weighting.strategy == "uncertainty"
    with pytest.raises(cmi_core.ConfigError) as error:
        config_from_dict({"loss": {"weighting": {"strategy": "invalid_type"}}}, "exp.toml")
    assert error.value.lines() == [
        "exp.toml: loss.weighting.strategy: unknown weighting 'invalid_type'; "
        f"available: {', '.join(sorted(get_plugin_manager().names('weighting')))}"
    ]


def test_11_clamping() -> None:
    weighting = cmi_core.build_weighting("uncertainty", TERMS, clamp=[-1.0, 1.0])
    losses = {t: torch.tensor(1.0) for t in TERMS}
    with torch.no_grad():
        weighting.s["multiclass"].fill_(-20.0)
    total = weighting(losses)
    assert torch.isfinite(total)
    # s_multiclass acts as -1: exp(1)*1 - 1 plus three terms of exp(0)*1 + 0
    assert total.item() == pytest.approx(torch.e - 1 + 3, rel=1e-6)


def test_12_nine_class_head_disabled(make_model: ModelFactory) -> None:
    loss = LossConfig(nine_class_head_enabled=False)
    assert active_terms(loss.nine_class_head_enabled, loss.kl_weight) == ("multiclass", "binary")
    model = make_model("uncertainty", loss=loss)
    assert "s_nine_class" not in model.weighting.raw_values()
    assert "nine_class" not in model.heads
    batch = make_batch()
    outputs = model(batch["x"], batch["mask"], batch["demographics"])
    assert "nine_class" not in outputs
    assert "nine_class" not in compute_losses(outputs, batch, loss, model.weighting.terms)


def test_13_kl_weight_zero(make_model: ModelFactory) -> None:
    loss = LossConfig(kl_weight=0.0)
    model = make_model("uncertainty", loss=loss)
    assert model.weighting.terms == ("multiclass", "binary", "nine_class")
    assert "s_kl" not in model.weighting.raw_values()
    direct = make_model("direct", loss=loss)
    assert "wkl_raw" not in direct.weighting.raw_values()
    torch.manual_seed(1)
    total = _training_step(model)
    torch.manual_seed(1)
    batch = make_batch()
    outputs = model(batch["x"], batch["mask"], batch["demographics"])
    losses = compute_losses(outputs, batch, loss, model.weighting.terms)
    assert set(losses) == {"multiclass", "binary", "nine_class"}
    assert total.item() == pytest.approx(_initial_total("uncertainty", losses), rel=1e-6)
