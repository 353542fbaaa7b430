"""The contract every loss-weighting plugin must meet."""

from __future__ import annotations

import math
import re
import tomllib
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import tomli_w
import torch
from torch import Tensor

from cmi_core.builders import build_weighting
from cmi_core.config import CONVERTER, WeightingConfig, config_from_dict, structure_options
from cmi_core.specs import PluginSpec, WeightingSpec
from cmi_core.testing.plugin_contract import PluginContract, reloaded
from cmi_core.weighting import TERMS, LossWeighting

# Losses far from 1 and from each other, so learnable weights get non-zero gradients
# (an uncertainty s_i has zero gradient at L_i = exp(s_i) = 1; direct's alpha at L18 = Lbin).
LOSSES = {"multiclass": 2.5, "binary": 0.4, "nine_class": 1.7, "kl": 0.05}
# Terms of a model without the 9-class head, without KL, and with everything.
TERM_SETS = (("multiclass", "binary"), ("multiclass", "binary", "nine_class"), TERMS)
_LOG_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
TINY, HUGE = 1e-8, 1e8
# Loss magnitudes a strategy must survive: all equal at both ends, one term huge and the
# others tiny (each term in turn), and a spread over the whole range.
EXTREMES: dict[str, Callable[[str], float]] = {
    "all_zero": lambda term: 0.0,
    "all_tiny": lambda term: TINY,
    "all_huge": lambda term: HUGE,
    **{f"only_{t}_huge": (lambda term, t=t: HUGE if term == t else TINY) for t in TERMS},
    "spread": lambda term: 10.0 ** (-8 + 16 * TERMS.index(term) / (len(TERMS) - 1)),
}
REFERENCE_DRAWS = 5
TRAINING_STEPS = 3

Build = Callable[..., LossWeighting]


def make_losses(terms: Sequence[str]) -> dict[str, Tensor]:
    """Leaf loss tensors (with grad) for ``terms``, with the values of ``LOSSES``."""
    return {t: torch.tensor(LOSSES[t], requires_grad=True) for t in terms}


def _state(weighting: LossWeighting) -> dict[str, Tensor]:
    """A copy of everything the strategy keeps: parameters and buffers (persistent or not)."""
    kept = dict(weighting.named_parameters()) | dict(weighting.named_buffers())
    return {name: value.detach().clone() for name, value in kept.items()}


def _train_steps(weighting: LossWeighting, steps: int = TRAINING_STEPS) -> None:
    """What the trainer does per step: forward, backward, optimizer step, the plugin's hook."""
    weighting.train()
    params = list(weighting.parameters())
    optimizer = torch.optim.AdamW(params, lr=0.01, weight_decay=0.0) if params else None
    for step in range(steps):
        losses = {t: torch.tensor(v * (1.0 + step), requires_grad=True) for t, v in LOSSES.items()}
        weighting({t: losses[t] for t in weighting.terms}).backward()
        if optimizer is not None:
            optimizer.step()
            optimizer.zero_grad()
        weighting.after_optimizer_step()


def _as_float(value: Tensor | float) -> float:
    return float(value.item() if isinstance(value, Tensor) else value)


def _set_all(weighting: LossWeighting, value: float) -> None:
    with torch.no_grad():
        for param in weighting.parameters():
            param.fill_(value)


