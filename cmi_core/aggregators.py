"""A gradient-level strategy around a Jacobian aggregator, declared in one call.

Most gradient-level strategies are a published aggregator (``torchjd.aggregation``) and its
options: :func:`aggregator_strategy` turns the two into a ``WeightingSpec``, so a plugin holds
only what differs (its options class and how the aggregator is made from them). Torch-free:
torch and the aggregator's package are imported when a strategy is built, never when a plugin
is listed or a config is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any

import attrs

from cmi_core.gradient_options import GradientOptions, ProjectorOptions
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting

MakeAggregator = Callable[[Any, int], Callable[..., Any]]
"""``make_aggregator(options, n_tasks) -> aggregator``: any callable ``[T, N] -> [N]``."""


@attrs.frozen
class AggregatorFactory:
    """The ``WeightingSpec.factory`` of an aggregator strategy: a plain record (not a closure)
    so a spec can be compared and pickled like any other."""

    make_aggregator: MakeAggregator | str

    def __call__(
        self, terms: tuple[str, ...], fixed: FixedWeights, options: GradientOptions
    ) -> LossWeighting:
        from cmi_core.weighting import AggregatorWeighting

        make = self.make_aggregator
        if isinstance(make, str):  # "module:Class", built from the options named as its arguments
            aggregator = imported(make)(**_own_options(options))
        else:
            aggregator = make(options, len(terms))
        return AggregatorWeighting(terms, fixed, options.where, aggregator)


def aggregator_strategy(
    name: str,
    summary: str,
    make_aggregator: MakeAggregator | str,
    options_cls: type = GradientOptions,
    requires: Sequence[str] = ("torchjd",),
) -> WeightingSpec:
    """The spec of a gradient-level strategy that hands the Jacobian to an aggregator.

    ``make_aggregator`` is ``make_aggregator(options, n_tasks) -> aggregator``, or the
    aggregator's class as ``"module:Class"`` (imported when built), called with the options
    class's own fields (those beyond ``GradientOptions``) as keyword arguments.
    ``options_cls`` must subclass ``GradientOptions`` (the ``where`` option every
    gradient-level strategy has); ``requires`` are the modules checked when the strategy is
    chosen, so a missing one is a one-line error at ``cmi check``, not a failure in training.
    """
    if not (isinstance(options_cls, type) and issubclass(options_cls, GradientOptions)):
        raise TypeError(
            f"options_cls of {name!r} must subclass GradientOptions, got {options_cls!r}"
        )
    return WeightingSpec(
        name=name,
        summary=summary,
        factory=AggregatorFactory(make_aggregator),
        config_cls=options_cls,
        level="gradient",
        requires=tuple(requires),
    )


def quadprog_projector(options: ProjectorOptions) -> Any:
    """torchjd's quadratic-program projector onto the dual cone, with ``ProjectorOptions``
    (``upgrad``, ``dualproj``); needs ``quadprog`` and ``qpsolvers``."""
    from torchjd.linalg import QuadprogProjector

    return QuadprogProjector(norm_eps=options.norm_eps, reg_eps=options.reg_eps)


def imported(path: str) -> Any:
    """The object ``"module:name"`` names, imported now."""
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


def _own_options(options: GradientOptions) -> dict[str, Any]:
    """The options a strategy adds to ``GradientOptions``, by name."""
    shared = {field.name for field in attrs.fields(GradientOptions)}
    return {
        f.name: getattr(options, f.name)
        for f in attrs.fields(type(options))
        if f.name not in shared
    }


@attrs.frozen
class Projected:
    """``make_aggregator`` of an aggregator that projects onto the dual cone (``upgrad``,
    ``dualproj``): the class ``"module:Class"`` with :func:`quadprog_projector`."""

    path: str

    def __call__(self, options: ProjectorOptions, n_tasks: int) -> Any:
        return imported(self.path)(projector=quadprog_projector(options))
