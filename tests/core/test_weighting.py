"""The exact formula of each built-in weighting strategy, against hand computations."""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch

import cmi_core
from cmi_core.weighting import TERMS


def _losses(values: dict[str, float]) -> dict[str, torch.Tensor]:
    return {t: torch.tensor(v, requires_grad=True) for t, v in values.items()}


def _set(weighting: torch.nn.Module, values: dict[str, float]) -> None:
    params = dict(weighting.named_parameters())
    with torch.no_grad():
        for name, value in values.items():
            params[name].fill_(value)


@pytest.mark.parametrize("alpha", [0.5, 0.3, 0.85])
@pytest.mark.parametrize(
    "terms", [TERMS, ("multiclass", "binary", "nine_class"), ("multiclass", "binary")]
)
def test_none_is_bit_identical_to_the_fixed_formula(alpha: float, terms: tuple) -> None:
    generator = torch.Generator().manual_seed(3)
    raw = torch.rand(50, 4, generator=generator) * 3
    weighting = cmi_core.build_weighting(
        "none", terms, alpha=alpha, nine_class_loss_weight=0.2, kl_weight=0.1
    )
    for l18, lbin, l9, lkl in raw:
        expected = alpha * l18 + (1 - alpha) * lbin
        if "nine_class" in terms:
            expected = expected + 0.2 * l9
        if "kl" in terms:
            expected = expected + 0.1 * lkl
        losses = dict(zip(TERMS, (l18, lbin, l9, lkl), strict=True))
        assert torch.equal(weighting({t: losses[t] for t in terms}), expected)


def test_uncertainty_kendall_formula() -> None:
    weighting = cmi_core.build_weighting("uncertainty")
    s = {"multiclass": 0.3, "binary": -0.2, "nine_class": 1.0, "kl": -1.5}
    losses = {"multiclass": 2.0, "binary": 0.5, "nine_class": 1.2, "kl": 0.1}
    _set(weighting, {f"s.{t}": v for t, v in s.items()})
    expected = sum(math.exp(-s[t]) * losses[t] + s[t] for t in TERMS)
    assert weighting(_losses(losses)).item() == pytest.approx(expected, rel=1e-6)
    weights = {t: float(w) for t, w in weighting.effective_weights().items()}
    assert weights == pytest.approx({t: math.exp(-s[t]) for t in TERMS}, rel=1e-6)
    assert {k: float(v) for k, v in weighting.raw_values().items()} == pytest.approx(
        {f"s_{t}": v for t, v in s.items()}
    )


def test_uncertainty_total_goes_negative_at_its_optimum_for_small_losses() -> None:
    # The optimum of exp(-s)*L + s is s = ln L, where the term is 1 + ln L: negative for L < 1/e.
    losses = {"multiclass": 0.2, "binary": 0.1, "nine_class": 0.3, "kl": 0.02}
    weighting = cmi_core.build_weighting("uncertainty")
    _set(weighting, {f"s.{t}": math.log(v) for t, v in losses.items()})
    tensors = _losses(losses)
    total = weighting(tensors)
    assert total.item() == pytest.approx(sum(1 + math.log(v) for v in losses.values()), rel=1e-6)
    assert total.item() < 0
    total.backward()
    for name, param in weighting.named_parameters():
        assert abs(param.grad.item()) < 1e-6, f"{name} is not at its optimum"


def test_uncertainty_liebel_formula_stays_non_negative() -> None:
    weighting = cmi_core.build_weighting("uncertainty", variant="liebel")
    s = {"multiclass": 0.3, "binary": -0.2, "nine_class": 1.0, "kl": -1.5}
    losses = {"multiclass": 2.0, "binary": 0.5, "nine_class": 1.2, "kl": 0.1}
    _set(weighting, {f"s.{t}": v for t, v in s.items()})
    # L / (2 sigma^2) + ln(1 + sigma^2) with sigma^2 = exp(s)
    expected = sum(losses[t] / (2 * math.exp(s[t])) + math.log(1 + math.exp(s[t])) for t in TERMS)
    assert weighting(_losses(losses)).item() == pytest.approx(expected, rel=1e-6)
    generator = torch.Generator().manual_seed(0)
    for _ in range(100):
        values = (torch.rand(8, generator=generator) * 20 - 10).tolist()
        _set(weighting, {f"s.{t}": v for t, v in zip(TERMS, values[:4], strict=True)})
        small = {t: abs(v) / 10 for t, v in zip(TERMS, values[4:], strict=True)}
        assert weighting(_losses(small)).item() >= 0


