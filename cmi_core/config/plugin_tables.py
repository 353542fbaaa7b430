"""Plugin option tables: one sub-table per plugin name under its slot's table
(``[model.<backbone>]``, ``[loss.weighting.<strategy>]``, ``[logging.<logger>]``), set aside in
phase 1 and structured in phase 2 with each plugin's own ``config_cls``."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from cmi_core.config.structure import Problem, Problems, dotted, structure, unknown_key_message
from cmi_core.config.tree import (
    Config,
    LoggingConfig,
    LossConfig,
    ModelConfig,
    TasksConfig,
    WeightingConfig,
)
from cmi_core.errors import PluginError
from cmi_core.gradient_options import require_modules
from cmi_core.registry.manager import PluginManager, get_plugin_manager
from cmi_core.specs import PluginSpec, TaskSpec, WeightingSpec, active_terms


@attrs.frozen
class _Slot:
    """A table that names plugins (``choice``) and holds one option sub-table per plugin."""

    path: tuple[str, ...]
    kind: str
    choice: str
    cls: type

    @property
    def many(self) -> bool:
        return self.choice in ("loggers", "names")

    @property
    def core_keys(self) -> list[str]:
        return [f.name for f in attrs.fields(self.cls) if not f.metadata.get("plugin_tables")]

    def names(self, chosen: Any) -> list[str]:
        if chosen is None:  # [loss.tasks] names unset: the tasks follow from [loss]
            return []
        return [str(name) for name in chosen] if self.many else [str(chosen)]


SLOTS = (
    _Slot(("model",), "backbone", "backbone", ModelConfig),
    _Slot(("loss", "weighting"), "weighting", "strategy", WeightingConfig),
    _Slot(("logging",), "logger", "loggers", LoggingConfig),
    _Slot(("loss", "tasks"), "task", "names", TasksConfig),
)


def table_at(tree: Any, path: Sequence[str]) -> Any:
    for key in path:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def split_plugin_tables(raw: dict[str, Any], slot: _Slot) -> Problems:
    """Move a slot's plugin sub-tables into its ``tables`` field; refuse flat option keys."""
    table = table_at(raw, slot.path)
    if not isinstance(table, dict):
        return []
    default = attrs.fields_dict(slot.cls)[slot.choice].default
    chosen = slot.names(table.get(slot.choice, getattr(default, "factory", lambda: default)()))
    problems: Problems = []
    tables: dict[str, Any] = {}
    for key in [key for key in table if key not in slot.core_keys]:
        value = table.pop(key)
        if isinstance(value, dict):
            tables[key] = value
        else:
            problems.append(((*slot.path, key), _flat_option_message(slot, key, chosen)))
    table["tables"] = tables
    return problems


def _option_table(slot: _Slot, chosen: Sequence[str]) -> tuple[str, ...]:
    """Where the options of the chosen plugin live now, e.g. ``("model", "squeezeformer")``."""
    return slot.path if slot.many else (*slot.path, chosen[0])


def _flat_option_message(slot: _Slot, key: str, chosen: Sequence[str]) -> str:
    if key in chosen:
        return f"must be a table: the options of {slot.kind} {key!r}"
    message = unknown_key_message(key, slot.core_keys)
    if slot.many or difflib.get_close_matches(key, slot.core_keys, n=1):
        return message
    new = _option_table(slot, chosen)
    return f"{message}; {slot.kind} options now live in [{dotted(*new)}]: write {dotted(*new, key)}"


def resolve_plugins(cfg: Config, skip: frozenset[str] = frozenset()) -> tuple[Config, Problems]:
    """Phase 2: structure the chosen plugins' tables, and those of other installed plugins
    (slots whose kind is in ``skip`` stay unresolved)."""
    manager = get_plugin_manager(cfg.plugins.modules)
    problems: Problems = [
        (("plugins", "modules"), problem)
        for problem in map(manager.module_problem, dict.fromkeys(cfg.plugins.modules))
        if problem
    ]
    for slot in (s for s in SLOTS if s.kind not in skip):
        table = functools.reduce(getattr, slot.path, cfg)
        resolved = _resolve_slot(slot, table, manager, problems)
        cfg = _evolve_at(cfg, slot.path, resolved)
    return cfg, problems


