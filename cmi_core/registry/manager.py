"""Plugin manager: entry-point discovery, isolated loading, one registry per plugin kind.

Loading follows pytest/datasette practice: each entry point of the ``cmi.plugins`` group is
imported on its own, so one broken plugin is recorded (and reported by name) while every other
plugin keeps working. A config that *names* a failed plugin gets the stored failure as a hard
error.
"""

from __future__ import annotations

import difflib
import importlib
import os
import threading
import warnings
from collections.abc import Iterable, Sequence
from importlib import metadata
from types import ModuleType
from typing import Any

import attrs
import pluggy

from cmi_core import hookspecs
from cmi_core.errors import PluginError
from cmi_core.specs import SPEC_TYPES, PluginSpec

ENTRY_POINT_GROUP = "cmi.plugins"
HOOKS = {
    "weighting": "cmi_register_weightings",
    "backbone": "cmi_register_backbones",
    "logger": "cmi_register_loggers",
    "task": "cmi_register_tasks",
    "postprocessor": "cmi_register_postprocessors",
}


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded; the others keep working."""


@attrs.frozen
class PluginInfo:
    """One row of ``cmi plugins``: where a registered name comes from and whether it works."""

    name: str
    kind: str
    summary: str
    distribution: str
    version: str
    status: str  # "active" or "failed"
    error: str = ""


@attrs.frozen
class _Origin:
    plugin: str  # entry-point name or module path
    distribution: str
    version: str


class PluginManager:
    """Loads plugins and keeps the registries of weightings, backbones and loggers."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._registries: dict[str, dict[str, tuple[PluginSpec, _Origin]]] = {
            kind: {} for kind in HOOKS
        }
        self._failures: dict[str, tuple[_Origin, str]] = {}
        self._conflicts: dict[tuple[str, str], str] = {}
        self._loaded: set[str] = set()
        self._registered: dict[str, int] = {}  # plugin -> how many names it registered

    # -- loading -----------------------------------------------------------------------------

    def load_entrypoints(self) -> None:
        """Import every ``cmi.plugins`` entry point not disabled by ``CMI_DISABLE_PLUGINS``."""
        disabled = _env_list("CMI_DISABLE_PLUGINS")
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in disabled or ep.name in self._loaded:
                continue
            dist = ep.dist
            origin = _Origin(
                ep.name,
                dist.metadata["Name"] if dist else "?",
                dist.version if dist else "?",
            )
            self._load(origin, ep.load)

    def load_modules(self, modules: Iterable[str]) -> None:
        """Register local modules named in a config (``[plugins] modules``)."""
        for path in modules:
            if path not in self._loaded:
                self._load(_Origin(path, "local module", "-"), lambda p=path: _import(p))

    def _load(self, origin: _Origin, loader: Any) -> None:
        self._loaded.add(origin.plugin)
        module = None
        try:
            module = loader()
            if self._pm.is_registered(module):  # an installed plugin also named in a config
                self._registered[origin.plugin] = self._registered.get(self._pm.get_name(module), 0)
                return
            self._pm.register(module, name=origin.plugin)
            self._pm.check_pending()
            self._collect(module, origin)
        except Exception as exc:  # a plugin may fail in any way; record it, keep the rest
            if module is not None and self._pm.is_registered(module):
                self._pm.unregister(module)
            message = f"{type(exc).__name__}: {exc}".strip()
            self._failures[origin.plugin] = (origin, message)
            if os.environ.get("CMI_STRICT_PLUGINS") == "1":
                raise PluginError(f"plugin {origin.plugin!r} failed to load: {message}") from exc
            warnings.warn(
                f"plugin {origin.plugin!r} failed to load and is skipped: {message}",
                PluginLoadWarning,
                stacklevel=2,
            )

    def _collect(self, module: ModuleType, origin: _Origin) -> None:
        """Call the module's registration hooks and file the validated specs."""
        staged: list[tuple[str, PluginSpec]] = []
        for kind, hook_name in HOOKS.items():
            impls = getattr(self._pm.hook, hook_name).get_hookimpls()
            specs = (s for i in impls if i.plugin is module for s in i.function() or ())
            for spec in specs:
                if not isinstance(spec, SPEC_TYPES[kind]):
                    raise TypeError(
                        f"{hook_name} must return {SPEC_TYPES[kind].__name__} records, "
                        f"got {type(spec).__name__}"
                    )
                staged.append((kind, spec))
        seen: set[tuple[str, str]] = set()
        for kind, spec in staged:
            if spec.name in self._registries[kind] or (kind, spec.name) in seen:
                other = self._registries[kind].get(spec.name, (None, origin))[1]
                message = (
                    f"{kind} {spec.name!r} is registered twice: by {other.plugin} "
                    f"({other.distribution}) and by {origin.plugin} ({origin.distribution})"
                )
                self._conflicts[(kind, spec.name)] = message
                raise PluginError(message)
            seen.add((kind, spec.name))
        for kind, spec in staged:
            self._registries[kind][spec.name] = (spec, origin)
        self._registered[origin.plugin] = len(staged)

    # -- queries -----------------------------------------------------------------------------

    def names(self, kind: str) -> list[str]:
        return sorted(self._registries[kind])

    def get(self, kind: str, name: str) -> PluginSpec:
        """Return the spec registered as ``name``, or raise a one-line ``PluginError``."""
        registry = self._registries[kind]
        if (kind, name) in self._conflicts:
            raise PluginError(self._conflicts[(kind, name)])
        if name in registry:
            return registry[name][0]
        if name in self._failures:
            origin, message = self._failures[name]
            raise PluginError(
                f"{kind} {name!r} comes from plugin {origin.plugin!r}, which failed to load: "
                f"{message}"
            )
        raise PluginError(unknown_name_message(kind, name, self.names(kind)))

    def module_problem(self, module: str) -> str | None:
        """Why a ``[plugins] modules`` entry is of no use (it failed to load, or it registered
        no weighting, backbone, logger, task or post-processor), or ``None``: a config naming
        it would otherwise pass ``cmi check`` with a warning or without a word."""
        if module in self._failures:
            return f"module {module!r} failed to load: {self._failures[module][1]}"
        if self._registered.get(module, 0) == 0:
            hooks = ", ".join(HOOKS.values())
            return f"module {module!r} registers nothing (no @cmi_core.hookimpl of {hooks})"
        return None

    def infos(self) -> list[PluginInfo]:
        rows = [
            PluginInfo(spec.name, kind, spec.summary, origin.distribution, origin.version, "active")
            for kind, registry in self._registries.items()
            for spec, origin in registry.values()
        ]
        rows += [
            PluginInfo(name, "?", "", origin.distribution, origin.version, "failed", message)
            for name, (origin, message) in self._failures.items()
        ]
        return sorted(rows, key=lambda r: (r.kind, r.name))


def unknown_name_message(kind: str, name: str, available: Sequence[str]) -> str:
    """``unknown weighting 'uncertanty' (did you mean 'uncertainty'?); available: ...``."""
    close = difflib.get_close_matches(name, available, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {name!r}{hint}; available: {', '.join(available) or 'none'}"


def _env_list(variable: str) -> set[str]:
    return {item.strip() for item in os.environ.get(variable, "").split(",") if item.strip()}


def _import(path: str) -> ModuleType:
    return importlib.import_module(path)


_MANAGER: PluginManager | None = None
_LOCK = threading.Lock()  # first use from several threads (data loaders, benchmarks)


def get_plugin_manager(modules: Iterable[str] = ()) -> PluginManager:
    """The process-wide manager, with entry points loaded once and ``modules`` added."""
    global _MANAGER
    with _LOCK:
        if _MANAGER is None:
            manager = PluginManager()
            manager.load_entrypoints()
            _MANAGER = manager
        _MANAGER.load_modules(modules)
        return _MANAGER


def reset_plugin_manager() -> None:
    """Forget loaded plugins (tests, or after changing ``CMI_DISABLE_PLUGINS``)."""
    global _MANAGER
    _MANAGER = None
