"""``gls``: the contract kit and the closed form (Chennupati et al. 2019)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import cmi_core
from cmi_core.testing import WeightingContract

TERMS = ("multiclass", "binary", "nine_class", "kl")


class TestGLSWeighting(WeightingContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "gls"


class TestGLSAllTermsBalanced(WeightingContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "gls"

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"kl_fixed": False, "eps": 1e-6}


@pytest.mark.parametrize("n_terms", [2, 3, 4])
def test_total_and_gradient_are_the_geometric_mean_in_closed_form(n_terms: int) -> None:
    terms = TERMS[:n_terms]
    values = [2.3, 0.41, 1.7, 0.06][:n_terms]
    losses = {
        t: torch.tensor(v, dtype=torch.float64, requires_grad=True)
        for t, v in zip(terms, values, strict=True)
    }
    gls = cmi_core.build_weighting("gls", terms, eps=1e-12, kl_fixed=False)
    total = gls(losses)
    expected = math.prod(values) ** (1 / n_terms)
    assert total.item() == pytest.approx(expected, rel=1e-9)
    total.backward()
    for term, value in zip(terms, values, strict=True):  # d total / d L_i = total / (n L_i)
        assert float(losses[term].grad) == pytest.approx(expected / (n_terms * value), rel=1e-9)
    weights = gls.effective_weights()
    assert sum(float(weights[t]) * v for t, v in zip(terms, values, strict=True)) == pytest.approx(
        expected
    )


def test_scaling_one_loss_scales_the_total_by_its_nth_root() -> None:
    gls = cmi_core.build_weighting("gls", TERMS)
    losses = {t: torch.tensor(v) for t, v in zip(TERMS, [2.0, 0.5, 1.0, 0.1], strict=True)}
    base = float(gls(losses))
    scaled = float(gls({**losses, "nine_class": losses["nine_class"] * 27.0}))
    held = 0.1 * 0.1  # wkl * Lkl, outside the product of the other three terms
    assert scaled - held == pytest.approx((base - held) * 27.0 ** (1 / 3), rel=1e-6)


def test_kl_is_held_at_its_fixed_weight_by_default() -> None:
    gls = cmi_core.build_weighting("gls", TERMS, kl_weight=0.3)
    values = [2.0, 0.5, 1.0, 0.004]
    losses = {t: torch.tensor(v, requires_grad=True) for t, v in zip(TERMS, values, strict=True)}
    total = gls(losses)
    total.backward()
    product = (2.0 * 0.5 * 1.0) ** (1 / 3)
    assert total.item() == pytest.approx(product + 0.3 * 0.004, rel=1e-6)
    assert losses["kl"].grad.item() == pytest.approx(0.3)
    weights = {t: float(w) for t, w in gls.effective_weights().items()}
    assert weights == pytest.approx(
        {"multiclass": product / 6, "binary": product / 1.5, "nine_class": product / 3, "kl": 0.3}
    )


def test_zero_and_tiny_negative_losses_stay_finite() -> None:
    gls = cmi_core.build_weighting("gls", TERMS)
    losses = {
        t: torch.tensor(v, requires_grad=True)
        for t, v in zip(TERMS, [1.0, 0.0, 2.0, -1e-9], strict=True)
    }
    total = gls(losses)
    total.backward()
    assert torch.isfinite(total)
    assert all(torch.isfinite(loss.grad) for loss in losses.values())


def test_eps_out_of_range_is_a_config_error() -> None:
    with pytest.raises(cmi_core.ConfigError, match=r"eps: must be in \[1e-12, 0.01\], got 0.0"):
        cmi_core.build_weighting("gls", TERMS, eps=0.0)