def test_uncertainty_init_value_is_clamped_into_the_range() -> None:
    weighting = cmi_core.build_weighting("uncertainty", init_value=5.0, clamp=[-1.0, 2.0])
    assert all(float(v) == 2.0 for v in weighting.raw_values().values())


@pytest.mark.parametrize("variant", ["kendall", "liebel"])
def test_uncertainty_init_from_fixed_starts_at_the_fixed_weights(variant: str) -> None:
    weighting = cmi_core.build_weighting(
        "uncertainty",
        alpha=0.5,
        nine_class_loss_weight=0.2,
        kl_weight=0.1,
        variant=variant,
        init_from_fixed=True,
        init_value=3.0,  # ignored when starting from the fixed weights
    )
    weights = {t: float(w) for t, w in weighting.effective_weights().items()}
    expected = {"multiclass": 0.5, "binary": 0.5, "nine_class": 0.2, "kl": 0.1}
    assert weights == pytest.approx(expected)
    if variant == "kendall":  # s_i = -ln w_i, by hand
        assert float(weighting.raw_values()["s_kl"]) == pytest.approx(-math.log(0.1))


def test_uncertainty_init_from_fixed_starts_a_zero_weight_at_the_top_of_the_clamp() -> None:
    weighting = cmi_core.build_weighting(
        "uncertainty", alpha=1.0, init_from_fixed=True, clamp=[-4.0, 4.0]
    )
    assert float(weighting.raw_values()["s_binary"]) == 4.0


def test_direct_starts_at_the_fixed_weights_and_follows_the_formula() -> None:
    weighting = cmi_core.build_weighting(
        "direct", alpha=0.3, nine_class_loss_weight=0.2, kl_weight=0.05
    )
    weights = {t: float(w) for t, w in weighting.effective_weights().items()}
    expected_weights = {"multiclass": 0.3, "binary": 0.7, "nine_class": 0.2, "kl": 0.05}
    assert weights == pytest.approx(expected_weights, rel=1e-6)
    _set(weighting, {"raw.alpha": 1.0, "raw.w9": -0.5, "raw.wkl": 0.25})
    alpha = 1 / (1 + math.exp(-1.0))
    losses = {"multiclass": 2.0, "binary": 0.5, "nine_class": 1.2, "kl": 0.1}
    expected = alpha * 2.0 + (1 - alpha) * 0.5 + math.exp(-0.5) * 1.2 + math.exp(0.25) * 0.1
    assert weighting(_losses(losses)).item() == pytest.approx(expected, rel=1e-6)


def test_direct_collapse_is_detected_and_warned_once_with_the_values() -> None:
    # Minimising the weighted sum pushes w9 and wkl down: plain gradient steps show it.
    weighting = cmi_core.build_weighting("direct", collapse_threshold=0.05)
    optimizer = torch.optim.SGD(weighting.parameters(), lr=1.0)
    losses = {"multiclass": 2.0, "binary": 0.5, "nine_class": 1.2, "kl": 0.8}
    history = []
    with pytest.warns(
        UserWarning, match=r"collapse_threshold=0\.05 \(multiclass=.*, nine_class=0\.04"
    ) as caught:
        for _ in range(40):
            optimizer.zero_grad()
            weighting(_losses(losses)).backward()
            optimizer.step()
            weighting.after_optimizer_step()
            history.append(float(weighting.effective_weights()["nine_class"]))
    assert len([w for w in caught if "collapse_threshold" in str(w.message)]) == 1
    assert all(b < a for a, b in itertools.pairwise(history))
    assert float(weighting.effective_weights()["multiclass"]) < 0.5  # toward the smaller loss


def test_direct_collapse_warning_can_be_disabled() -> None:
    weighting = cmi_core.build_weighting("direct", collapse_threshold=0.0)
    _set(weighting, {"raw.w9": -9.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weighting.after_optimizer_step()


def test_unknown_option_and_bad_values_are_one_line_config_errors() -> None:
    with pytest.raises(cmi_core.ConfigError, match="did you mean 'clamp'"):
        cmi_core.build_weighting("uncertainty", clamps=[-1.0, 1.0])
    with pytest.raises(cmi_core.ConfigError, match=r"variant: unknown value 'kendal'"):
        cmi_core.build_weighting("uncertainty", variant="kendal")
    with pytest.raises(cmi_core.ConfigError, match=r"clamp: low must be < high"):
        cmi_core.build_weighting("direct", clamp=[2.0, -2.0])
    with pytest.raises(cmi_core.PluginError, match="did you mean 'uncertainty'"):
        cmi_core.build_weighting("uncertanty")
