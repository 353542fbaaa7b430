"""Hook specifications of the ``cmi`` plugin system.

A plugin is a module (found through the ``cmi.plugins`` entry-point group, or named in a
config's ``[plugins] modules``) that implements one or more of these hooks with
``@cmi_core.hookimpl``. Each hook returns an iterable of spec records; the plugin manager
validates them and files them in one registry per kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pluggy

from cmi_core.specs import (
    BackboneSpec,
    LoggerSpec,
    PluginSpec,
    PostprocessorSpec,
    TaskSpec,
    WeightingSpec,
)

PROJECT = "cmi"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def cmi_register_weightings() -> Iterable[WeightingSpec]:
    """Return the loss-weighting strategies this plugin provides.

    Example::

        @cmi_core.hookimpl
        def cmi_register_weightings():
            return [WeightingSpec(name="dwa", summary="Dynamic weight averaging",
                                  factory=DWAWeighting, config_cls=DWAOptions)]
    """


@hookspec
def cmi_register_backbones() -> Iterable[BackboneSpec]:
    """Return the sequence backbones this plugin provides.

    Example::

        @cmi_core.hookimpl
        def cmi_register_backbones():
            return [BackboneSpec(name="gru", summary="Bidirectional GRU encoder",
                                 factory=make_gru, config_cls=GRUOptions)]
    """


@hookspec
def cmi_register_loggers() -> Iterable[LoggerSpec]:
    """Return the experiment loggers this plugin provides.

    Example::

        @cmi_core.hookimpl
        def cmi_register_loggers():
            return [LoggerSpec(name="csv", summary="Metrics as CSV files",
                               factory=make_csv_logger, config_cls=CSVOptions)]
    """


@hookspec
def cmi_register_tasks() -> Iterable[TaskSpec]:
    """Return the tasks (a head and its loss) this plugin provides.

    Example::

        @cmi_core.hookimpl
        def cmi_register_tasks():
            return [TaskSpec(name="orientation", summary="4 body positions per sequence",
                             factory=OrientationTask, config_cls=cmi_core.TaskOptions)]
    """


@hookspec
def cmi_register_postprocessors() -> Iterable[PostprocessorSpec]:
    """Return the per-subject post-processors this plugin provides.

    Example::

        @cmi_core.hookimpl
        def cmi_register_postprocessors():
            return [PostprocessorSpec(name="subject_prior", summary="Boost under-predicted "
                                      "classes per subject", factory=SubjectPrior,
                                      config_cls=PriorOptions)]
    """


HOOK_OF_SPEC: dict[type, str] = {
    WeightingSpec: "cmi_register_weightings",
    BackboneSpec: "cmi_register_backbones",
    LoggerSpec: "cmi_register_loggers",
    TaskSpec: "cmi_register_tasks",
    PostprocessorSpec: "cmi_register_postprocessors",
}


def registering(*specs: PluginSpec) -> Callable[[], list[PluginSpec]]:
    """The hook implementation that registers ``specs`` (all of one kind), for a plugin module
    that only declares what it provides::

        cmi_register_weightings = cmi_core.registering(aggregator_strategy("pcgrad", ...))
    """
    names = {HOOK_OF_SPEC.get(type(spec), "") for spec in specs}
    if len(names) != 1 or "" in names:
        raise TypeError(f"registering() takes specs of one known kind, got {specs!r}")

    def hook() -> list[PluginSpec]:
        return list(specs)

    hook.__name__ = hook.__qualname__ = names.pop()
    return hookimpl(hook)