def _resolve_slot(slot: _Slot, table: Any, manager: PluginManager, problems: Problems) -> Any:
    """The slot's table with the chosen plugins' options and every installed plugin's table
    structured; problems are appended to ``problems``."""
    chosen = slot.names(getattr(table, slot.choice))
    tables = dict(table.tables)
    options: dict[str, Any] = {}
    for name in dict.fromkeys([*chosen, *tables]):
        try:
            spec = manager.get(slot.kind, name)
        except PluginError as exc:
            if name in chosen:
                problems.append(((*slot.path, slot.choice), str(exc)))
            continue  # the table of a plugin that is not installed is kept as written
        if name in attrs.fields_dict(slot.cls):
            problems.append(((*slot.path, slot.choice), _clash_message(slot, name)))
            continue
        structured, found = structure(spec.config_cls, tables.get(name, {}))
        problems.extend(((*slot.path, name, *path), message) for path, message in found)
        missing = missing_requirements(spec) if name in chosen else None
        if missing:
            problems.append(((*slot.path, name), missing))
        tables[name] = structured if structured is not None else tables.get(name, {})
        if name in chosen:
            options[name] = tables[name]
    picked = options if slot.many else options.get(chosen[0], tables.get(chosen[0], {}))
    return attrs.evolve(table, options=picked, tables=tables)


def missing_requirements(spec: PluginSpec) -> str | None:
    """The one-line problem when a strategy's ``requires`` are not all installed, else None:
    checked where its options are structured, so a missing extra fails ``cmi check``."""
    try:
        require_modules(spec.name, *(spec.requires if isinstance(spec, WeightingSpec) else ()))
    except ValueError as exc:
        return str(exc)
    return None


def _clash_message(slot: _Slot, name: str) -> str:
    where = dotted(*slot.path)
    return (
        f"{slot.kind} {name!r} cannot be configured: its option table [{where}.{name}] "
        f"would be the key {where}.{name} of [{where}] (the plugin must be renamed)"
    )


def tables_without_plugin(cfg: Config) -> list[str]:
    """A note for each option table whose plugin is not installed (kept, but used by nothing:
    a misspelt table name would otherwise leave the plugin on its defaults without a word)."""
    manager = get_plugin_manager(cfg.plugins.modules)
    notes = []
    for slot in SLOTS:
        table = functools.reduce(getattr, slot.path, cfg)
        installed = manager.names(slot.kind)
        for name in sorted(set(table.tables) - set(installed)):
            close = difflib.get_close_matches(name, installed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            notes.append(
                f"[{dotted(*slot.path, name)}]: no {slot.kind} {name!r} is installed{hint}; "
                "the table is kept as written"
            )
    return notes


def _evolve_at(obj: Any, path: Sequence[str], value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    return attrs.evolve(obj, **{head: _evolve_at(getattr(obj, head), rest, value)})


def task_names(loss: LossConfig) -> tuple[str, ...]:
    """The configured tasks: ``[loss.tasks] names``, or exp025's terms from the old keys of
    ``[loss]`` (``nine_class_head_enabled``, ``kl_weight``) when it is unset."""
    if loss.tasks.names is not None:
        return tuple(loss.tasks.names)
    return active_terms(loss.nine_class_head_enabled, loss.kl_weight)


def check_tasks(cfg: Config) -> Iterable[Problem]:
    """The tasks are distinct, at least one, and each one's ``depends_on`` is configured too
    (``kl`` reads the ``multiclass`` and ``nine_class`` heads)."""
    names = task_names(cfg.loss)
    where = ("loss", "tasks", "names")
    if not names:
        yield where, "must name at least one task"
    if len(set(names)) != len(names):
        yield where, f"names a task twice: {list(names)}"
    manager = get_plugin_manager(cfg.plugins.modules)
    for name in dict.fromkeys(names):
        try:
            spec = manager.get("task", name)
        except PluginError:
            continue  # reported where the slot is resolved
        missing = [d for d in getattr(spec, "depends_on", ()) if d not in names]
        if isinstance(spec, TaskSpec) and missing:
            yield where, f"task {name!r} depends on {missing}, which are not configured"
        if getattr(spec, "level", "sequence") == "frame" and not _gives_frames(cfg, manager):
            backbone = cfg.model.backbone
            yield where, f"task {name!r} needs a per-frame output; backbone {backbone!r} gives none"


def _gives_frames(cfg: Config, manager: Any) -> bool:
    """Whether the configured backbone declares a per-frame output (an unknown backbone is
    reported where its slot is resolved, so it counts as giving one here)."""
    try:
        return bool(getattr(manager.get("backbone", cfg.model.backbone), "frames", False))
    except PluginError:
        return True


def check_data(cfg: Config) -> Iterable[Problem]:
    if cfg.data.source == "kaggle" and not cfg.data.dir:
        yield ("data", "dir"), 'required when data.source = "kaggle"'
    if cfg.cv.folds is not None:
        bad = [k for k in cfg.cv.folds if not 0 <= k < cfg.cv.n_folds]
        if bad:
            yield ("cv", "folds"), f"fold indices must be in [0, {cfg.cv.n_folds - 1}], got {bad}"


# -- loading ---------------------------------------------------------------------------------
