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


@attrs.frozen
class WeightingSpec(PluginSpec):
    """A loss-weighting strategy.

    ``factory(terms: tuple[str, ...], fixed: FixedWeights, options) -> LossWeighting``
    """

    kind: ClassVar[str] = "weighting"


@attrs.frozen
class BackboneSpec(PluginSpec):
    """A sequence encoder: ``factory(in_channels: int, options) -> Backbone``."""

    kind: ClassVar[str] = "backbone"


@attrs.frozen
class LoggerSpec(PluginSpec):
    """An experiment logger: ``factory(save_dir: pathlib.Path, options) -> lightning Logger``."""

    kind: ClassVar[str] = "logger"


SPEC_TYPES: dict[str, type[PluginSpec]] = {
    cls.kind: cls for cls in (WeightingSpec, BackboneSpec, LoggerSpec)
}
