"""The model's gradient-level path: the update it applies equals the hand-built one."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import torch
from torch import Tensor

from cmi_core.model import CMIModel
from cmi_core.weighting import AggregatorWeighting, FixedWeights, LossWeighting

from .conftest import ModelFactory, make_batch

FIXED = FixedWeights()


class PlainSum(LossWeighting):
    """Loss-level ``sum_i L_i``: what each head's parameters see on the gradient path."""

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        return torch.stack([losses[t] for t in self.terms]).sum()


def _step(model: CMIModel) -> dict[str, Tensor]:
    """One training step (eval mode: no dropout) and its backward; the parameters' gradients."""
    model.eval().zero_grad()
    model.backward(model.training_step(make_batch(), 0))
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _with(model: CMIModel, weighting: LossWeighting) -> CMIModel:
    model.weighting = weighting
    return model


def _fixed_aggregator(terms: tuple[str, ...]) -> AggregatorWeighting:
    weights = torch.tensor(list(FIXED.for_terms(terms).values()))
    return AggregatorWeighting(terms, FIXED, "representation", weights.__matmul__)


def _split(grads: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    shared = {n: g for n, g in grads.items() if n.startswith(("backbone.", "demographics."))}
    heads = {n: g for n, g in grads.items() if n.startswith("heads.")}
    assert shared and heads and len(shared) + len(heads) == len(grads)
    return shared, heads


@pytest.mark.parametrize("where", ["representation", "parameters"])
def test_a_linear_aggregator_reproduces_the_loss_level_gradients(
    make_model: ModelFactory, where: str
) -> None:
    """Aggregating with the fixed weights: the shared part gets exactly ``none``'s gradient,
    each head its own tasks' gradients (the plain sum over the losses that use it)."""
    reference = make_model("none")
    terms = reference.weighting.terms
    expected_shared, _ = _split(_step(reference))
    _, expected_heads = _split(_step(_with(make_model("none"), PlainSum(terms, FIXED))))
    strategy = _fixed_aggregator(terms)
    strategy.where = where
    shared, heads = _split(_step(_with(make_model("none"), strategy)))
    for name, grad in {**expected_shared, **expected_heads}.items():
        torch.testing.assert_close({**shared, **heads}[name], grad, msg=name)


def test_the_gradient_scaler_factor_scales_every_gradient(
    make_model: ModelFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under 16-mixed Lightning unscales the gradients after backward: every gradient of the
    gradient-level pass must carry the scaler's factor, and the strategy must see the true
    Jacobian (checked by the weights, which a scaled Jacobian would change for GradNorm)."""
    plain = _step(make_model("gradnorm"))
    model = make_model("gradnorm")
    monkeypatch.setattr(CMIModel, "_gradient_scale", lambda self: 1024.0)
    scaled = _step(model)
    assert set(scaled) == set(plain)
    for name, grad in plain.items():
        torch.testing.assert_close(scaled[name], grad * 1024.0, msg=name, rtol=1e-4, atol=1e-6)


def test_loss_level_strategies_log_gradient_stats_only_when_asked(
    make_model: ModelFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged: dict[str, Tensor] = {}
    monkeypatch.setattr(CMIModel, "log_dict", lambda self, values, **kw: logged.update(values))
    _step(make_model("none"))
    assert not [k for k in logged if k.startswith("grad/")]
    model = make_model("none")
    loss = model.loss_cfg
    model.loss_cfg = type(loss)(weighting=type(loss.weighting)(monitor_gradients=True))
    _step(model)
    terms = model.weighting.terms
    assert {f"grad/norm/{t}" for t in terms} <= set(logged)
    assert "grad/cosine/multiclass__binary" in logged
    assert -1.0 <= float(logged["grad/cosine/multiclass__binary"]) <= 1.0
