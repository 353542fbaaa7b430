"""``famo``: the contract kit and one update step against the paper (Liu et al. 2023, Alg. 1)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import cmi_core
from cmi_core.testing import WeightingContract

TERMS = ("multiclass", "binary")
ALPHA, BETA, GAMMA = 0.1, 0.5, 0.2  # model lr, logit lr, decay: large, so every term counts
XI0 = [0.3, -0.2]


class TestFAMOWeighting(WeightingContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "famo"


class TestFAMOPaperUpdate(WeightingContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "famo"

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"logit_optimizer": "sgd", "logit_lr": 0.5, "decay": 0.0, "kl_fixed": False}


def _task_losses(theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """Two conflicting quadratic tasks on a 2-d parameter."""
    return {
        "multiclass": (theta[0] - 1) ** 2 + theta[1] ** 2 + 0.5,
        "binary": (theta[0] + 1) ** 2 + 2 * theta[1] ** 2 + 0.1,
    }


def _famo(**options: Any) -> cmi_core.LossWeighting:
    famo = cmi_core.build_weighting("famo", TERMS, logit_lr=BETA, decay=GAMMA, **options)
    famo.logits.copy_(torch.tensor(XI0))
    return famo


def _one_model_step(famo: cmi_core.LossWeighting) -> tuple[list[float], list[float], list[float]]:
    """theta_1 = theta_0 - alpha * grad(total); returns theta_0's grad, L(theta_0), L(theta_1)."""
    theta = torch.tensor([0.5, 0.8], requires_grad=True)
    before = _task_losses(theta)
    famo(before).backward()
    grad = theta.grad.tolist()
    with torch.no_grad():
        theta -= ALPHA * theta.grad
    famo.after_optimizer_step()
    after = _task_losses(theta.detach())
    famo(after)  # the next forward pass applies the logit update
    return grad, [v.item() for v in before.values()], [v.item() for v in after.values()]


def _softmax(xi: list[float]) -> list[float]:
    exps = [math.exp(x) for x in xi]
    return [e / sum(exps) for e in exps]


def _logit_gradient(z: list[float], before: list[float], after: list[float]) -> list[float]:
    """``J_softmax^T delta + gamma xi`` with ``J = diag(z) - z z^T`` written out."""
    delta = [math.log(b) - math.log(a) for b, a in zip(before, after, strict=True)]
    jacobian = [[(z[i] if i == j else 0.0) - z[i] * z[j] for j in range(2)] for i in range(2)]
    return [sum(jacobian[i][j] * delta[i] for i in range(2)) + GAMMA * XI0[j] for j in range(2)]


def test_model_gradient_is_c_times_the_log_loss_gradient() -> None:
    famo = _famo(logit_optimizer="sgd")
    grad, before, _ = _one_model_step(famo)
    z = _softmax(XI0)
    c = 1 / sum(zi / li for zi, li in zip(z, before, strict=True))
    theta = [0.5, 0.8]
    task_grads = [[2 * (theta[0] - 1), 2 * theta[1]], [2 * (theta[0] + 1), 4 * theta[1]]]
    expected = [c * sum(z[i] / before[i] * task_grads[i][k] for i in range(2)) for k in range(2)]
    assert grad == pytest.approx(expected, rel=1e-5)


def test_one_logit_step_follows_the_papers_rule() -> None:
    famo = _famo(logit_optimizer="sgd")
    _, before, after = _one_model_step(famo)
    gradient = _logit_gradient(_softmax(XI0), before, after)
    expected = [x - BETA * g for x, g in zip(XI0, gradient, strict=True)]
    assert famo.logits.tolist() == pytest.approx(expected, rel=1e-5)


