"""The contract every loss-weighting plugin must meet."""

from __future__ import annotations

import io
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
from cmi_core.specs import PluginSpec
from cmi_core.testing.plugin_contract import PluginContract
from cmi_core.weighting import TERMS, LossWeighting

# Losses far from 1 and from each other, so learnable weights get non-zero gradients
# (an uncertainty s_i has zero gradient at L_i = exp(s_i) = 1; direct's alpha at L18 = Lbin).
LOSSES = {"multiclass": 2.5, "binary": 0.4, "nine_class": 1.7, "kl": 0.05}
# Terms of a model without the 9-class head, without KL, and with everything.
TERM_SETS = (("multiclass", "binary"), ("multiclass", "binary", "nine_class"), TERMS)
_LOG_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

Build = Callable[..., LossWeighting]


def make_losses(terms: Sequence[str], value: float | None = None) -> dict[str, Tensor]:
    """Leaf loss tensors (with grad) for ``terms``: ``LOSSES`` or all equal to ``value``."""
    return {
        t: torch.tensor(LOSSES[t] if value is None else value, requires_grad=True) for t in terms
    }


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
        assert isinstance(weighting, LossWeighting)
        assert weighting.terms == TERMS

    def test_total_is_a_finite_scalar_with_grad(self, build: Build) -> None:
        losses = make_losses(TERMS)
        total = build()(losses)
        assert total.ndim == 0
        assert torch.isfinite(total)
        assert total.requires_grad
        total.backward()
        for term, loss in losses.items():
            assert loss.grad is not None, f"no gradient reaches the {term} loss"
            assert torch.isfinite(loss.grad), f"{term}: gradient {loss.grad}"

    def test_every_parameter_gets_a_finite_gradient_and_moves(self, build: Build) -> None:
        weighting = build()
        params = dict(weighting.named_parameters())
        if not params:
            pytest.skip("the strategy has no learnable parameters")
        before = {name: p.detach().clone() for name, p in params.items()}
        weighting(make_losses(TERMS)).backward()
        for name, param in params.items():
            assert param.grad is not None, f"parameter {name} gets no gradient"
            assert torch.isfinite(param.grad).all(), f"{name}: gradient {param.grad}"
        torch.optim.AdamW(params.values(), lr=0.01, weight_decay=0.0).step()
        weighting.after_optimizer_step()
        unchanged = [name for name, p in params.items() if torch.equal(p, before[name])]
        assert not unchanged, f"parameters unchanged after an optimizer step: {unchanged}"

    @pytest.mark.parametrize("value", [0.0, 1e6])
    def test_extreme_losses_stay_finite(self, build: Build, value: float) -> None:
        weighting = build()
        losses = make_losses(TERMS, value)
        total = weighting(losses)
        assert torch.isfinite(total), f"total {total} for all losses = {value}"
        total.backward()
        grads = [t.grad for t in losses.values()] + [p.grad for p in weighting.parameters()]
        assert all(torch.isfinite(g).all() for g in grads if g is not None)

    @pytest.mark.parametrize("side", ["low", "high"])
    def test_clamping_holds(self, build: Build, options: Any, side: str) -> None:
        if not hasattr(options, "clamp"):
            pytest.skip("the strategy has no clamp option")
        low, high = options.clamp
        edge, beyond = (low, low - 100.0) if side == "low" else (high, high + 100.0)
        weighting = build()
        if not list(weighting.parameters()):
            pytest.skip("the strategy has no learnable parameters")
        losses = make_losses(TERMS, 1e6)
        _set_all(weighting, edge)
        at_edge = weighting(losses)
        _set_all(weighting, beyond)
        assert torch.equal(weighting(losses), at_edge), "the forward pass ignores the clamp"
        assert torch.isfinite(at_edge)
        with warnings.catch_warnings():  # weights at the edge may trigger the plugin's warnings
            warnings.simplefilter("ignore")
            weighting.after_optimizer_step()
        for name, param in weighting.named_parameters():
            assert low <= param.min() and param.max() <= high, f"{name} = {param} outside the clamp"

    def test_state_dict_round_trip(self, build: Build) -> None:
        trained = build()
        for _ in range(3):
            trained(make_losses(TERMS)).backward()
            with torch.no_grad():
                for param in trained.parameters():
                    param -= 0.1 * param.grad
            trained.after_optimizer_step()
        buffer = io.BytesIO()
        torch.save(trained.state_dict(), buffer)
        buffer.seek(0)
        restored = build()
        restored.load_state_dict(torch.load(buffer, weights_only=True))
        losses = make_losses(TERMS)
        assert torch.equal(restored(losses), trained(losses))
        assert _floats(restored.effective_weights()) == _floats(trained.effective_weights())

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

        assert run() == run()

    @pytest.mark.parametrize("terms", TERM_SETS, ids=["no_nine_class_head", "no_kl", "all"])
    def test_parameters_only_for_active_terms(self, build: Build, terms: tuple[str, ...]) -> None:
        weighting = build(terms)
        assert set(weighting.effective_weights()) == set(terms)
        weighting(make_losses(terms)).backward()
        orphans = [name for name, p in weighting.named_parameters() if p.grad is None]
        assert not orphans, f"parameters for inactive terms (no gradient from {terms}): {orphans}"

    def test_logged_values_are_flat_finite_scalars(self, build: Build) -> None:
        weighting = build()
        weighting(make_losses(TERMS)).backward()
        for name, value in {**weighting.effective_weights(), **weighting.raw_values()}.items():
            assert _LOG_NAME.match(name), f"{name!r} is not a flat lowercase tag"
            if isinstance(value, Tensor):
                assert value.ndim == 0 and not value.requires_grad, f"{name}: {value!r}"
            assert math.isfinite(_as_float(value)), f"{name} = {value}"

    def test_options_round_trip_through_the_config(
        self, spec: PluginSpec, options: Any, plugin_modules: Sequence[str]
    ) -> None:
        table = CONVERTER.unstructure(options)
        core = {f.name for f in WeightingConfig.__attrs_attrs__}
        assert spec.name not in core, f"name {spec.name!r} clashes with [loss.weighting]'s keys"
        text = tomli_w.dumps(
            {
                "loss": {"weighting": {"strategy": spec.name, spec.name: table}},
                "plugins": {"modules": list(plugin_modules)},
            }
        )
        cfg = config_from_dict(tomllib.loads(text), source="round-trip")
        assert cfg.loss.weighting.options == options


def _floats(values: dict[str, Tensor | float]) -> dict[str, float]:
    return {name: _as_float(value) for name, value in values.items()}
