"""Typed records that plugins return from their registration hooks.

Records are frozen attrs classes so the plugin manager can validate them in one place and the
rest of the code can rely on their shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

import attrs

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _check_name(_: Any, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"{attribute.name} must be lowercase [a-z][a-z0-9_]*, got {value!r}")


def _check_summary(_: Any, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise ValueError(f"{attribute.name} must be one non-empty line, got {value!r}")


def _check_config_cls(_: Any, attribute: attrs.Attribute, value: type) -> None:
    if not (isinstance(value, type) and attrs.has(value)):
        raise TypeError(f"{attribute.name} must be an attrs class, got {value!r}")


@attrs.frozen
class PluginSpec:
    """What every plugin kind declares: a name, a one-line summary, a factory, an options class.

    ``config_cls`` is the plugin's own attrs class; the config loader structures the plugin's
    option table into it, so a typo in a plugin option is caught like any other config error.
    """

    kind: ClassVar[str] = "plugin"

    name: str = attrs.field(validator=_check_name)
    summary: str = attrs.field(validator=_check_summary)
    factory: Callable[..., Any] = attrs.field(validator=attrs.validators.is_callable())
    config_cls: type = attrs.field(validator=_check_config_cls)


LEVELS = ("loss", "gradient")


def _check_level(_: Any, attribute: attrs.Attribute, value: str) -> None:
    if value not in LEVELS:
        raise ValueError(f"{attribute.name} must be one of {list(LEVELS)}, got {value!r}")


def _derived_level(spec: WeightingSpec) -> str:
    """An options class that inherits ``GradientOptions`` (its ``where``) marks a
    gradient-level strategy, so a plugin written before ``level`` existed needs no change."""
    return getattr(spec.config_cls, "strategy_level", "loss")


def _check_requires(_: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    if not all(isinstance(m, str) and m for m in value):
        raise ValueError(f"{attribute.name} must name importable modules, got {value!r}")


@attrs.frozen
class WeightingSpec(PluginSpec):
    """A loss-weighting strategy.

    ``factory(terms: tuple[str, ...], fixed: FixedWeights, options) -> LossWeighting``

    ``level`` is ``"loss"`` (``forward(losses) -> total``) or ``"gradient"`` (per-task
    gradients, ``GradientWeighting``); left out, it is derived from the options class
    (``GradientOptions`` subclasses are gradient-level), and the contract kit checks that the
    built strategy agrees. ``requires`` names optional modules the strategy needs: a missing
    one is a one-line config error when the strategy is chosen, before anything is built.
    """

    kind: ClassVar[str] = "weighting"

    level: str = attrs.field(
        default=attrs.Factory(_derived_level, takes_self=True), validator=_check_level, kw_only=True
    )
    requires: tuple[str, ...] = attrs.field(
        default=(), converter=tuple, validator=_check_requires, kw_only=True
    )


@attrs.frozen
class BackboneSpec(PluginSpec):
    """A sequence encoder: ``factory(in_channels: int, options) -> Backbone``.

    ``frames``: the backbone gives a per-frame output (``Backbone.frame_dim``, ``encode``), as
    per-frame tasks need; declared here so ``cmi check`` can refuse a frame task with a
    backbone that has none before anything is built (the contract kit checks the two agree).
    """

    kind: ClassVar[str] = "backbone"

    frames: bool = attrs.field(default=False, kw_only=True)


@attrs.frozen
class LoggerSpec(PluginSpec):
    """An experiment logger: ``factory(save_dir: pathlib.Path, options) -> lightning Logger``."""

    kind: ClassVar[str] = "logger"


TASK_LEVELS = ("sequence", "frame")


def _check_task_names(_: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    for name in value:
        _check_name(None, attribute, name)


@attrs.frozen
class TaskSpec(PluginSpec):
    """A task: a head and its loss. ``factory(name: str, options, context: TaskContext) -> Task``.

    ``depends_on`` names tasks whose outputs this one reads (``kl`` reads ``multiclass`` and
    ``nine_class``): a config choosing it without them is a one-line error. ``predicts``: its
    head is used at prediction time (``Predictor.predict_outputs`` returns its probabilities);
    most auxiliary tasks are training-only. ``level`` is ``"sequence"`` (head on the pooled
    ``[B, D]``) or ``"frame"`` (head on the backbone's per-frame output ``[B, T, D_f]``, loss
    and metric over the real frames with a known label; the backbone must give one).
    """

    kind: ClassVar[str] = "task"

    depends_on: tuple[str, ...] = attrs.field(
        default=(), converter=tuple, validator=_check_task_names, kw_only=True
    )
    predicts: bool = attrs.field(default=False, kw_only=True)
    level: str = attrs.field(
        default="sequence", validator=attrs.validators.in_(TASK_LEVELS), kw_only=True
    )


def active_terms(nine_class_head_enabled: bool, kl_weight: float) -> tuple[str, ...]:
    """The loss terms a model computes: no ``nine_class`` without its head, no ``kl`` at 0.

    exp025's task plugins, chosen by the old keys of ``[loss]`` when ``[loss.tasks] names`` is
    unset; here, torch-free, because ``cmi check`` and ``cmi ensemble`` load configs."""
    terms = ["multiclass", "binary"]
    if nine_class_head_enabled:
        terms.append("nine_class")
        if kl_weight > 0:
            terms.append("kl")
    return tuple(terms)


@attrs.frozen
class PostprocessorSpec(PluginSpec):
    """A per-subject post-processor used at prediction time:
    ``factory(protocol: cmi_core.postprocess.Protocol, options) -> Postprocessor``.

    Its options are given to ``cmi predict --postprocess-option`` (or ``Predictor(...,
    postprocess_options=...)``) and structured into ``config_cls`` like any plugin's table.
    """

    kind: ClassVar[str] = "postprocessor"


SPEC_TYPES: dict[str, type[PluginSpec]] = {
    cls.kind: cls for cls in (WeightingSpec, BackboneSpec, LoggerSpec, TaskSpec, PostprocessorSpec)
}
