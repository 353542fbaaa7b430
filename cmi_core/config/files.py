"""Config files: reading TOML, ``-o`` overrides, validation into a :class:`Config` with every
problem in one ``ConfigError``, and writing the resolved config back as TOML."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomli_w

from cmi_core.config.checks import check_features, check_paths, check_trainer
from cmi_core.config.plugin_tables import (
    SLOTS,
    check_data,
    check_tasks,
    resolve_plugins,
    split_plugin_tables,
    table_at,
)
from cmi_core.config.structure import CONVERTER, Problems, deep_copy, dotted, structure
from cmi_core.config.tree import Config
from cmi_core.errors import ConfigError


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; a missing file or a syntax error is one ``ConfigError`` line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file ({exc.strerror})"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: TOML syntax error: {exc}"]) from None


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> list[str]:
    """Set ``dotted.key=value`` pairs in ``raw``; returns problems with malformed overrides.

    Values are parsed as TOML (``3``, ``0.5``, ``true``, ``[1, 2]``, ``"x"``); anything that is
    not valid TOML is taken as a plain string, so ``-o loss.weighting.strategy=direct`` works.
    """
    problems = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"-o {item}: expected KEY=VALUE, e.g. trainer.max_epochs=3")
            continue
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        *parents, leaf = key.strip().split(".")
        table = raw
        for part in parents:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                problems.append(f"-o {item}: {part} is not a table")
                break
        else:
            table[leaf] = value
    return problems


def _origin(key: str, overrides: Sequence[str], source: str) -> str:
    """The ``-o`` that set ``key`` (or a table around or inside it), else the config file."""
    for item in reversed(overrides):
        name = item.partition("=")[0].strip()
        if key == name or key.startswith((f"{name}.", f"{name}[")) or name.startswith(f"{key}."):
            return f"-o {item}"
    return source


def _validate(
    raw: dict[str, Any], resolve_weighting: bool = True, paths: bool = True
) -> tuple[Config | None, Problems]:
    """Every problem of a raw config: old table shapes, structure, plugin options, values."""
    raw = deep_copy(raw)
    problems = [problem for slot in SLOTS for problem in split_plugin_tables(raw, slot)]
    cfg, found = structure(Config, raw)
    problems += found
    if cfg is None:
        return None, problems
    skip = frozenset() if resolve_weighting else frozenset({"weighting"})
    cfg, found = resolve_plugins(cfg, skip)
    checks = [
        *check_data(cfg),
        *check_tasks(cfg),
        *check_trainer(cfg),
        *check_features(cfg),
        *(check_paths(cfg) if paths else ()),
    ]
    return cfg, [*problems, *found, *checks]


def config_from_dict(
    raw: dict[str, Any],
    source: str = "<config>",
    overrides: Sequence[str] = (),
    *,
    resolve_weighting: bool = True,
    check_paths: bool = True,
) -> Config:
    """Structure, resolve plugin options and check values; all problems in one ConfigError.

    A problem with a key that one of ``overrides`` set names that ``-o`` instead of ``source``.
    ``resolve_weighting=False`` leaves the weighting strategy unresolved (its options plain
    tables): prediction never uses the weighting, so its plugin need not be installed.
    ``check_paths=False`` leaves the data directories unchecked: prediction reads neither.
    """
    cfg, problems = _validate(raw, resolve_weighting, check_paths)
    if problems or cfg is None:
        raise ConfigError(
            f"{_origin(dotted(*path), overrides, source)}: {dotted(*path)}: {message}"
            for path, message in problems
        )
    return cfg


def load_config(path: Path | str, overrides: Sequence[str] = ()) -> Config:
    """Read, override, structure and validate a config file."""
    path = Path(path)
    raw = read_toml(path)
    malformed = apply_overrides(raw, overrides)
    try:
        cfg = config_from_dict(raw, str(path), overrides)
    except ConfigError as exc:
        raise ConfigError([*malformed, *exc.problems]) from None
    if malformed:
        raise ConfigError(malformed)
    return cfg


# -- writing ---------------------------------------------------------------------------------


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain data: every plugin table under its slot, ``None`` dropped."""
    data = CONVERTER.unstructure(cfg)
    for slot in SLOTS:
        table = table_at(data, slot.path)
        options = table.pop("options")
        table.update(table.pop("tables"))
        chosen = slot.names(table[slot.choice])
        table.update(options if slot.many else {chosen[0]: options})
    return _drop_none(data)


def config_to_toml(cfg: Config) -> str:
    return tomli_w.dumps(config_to_dict(cfg))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