def test_the_task_whose_log_loss_fell_less_gains_weight() -> None:
    famo = cmi_core.build_weighting("famo", TERMS, logit_optimizer="sgd", decay=0.0)
    _, before, after = _one_model_step(famo)
    drops = [math.log(b / a) for b, a in zip(before, after, strict=True)]
    z = torch.softmax(famo.logits, dim=0).tolist()
    slower = drops.index(min(drops))
    assert drops[slower] < drops[1 - slower] and z[slower] > 0.5 > z[1 - slower]


def test_one_adam_logit_step_is_the_sign_of_the_gradient() -> None:
    famo = _famo()
    _, before, after = _one_model_step(famo)
    gradient = _logit_gradient(_softmax(XI0), before, after)
    expected = [x - BETA * g / (abs(g) + 1e-8) for x, g in zip(XI0, gradient, strict=True)]
    assert famo.logits.tolist() == pytest.approx(expected, rel=1e-5)


def test_adam_steps_match_the_official_update_procedure() -> None:
    """Reference: the official code's autograd of softmax and ``torch.optim.Adam``."""
    xi = torch.tensor(XI0, requires_grad=True)
    optimizer = torch.optim.Adam([xi], lr=BETA, weight_decay=GAMMA)
    famo = _famo()
    history = [[2.0, 0.5], [1.8, 0.49], [1.7, 0.3], [1.75, 0.2]]
    famo({t: torch.tensor(v) for t, v in zip(TERMS, history[0], strict=True)})
    for previous, current in itertools.pairwise(history):
        famo.after_optimizer_step()
        famo({t: torch.tensor(v) for t, v in zip(TERMS, current, strict=True)})
        delta = torch.tensor(previous).log() - torch.tensor(current).log()
        (grad,) = torch.autograd.grad(F.softmax(xi, -1), xi, grad_outputs=delta)
        optimizer.zero_grad()
        xi.grad = grad
        optimizer.step()
        torch.testing.assert_close(famo.logits, xi.detach())


def test_logits_move_only_after_an_optimizer_step_and_never_in_validation() -> None:
    famo = _famo()
    losses = {"multiclass": torch.tensor(2.0), "binary": torch.tensor(0.5)}
    famo(losses)
    famo({"multiclass": torch.tensor(1.0), "binary": torch.tensor(0.4)})  # no step in between
    assert famo.logits.tolist() == pytest.approx(XI0)
    famo.after_optimizer_step()
    famo.eval()({"multiclass": torch.tensor(0.1), "binary": torch.tensor(0.1)})
    assert famo.logits.tolist() == pytest.approx(XI0)
    famo.train()(losses)
    assert famo.logits.tolist() != pytest.approx(XI0)


def test_kl_is_held_at_its_fixed_weight_by_default() -> None:
    all_terms = ("multiclass", "binary", "nine_class", "kl")
    famo = cmi_core.build_weighting("famo", all_terms, kl_weight=0.3)
    values = [2.0, 0.5, 1.0, 0.004]
    losses = {
        t: torch.tensor(v, requires_grad=True) for t, v in zip(all_terms, values, strict=True)
    }
    total = famo(losses)
    total.backward()
    c = 1 / sum((1 / 3) / v for v in values[:3])  # z = 1/3 over the three balanced terms
    balanced = c * sum(math.log(v) / 3 for v in values[:3])
    assert total.item() == pytest.approx(balanced + 0.3 * 0.004, rel=1e-5)
    assert losses["kl"].grad.item() == pytest.approx(0.3)
    assert set(famo.raw_values()) == {"logit_multiclass", "logit_binary", "logit_nine_class"}
    assert float(famo.effective_weights()["kl"]) == pytest.approx(0.3)


def test_bad_options_are_one_line_config_errors() -> None:
    with pytest.raises(cmi_core.ConfigError, match=r"logit_optimizer: unknown value 'adamw'"):
        cmi_core.build_weighting("famo", TERMS, logit_optimizer="adamw")
    with pytest.raises(cmi_core.ConfigError, match=r"decay: must be in \[0.0, 10.0\], got -1.0"):
        cmi_core.build_weighting("famo", TERMS, decay=-1.0)
