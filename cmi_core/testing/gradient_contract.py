"""The contract every gradient-level weighting plugin must meet.

Each check is a plain function (``check_*``) that raises ``AssertionError`` with a sentence
saying what the plugin must do; :class:`GradientWeightingContract` runs them all as tests. A
third-party author subclasses the class and overrides ``plugin_name``::

    class TestMyStrategy(GradientWeightingContract):
        @pytest.fixture
        def plugin_name(self):
            return "my_strategy"
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
from torch import Tensor

from cmi_core.builders import build_backbone, build_weighting
from cmi_core.config import LossConfig, OptimizerConfig, structure_options
from cmi_core.errors import ConfigError
from cmi_core.specs import PluginSpec, WeightingSpec
from cmi_core.testing.plugin_contract import PluginContract, reloaded
from cmi_core.testing.weighting_contract import TERM_SETS, WeightingContract
from cmi_core.weighting import TERMS, WHERE, GradientWeighting, LossWeighting

Build = Callable[..., LossWeighting]
LOSSES = torch.tensor([2.5, 0.4, 1.7, 0.05])  # per term, in TERMS order


def _gradient(build: Build, terms: Sequence[str] = TERMS) -> GradientWeighting:
    strategy = build(terms)
    assert isinstance(strategy, GradientWeighting) and strategy.kind == "gradient", (
        "a gradient-level strategy must subclass cmi_core.GradientWeighting (kind 'gradient')"
    )
    return strategy


def _update(strategy: GradientWeighting, jacobian: Tensor, losses: Tensor = LOSSES) -> Any:
    update = strategy.update(jacobian, losses[: len(strategy.terms)])
    direction = update.direction
    assert direction.shape == (jacobian.shape[1],), (
        f"combine must return a direction of shape [{jacobian.shape[1]}], got {direction.shape}"
    )
    assert torch.isfinite(direction).all(), f"combine must return a finite direction: {direction}"
    return update


def check_kind_and_terms(build: Build) -> None:
    for terms in TERM_SETS:
        strategy = _gradient(build, terms)
        assert strategy.terms == terms, f"terms {strategy.terms} != {terms}"
        assert strategy.where in WHERE, f"where must be one of {WHERE}, got {strategy.where!r}"


def check_every_task_moves(build: Build) -> None:
    """Orthogonal task gradients of different sizes: the update must descend on every task."""
    for terms in TERM_SETS:
        strategy = _gradient(build, terms)
        scales = torch.tensor([1.0, 3.0, 0.5, 2.0])[: len(terms)]
        jacobian = torch.cat([torch.diag(scales), torch.zeros(len(terms), 3)], dim=1)
        gains = jacobian @ _update(strategy, jacobian).direction
        assert (gains > 0).all(), (
            f"every task must get a share of the update (orthogonal task gradients {terms}: "
            f"J d = {gains.tolist()}, all must be > 0)"
        )


def check_agreeing_tasks_keep_their_direction(build: Build) -> None:
    """All task gradients equal: the update must point along them."""
    strategy = _gradient(build)
    gradient = torch.tensor([0.3, -1.2, 0.7, 2.0, -0.1])
    direction = _update(strategy, gradient.expand(len(TERMS), -1).clone()).direction
    cosine = torch.nn.functional.cosine_similarity(direction, gradient, dim=0)
    assert cosine > 0.999, f"identical task gradients must give that direction (cosine {cosine})"


def check_extreme_jacobians_stay_finite(build: Build) -> None:
    """Zero gradients, and one term huge while the others are tiny (1e-8 .. 1e4)."""
    generator = torch.Generator().manual_seed(0)
    mixed = torch.randn(4, 6, generator=generator) * torch.tensor([1e4, 1e-8, 1e-4, 1.0])[:, None]
    for name, jacobian in (("zero", torch.zeros(4, 6)), ("mixed-magnitude", mixed)):
        update = _update(_gradient(build), jacobian)
        if update.weights is not None:
            assert torch.isfinite(update.weights).all(), (
                f"{name} Jacobian: weights {update.weights}"
            )


def check_logged_weights(build: Build) -> None:
    strategy = _gradient(build)
    _update(strategy, torch.randn(4, 6, generator=torch.Generator().manual_seed(1)))
    weights = strategy.effective_weights()
    assert not weights or set(weights) == set(strategy.terms), (
        f"effective_weights must name every term or none, got {sorted(weights)}"
    )
    for term, value in {**weights, **strategy.raw_values()}.items():
        if isinstance(value, Tensor):
            assert value.ndim == 0 and not value.requires_grad, f"{term}: {value!r}"
        assert math.isfinite(float(value)), f"logged {term} = {value}"


def check_learned_state_trains(build: Build) -> None:
    """A strategy with parameters must train them through ``GradientUpdate.auxiliary``."""
    strategy = _gradient(build)
    params = dict(strategy.named_parameters())
    if not params:
        return
    before = {n: p.detach().clone() for n, p in params.items()}
    jacobian = torch.randn(4, 6, generator=torch.Generator().manual_seed(2))
    _update(strategy, jacobian)
    update = _update(strategy, jacobian, LOSSES * torch.tensor([0.5, 1.0, 0.9, 0.2]))
    assert update.auxiliary is not None, (
        "a strategy with parameters must return GradientUpdate.auxiliary to train them"
    )
    update.auxiliary.backward()
    for name, param in params.items():
        assert param.grad is not None and torch.isfinite(param.grad).all(), (
            f"parameter {name} must get a finite gradient from the auxiliary loss ({param.grad})"
        )
    torch.optim.SGD(params.values(), lr=0.1).step()
    strategy.after_optimizer_step()
    unchanged = [n for n, p in params.items() if torch.equal(p, before[n])]
    assert not unchanged, f"parameters unchanged after an optimizer step: {unchanged}"


def check_state_dict_round_trip(build: Build) -> None:
    jacobian = torch.randn(4, 6, generator=torch.Generator().manual_seed(3))
    trained = _gradient(build)
    for step in range(3):
        update = _update(trained, jacobian, LOSSES / (step + 1))
        if update.auxiliary is not None:
            update.auxiliary.backward()
            with torch.no_grad():
                for param in trained.parameters():
                    param -= 0.1 * param.grad
        trained.after_optimizer_step()
    restored = reloaded(trained, _gradient(build))
    directions = []
    for strategy in (trained, restored):
        torch.manual_seed(0)
        directions.append(_update(strategy, jacobian, LOSSES / 4).direction)
    torch.testing.assert_close(directions[1], directions[0], msg="a restored strategy differs")


def check_trains_the_model(build: Build, where: str) -> None:
    """One training step of a tiny model: every parameter gets a finite, non-zero gradient."""
    from cmi_core.train.model import CMIModel  # Lightning: imported only when the check runs
    from cmi_core.train.network import CMINetwork

    torch.manual_seed(0)
    strategy = _gradient(build)
    strategy.where = where
    backbone = build_backbone("squeezeformer", 7, d_model=16, n_layers=1, n_heads=2, ff_dim=32)
    network = CMINetwork(backbone)
    model = CMIModel(network, strategy, LossConfig(), OptimizerConfig(), total_steps=1).eval()
    y18 = torch.arange(6) * 3
    batch = {
        "x": torch.randn(6, 20, 7),
        "mask": torch.ones(6, 20, dtype=torch.bool),
        "demographics": torch.rand(6, 7),
        "y18": y18,
        "ybin": (y18 < 8).float(),
        "y9": y18 % 9,
    }
    model.backward(model.training_step(batch, 0))
    for name, param in model.named_parameters():
        if name.startswith("weighting."):
            continue
        assert param.grad is not None, f"{where}: parameter {name} gets no gradient"
        assert torch.isfinite(param.grad).all(), f"{where}: {name} gradient is not finite"
    shared = torch.cat([p.grad.flatten() for p in model.shared_parameters()])
    assert shared.abs().sum() > 0, f"{where}: the shared part gets a zero update"


class GradientWeightingContract(PluginContract):
    """Checks of a gradient-level ``GradientWeighting`` plugin; override ``plugin_name``."""

    kind = "weighting"
    options = WeightingContract.options
    test_options_round_trip_through_the_config = (
        WeightingContract.test_options_round_trip_through_the_config
    )
    test_built_strategy_is_at_its_declared_level = (
        WeightingContract.test_built_strategy_is_at_its_declared_level
    )

    @pytest.fixture
    def build(
        self, plugin_name: str, plugin_options: dict[str, Any], plugin_modules: Sequence[str]
    ) -> Build:
        """``build(terms=TERMS)``: the strategy as the trainer builds it."""

        def build(terms: Sequence[str] = TERMS) -> LossWeighting:
            return build_weighting(plugin_name, terms, modules=plugin_modules, **plugin_options)

        return build

    def test_is_a_gradient_weighting_over_its_terms(self, build: Build) -> None:
        check_kind_and_terms(build)

    def test_every_task_moves(self, build: Build) -> None:
        check_every_task_moves(build)

    def test_agreeing_tasks_keep_their_direction(self, build: Build) -> None:
        check_agreeing_tasks_keep_their_direction(build)

    def test_extreme_jacobians_stay_finite(self, build: Build) -> None:
        check_extreme_jacobians_stay_finite(build)

    def test_logged_weights(self, build: Build) -> None:
        check_logged_weights(build)

    def test_learned_state_trains(self, build: Build) -> None:
        check_learned_state_trains(build)

    def test_state_dict_round_trip(self, build: Build) -> None:
        check_state_dict_round_trip(build)

    @pytest.mark.parametrize("where", WHERE)
    def test_trains_the_model(self, build: Build, where: str) -> None:
        check_trains_the_model(build, where)

    def test_where_out_of_range_is_a_config_error(self, spec: PluginSpec) -> None:
        with pytest.raises(ConfigError, match="where"):
            structure_options(spec.config_cls, {"where": "nowhere"}, where="loss.weighting")

    def test_missing_optional_dependency_is_a_config_error(
        self,
        spec: PluginSpec,
        plugin_options: dict[str, Any],
        plugin_modules: Sequence[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        declared = isinstance(spec, WeightingSpec) and spec.requires
        if not declared and "__attrs_post_init__" not in vars(spec.config_cls):
            pytest.skip("the strategy declares no optional dependency")
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
        with pytest.raises(ConfigError, match="pip install"):
            build_weighting(spec.name, modules=plugin_modules, **plugin_options)
