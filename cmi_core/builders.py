"""Build any registered plugin by name: one call for the trainer, tests and notebooks alike.

Two paths: the public ``build_*`` take options as a dict (keywords) and structure them with the
plugin's options class, exactly as a config file would be; ``make_weighting`` /
``make_backbone`` take the options object a loaded config already holds and hand it to the
factory as it is, so a config is structured once however many models are built from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cmi_core.backbone import Backbone
from cmi_core.config import LossConfig, structure_options
from cmi_core.config.plugin_tables import missing_requirements, task_names
from cmi_core.errors import ConfigError
from cmi_core.registry.manager import get_plugin_manager
from cmi_core.specs import PluginSpec
from cmi_core.task import Task, TaskContext
from cmi_core.weighting import TERMS, FixedWeights, LossWeighting


def _spec(kind: str, name: str, modules: Sequence[str]) -> PluginSpec:
    """The registered spec, refused in one line when its required modules are missing."""
    spec = get_plugin_manager(modules).get(kind, name)
    missing = missing_requirements(spec)
    if missing:
        raise ConfigError([f"{kind} {name}: {missing}"])
    return spec


def _structured(kind: str, spec: PluginSpec, options: Mapping[str, Any] | None) -> Any:
    return structure_options(spec.config_cls, dict(options or {}), where=f"{kind} {spec.name}")


def _typed(kind: str, spec: PluginSpec, options: Any) -> Any:
    """Already-structured options, checked to be the plugin's own class (a caller's bug if not:
    a dict belongs to the public ``build_*``)."""
    if not isinstance(options, spec.config_cls):
        raise TypeError(
            f"{kind} {spec.name!r} takes {spec.config_cls.__name__} options here, "
            f"got {type(options).__name__}"
        )
    return options


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
    spec = _spec("weighting", name, modules)
    fixed = FixedWeights(alpha, nine_class_loss_weight, kl_weight)
    return spec.factory(tuple(terms), fixed, _structured("weighting", spec, options))


def make_weighting(
    name: str,
    terms: Sequence[str],
    fixed: FixedWeights,
    options: Any,
    *,
    modules: Sequence[str] = (),
) -> LossWeighting:
    """Build strategy ``name`` from the options object of a loaded config, not re-structured."""
    spec = _spec("weighting", name, modules)
    return spec.factory(tuple(terms), fixed, _typed("weighting", spec, options))


def build_backbone(
    name: str, in_channels: int, *, modules: Sequence[str] = (), **options: Any
) -> Backbone:
    """Build the backbone registered as ``name`` for ``in_channels`` input features."""
    spec = _spec("backbone", name, modules)
    return spec.factory(in_channels, _structured("backbone", spec, options))


def make_backbone(
    name: str, in_channels: int, options: Any, *, modules: Sequence[str] = ()
) -> Backbone:
    """Build backbone ``name`` from the options object of a loaded config, not re-structured."""
    spec = _spec("backbone", name, modules)
    return spec.factory(in_channels, _typed("backbone", spec, options))


def build_logger(
    name: str, save_dir: Path, options: Mapping[str, Any] | Any = None, modules: Sequence[str] = ()
) -> Any:
    """Build the Lightning logger registered as ``name``, writing under ``save_dir``; its
    options are a dict or, from a loaded config, already its options object."""
    spec = _spec("logger", name, modules)
    if not isinstance(options, spec.config_cls):
        options = _structured("logger", spec, options)
    return spec.factory(Path(save_dir), options)


def build_task(
    name: str,
    context: TaskContext | None = None,
    *,
    modules: Sequence[str] = (),
    **options: Any,
) -> Task:
    """Build the task registered as ``name``; ``options`` are checked as a config file's."""
    spec = _spec("task", name, modules)
    return spec.factory(name, _structured("task", spec, options), context or TaskContext())


def make_tasks(loss: LossConfig, *, modules: Sequence[str] = ()) -> list[Task]:
    """The configured tasks, in config order (the order their heads are built and seeded),
    from the options objects of a loaded config."""
    context = TaskContext(loss.label_smoothing, loss.kl_temperature)
    tasks = []
    for name in task_names(loss):
        spec = _spec("task", name, modules)
        options = loss.tasks.options.get(name) or spec.config_cls()
        tasks.append(spec.factory(name, _typed("task", spec, options), context))
    return tasks


def prediction_tasks(loss: LossConfig, *, modules: Sequence[str] = ()) -> tuple[str, ...]:
    """The configured tasks whose heads are read at prediction time (``TaskSpec.predicts``),
    besides ``multiclass`` (the gesture itself)."""
    manager = get_plugin_manager(modules)
    return tuple(
        name
        for name in task_names(loss)
        if name != "multiclass" and getattr(manager.get("task", name), "predicts", False)
    )


def fixed_weights(loss: LossConfig) -> FixedWeights:
    """The fixed weights of ``[loss]``, plus the ``weight`` option of every other task."""
    extra = tuple(
        (name, float(options.weight))
        for name, options in loss.tasks.options.items()
        if hasattr(options, "weight")
    )
    return FixedWeights(loss.alpha, loss.nine_class_loss_weight, loss.kl_weight, extra)