class WeightingContract(PluginContract):
    """Checks of a ``LossWeighting`` plugin; override the ``plugin_name`` fixture."""

    kind = "weighting"

    @pytest.fixture
    def build(
        self, plugin_name: str, plugin_options: dict[str, Any], plugin_modules: Sequence[str]
    ) -> Build:
        """``build(terms=TERMS)``: the plugin as the trainer builds it (exp025's fixed weights)."""

        def build(terms: Sequence[str] = TERMS) -> LossWeighting:
            return build_weighting(
                plugin_name,
                terms,
                alpha=0.5,
                nine_class_loss_weight=0.2,
                kl_weight=0.1,
                modules=plugin_modules,
                **plugin_options,
            )

        return build

    @pytest.fixture
    def options(self, spec: PluginSpec, plugin_options: dict[str, Any]) -> Any:
        return structure_options(spec.config_cls, plugin_options, where="options")

    def test_is_a_loss_weighting_over_its_terms(self, build: Build) -> None:
        weighting = build()
        assert isinstance(weighting, LossWeighting), (
            f"the factory returned a {type(weighting).__name__}: a weighting plugin must build "
            "a cmi_core.LossWeighting"
        )
        assert weighting.terms == TERMS, (
            f"built for terms {TERMS} its terms are {weighting.terms}: pass the terms to "
            "LossWeighting.__init__ unchanged"
        )

    def test_built_strategy_is_at_its_declared_level(self, spec: PluginSpec, build: Build) -> None:
        assert isinstance(spec, WeightingSpec), "a weighting plugin registers a WeightingSpec"
        level, built = spec.level, build().kind
        assert built == level, (
            f"the spec says level {level!r} but the factory built a {built!r}-level strategy: "
            "gradient-level strategies subclass cmi_core.GradientWeighting and take options "
            "that inherit cmi_core.GradientOptions (or declare WeightingSpec(level=...))"
        )

    def test_total_is_a_finite_scalar_with_grad(self, build: Build) -> None:
        total = build()(make_losses(TERMS))
        assert isinstance(total, Tensor) and total.ndim == 0, (
            f"forward returned {total!r}: the total must be a 0-d tensor"
        )
        assert torch.isfinite(total), f"the total is {total.item()}: it must be finite"
        assert total.requires_grad, "the total has no autograd graph: it must depend on the losses"

    def test_every_active_loss_gets_a_nonzero_gradient(self, build: Build) -> None:
        losses = make_losses(TERMS)
        build()(losses).backward()
        for term, loss in losses.items():
            grad = None if loss.grad is None else loss.grad.item()
            assert grad is not None and grad != 0.0 and math.isfinite(grad), (
                f"d total / d {term} = {grad}: every active loss must get a non-zero, finite "
                "gradient (the total must depend on each term)"
            )

    def test_declares_whether_it_learns(self, build: Build) -> None:
        weighting = build()
        params = [name for name, _ in weighting.named_parameters()]
        assert not params or weighting.learns, (
            f"{type(weighting).__name__} has learnable parameters {params} but declares "
            "learns = False: a strategy whose weights change in training must set learns = True"
        )

    def test_state_changes_after_a_step_exactly_when_it_learns(self, build: Build) -> None:
        weighting = build()
        before = _state(weighting)
        _train_steps(weighting)
        after = _state(weighting)
        changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
        if weighting.learns:
            assert changed, (
                f"declares learns = True but its state (parameters and buffers: {sorted(before)}) "
                f"did not change after {TRAINING_STEPS} training steps: a learning strategy must "
                "update its parameters or buffers"
            )
        else:
            assert not changed, (
                f"declares learns = False but its state changed in training ({changed}): a "
                "strategy whose parameters or buffers change must declare learns = True"
            )

    def test_every_parameter_gets_a_finite_gradient_and_moves(self, build: Build) -> None:
        weighting = build()
        params = dict(weighting.named_parameters())
        if not params:
            pytest.skip("the strategy has no learnable parameters")
        before = {name: p.detach().clone() for name, p in params.items()}
        weighting(make_losses(TERMS)).backward()
        for name, param in params.items():
            assert param.grad is not None, (
                f"parameter {name} gets no gradient: every learnable parameter must take part "
                "in the total"
            )
            assert torch.isfinite(param.grad).all(), f"{name}: gradient {param.grad} is not finite"
        torch.optim.AdamW(params.values(), lr=0.01, weight_decay=0.0).step()
        weighting.after_optimizer_step()
        unchanged = [name for name, p in params.items() if torch.equal(p, before[name])]
        assert not unchanged, (
            f"parameters unchanged after an optimizer step: {unchanged}; a learnable parameter "
            "must move when it gets a gradient"
        )

    @pytest.mark.parametrize("extreme", list(EXTREMES))
    def test_extreme_losses_stay_finite(self, build: Build, extreme: str) -> None:
        weighting = build()
        losses = {t: torch.tensor(EXTREMES[extreme](t), requires_grad=True) for t in TERMS}
        shown = {t: v.item() for t, v in losses.items()}
        total = weighting(losses)
        assert torch.isfinite(total), (
            f"the total is {total.item()} for losses {shown}: the total and its gradients must "
            f"stay finite for any loss from 0 to {HUGE:g}, mixed magnitudes included"
        )
        total.backward()
        grads = {t: v.grad for t, v in losses.items()}
        grads.update({n: p.grad for n, p in weighting.named_parameters()})
        bad = sorted(n for n, g in grads.items() if g is not None and not torch.isfinite(g).all())
        assert not bad, (
            f"non-finite gradients for {bad} at losses {shown}: the total and its "
            f"gradients must stay finite for any loss from 0 to {HUGE:g}"
        )

    @pytest.mark.parametrize("side", ["low", "high"])
    def test_parameters_stay_in_the_declared_range(self, build: Build, side: str) -> None:
        weighting = build()
        declared = weighting.parameter_range()
        if declared is None or not list(weighting.parameters()):
            pytest.skip("the strategy declares no parameter_range() for learnable parameters")
        low, high = declared
        edge, beyond = (low, low - 100.0) if side == "low" else (high, high + 100.0)
        losses = make_losses(TERMS)
        _set_all(weighting, edge)
        at_edge = weighting(losses)
        _set_all(weighting, beyond)
        assert torch.equal(weighting(losses), at_edge), (
            f"parameters at {beyond} give another total than at the edge {edge}: the forward "
            f"pass must clamp to the declared parameter_range() ({low}, {high})"
        )
        with warnings.catch_warnings():  # weights at the edge may trigger the plugin's warnings
            warnings.simplefilter("ignore")
            weighting.after_optimizer_step()
        for name, param in weighting.named_parameters():
            assert low <= param.min() and param.max() <= high, (
                f"{name} = {param.detach()} after after_optimizer_step(): parameters must be "
                f"projected back into the declared parameter_range() ({low}, {high})"
            )

    @pytest.mark.parametrize("terms", TERM_SETS, ids=["no_nine_class_head", "no_kl", "all"])
    def test_forward_matches_the_reference_formula(
        self, build: Build, terms: tuple[str, ...]
    ) -> None:
        weighting = build(terms)
        if weighting.reference_total(dict.fromkeys(terms, 1.0)) is None:
            pytest.skip("the strategy states no reference formula (LossWeighting.reference_total)")
        generator = torch.Generator().manual_seed(0)
        low, high = _draw_range(weighting.parameter_range())
        for _ in range(REFERENCE_DRAWS):
            with torch.no_grad():
                for param in weighting.parameters():
                    param.uniform_(low, high, generator=generator)
            exponents = torch.empty(len(terms)).uniform_(-3.0, 2.0, generator=generator)
            values = {t: 10.0 ** e.item() for t, e in zip(terms, exponents, strict=True)}
            expected = weighting.reference_total(values)
            total = weighting({t: torch.tensor(v) for t, v in values.items()}).item()
            assert total == pytest.approx(expected, rel=1e-4, abs=1e-5), (
                f"forward gives {total} but reference_total() gives {expected} for losses "
                f"{values} and raw values {_floats(weighting.raw_values())}: forward must "
                "compute the strategy's documented formula"
            )

    def test_state_dict_round_trip(self, build: Build) -> None:
        trained = build()
        for _ in range(3):
            trained(make_losses(TERMS)).backward()
            with torch.no_grad():
                for param in trained.parameters():
                    param -= 0.1 * param.grad
            trained.after_optimizer_step()
        restored = reloaded(trained, build())
        losses = make_losses(TERMS)
        assert torch.equal(restored(losses), trained(losses)), (
            "a strategy restored from its state_dict gives another total: everything forward "
            "depends on must be a parameter or a persistent buffer"
        )
        restored_weights = _floats(restored.effective_weights())
        trained_weights = _floats(trained.effective_weights())
        assert restored_weights == trained_weights, (
            f"effective weights {restored_weights} after loading the state_dict, "
            f"{trained_weights} before: everything they depend on must be in the state_dict"
        )

    def test_deterministic_for_a_seed(self, build: Build) -> None:
        def run() -> list[float]:
            torch.manual_seed(0)
            weighting = build()
            params = list(weighting.parameters())
            optimizer = torch.optim.AdamW(params, lr=0.01) if params else None
            totals = []
            for _ in range(3):
                total = weighting(make_losses(TERMS))
                totals.append(total.item())
                if optimizer is not None:
                    total.backward()
                    optimizer.step()
                    optimizer.zero_grad()
                weighting.after_optimizer_step()
            return totals + [v for p in params for v in p.detach().flatten().tolist()]

        first, second = run(), run()
        assert first == second, (
            f"two runs from seed 0 differ ({first} vs {second}): a strategy must be "
            "deterministic for a seed"
        )

    @pytest.mark.parametrize("terms", TERM_SETS, ids=["no_nine_class_head", "no_kl", "all"])
    def test_parameters_only_for_active_terms(self, build: Build, terms: tuple[str, ...]) -> None:
        weighting = build(terms)
        weighted = set(weighting.effective_weights())
        assert weighted == set(terms), (
            f"effective_weights() names {sorted(weighted)} for active terms {terms}: it must "
            "name exactly the active terms"
        )
        weighting(make_losses(terms)).backward()
        orphans = [name for name, p in weighting.named_parameters() if p.grad is None]
        assert not orphans, f"parameters for inactive terms (no gradient from {terms}): {orphans}"

    def test_logged_values_are_flat_finite_scalars(self, build: Build) -> None:
        weighting = build()
        weighting(make_losses(TERMS)).backward()
        for name, value in {**weighting.effective_weights(), **weighting.raw_values()}.items():
            assert _LOG_NAME.match(name), (
                f"{name!r} is not a flat lowercase tag: logged names must match {_LOG_NAME.pattern}"
            )
            if isinstance(value, Tensor):
                assert value.ndim == 0 and not value.requires_grad, (
                    f"{name}: {value!r}; logged values must be detached 0-d tensors or floats"
                )
            assert math.isfinite(_as_float(value)), (
                f"{name} = {value}: logged values must be finite"
            )

    def test_options_round_trip_through_the_config(
        self, spec: PluginSpec, options: Any, plugin_modules: Sequence[str]
    ) -> None:
        table = CONVERTER.unstructure(options)
        core = {f.name for f in WeightingConfig.__attrs_attrs__}
        assert spec.name not in core, (
            f"the name {spec.name!r} clashes with [loss.weighting]'s own keys; rename the plugin"
        )
        text = tomli_w.dumps(
            {
                "loss": {"weighting": {"strategy": spec.name, spec.name: table}},
                "plugins": {"modules": list(plugin_modules)},
            }
        )
        cfg = config_from_dict(tomllib.loads(text), source="round-trip")
        assert cfg.loss.weighting.options == options, (
            f"options {options} came back from a TOML round trip as "
            f"{cfg.loss.weighting.options}: every option must survive the config file"
        )


def _draw_range(declared: tuple[float, float] | None) -> tuple[float, float]:
    """Where to draw random raw values: the declared range, cut to [-3, 3] when it is wider."""
    low, high = declared or (-1.0, 1.0)
    cut = max(low, -3.0), min(high, 3.0)
    return cut if cut[0] < cut[1] else (low, high)


def _floats(values: dict[str, Tensor | float]) -> dict[str, float]:
    return {name: _as_float(value) for name, value in values.items()}
