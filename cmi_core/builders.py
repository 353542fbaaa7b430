"""Build any registered plugin by name: one call for the trainer, tests and notebooks alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cmi_core.backbone import Backbone
from cmi_core.config import structure_options
from cmi_core.registry.manager import get_plugin_manager
from cmi_core.weighting import TERMS, FixedWeights, LossWeighting


def _options(kind: str, name: str, options: Any, modules: Sequence[str]) -> tuple[Any, Any]:
    spec = get_plugin_manager(modules).get(kind, name)
    if not isinstance(options, spec.config_cls):
        options = structure_options(spec.config_cls, dict(options or {}), where=f"{kind} {name}")
    return spec, options


def build_weighting(
    name: str,
    terms: Sequence[str] = TERMS,
    alpha: float = 0.5,
    nine_class_loss_weight: float = 0.2,
    kl_weight: float = 0.1,
    *,
    modules: Sequence[str] = (),
    **options: Any,
) -> LossWeighting:
    """Build the weighting strategy registered as ``name``.

    ``options`` are the strategy's own options (e.g. ``clamp=[-10, 10]`` for ``uncertainty``);
    they are checked against its options class exactly as a config file would be.
    """
    fixed = FixedWeights(alpha, nine_class_loss_weight, kl_weight)
    spec, opts = _options("weighting", name, options, modules)
    return spec.factory(tuple(terms), fixed, opts)


def build_backbone(
    name: str, in_channels: int, *, modules: Sequence[str] = (), **options: Any
) -> Backbone:
    """Build the backbone registered as ``name`` for ``in_channels`` input features."""
    spec, opts = _options("backbone", name, options, modules)
    return spec.factory(in_channels, opts)


def build_logger(
    name: str, save_dir: Path, options: Mapping[str, Any] | Any = None, modules: Sequence[str] = ()
) -> Any:
    """Build the Lightning logger registered as ``name``, writing under ``save_dir``."""
    spec, opts = _options("logger", name, options, modules)
    return spec.factory(Path(save_dir), opts)
