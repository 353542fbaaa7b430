"""``rlw``: the contract kit, simplex weights, one draw per step, reproducible per seed."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import cmi_core
from cmi_core.testing import WeightingContract

TERMS = ("multiclass", "binary", "nine_class", "kl")


class TestRLWWeighting(WeightingContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "rlw"


class TestRLWDirichlet(WeightingContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "rlw"

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"distribution": "dirichlet", "concentration": 0.5}


def _draws(seed: int, steps: int, **options: Any) -> torch.Tensor:
    torch.manual_seed(seed)
    rlw = cmi_core.build_weighting("rlw", TERMS, **options)
    draws = []
    for _ in range(steps):
        draws.append(torch.stack([w for w in rlw.effective_weights().values()]))
        rlw.after_optimizer_step()
    return torch.stack(draws)


@pytest.mark.parametrize("options", [{}, {"distribution": "dirichlet", "concentration": 0.3}])
def test_weights_lie_on_the_probability_simplex_and_vary(options: dict[str, Any]) -> None:
    draws = _draws(0, 200, **options)
    assert (draws >= 0).all()
    torch.testing.assert_close(draws.sum(dim=1), torch.ones(200))
    assert (draws.std(dim=0) > 0.05).all()  # every term's weight moves from step to step
    torch.testing.assert_close(draws.mean(dim=0), torch.full((4,), 0.25), atol=0.05, rtol=0)


def test_normal_weights_are_the_softmax_of_a_scaled_normal_sample() -> None:
    torch.manual_seed(7)
    expected = torch.softmax(3.0 * torch.randn(4), dim=0)
    torch.testing.assert_close(_draws(7, 1, std=3.0)[0], expected)


@pytest.mark.parametrize("distribution", ["normal", "dirichlet"])
def test_draws_are_reproducible_per_seed(distribution: str) -> None:
    first = _draws(3, 10, distribution=distribution)
    assert torch.equal(first, _draws(3, 10, distribution=distribution))
    assert not torch.equal(first, _draws(4, 10, distribution=distribution))


def test_one_draw_per_optimizer_step_and_the_mean_in_validation() -> None:
    rlw = cmi_core.build_weighting("rlw", TERMS)
    losses = {t: torch.tensor(v) for t, v in zip(TERMS, [2.0, 0.5, 1.0, 0.1], strict=True)}
    weights = torch.stack(list(rlw.effective_weights().values()))
    expected = float((weights * torch.tensor([2.0, 0.5, 1.0, 0.1])).sum())
    assert float(rlw(losses)) == pytest.approx(expected)
    assert float(rlw(losses)) == pytest.approx(expected)  # same step, same weights
    rlw.after_optimizer_step()
    assert float(rlw(losses)) != pytest.approx(expected)
    assert float(rlw.eval()(losses)) == pytest.approx((2.0 + 0.5 + 1.0 + 0.1) / 4)


def test_bad_options_are_one_line_config_errors() -> None:
    with pytest.raises(cmi_core.ConfigError, match=r"distribution: unknown value 'gauss'"):
        cmi_core.build_weighting("rlw", TERMS, distribution="gauss")
    with pytest.raises(cmi_core.ConfigError, match=r"std: must be in \[0.001, 100.0\], got 0.0"):
        cmi_core.build_weighting("rlw", TERMS, std=0.0)
