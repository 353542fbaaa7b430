"""Structuring plain TOML data into attrs classes with cattrs, collecting every problem at once
as ``(key path, message)`` pairs, and the error lines built from them."""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from cmi_core.errors import ConfigError

Problem = tuple[tuple[str, ...], str]
Problems = list[Problem]
_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _strict(kind: type) -> Callable[[Any, type], Any]:
    """TOML values are typed: refuse coercions like "3" -> 3, 3.7 -> 3 or "false" -> True."""
    accepted = (int, float) if kind is float else (kind,)

    def structure(value: Any, _: type) -> Any:
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, accepted):
            raise TypeError(f"expected {_TYPE_NAMES[kind]}, got {value!r}")
        return kind(value)

    return structure


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for kind in _TYPE_NAMES:
        converter.register_structure_hook(kind, _strict(kind))
    return converter


CONVERTER = _converter()


def _problems(exc: BaseException, path: tuple[str, ...]) -> Iterable[Problem]:
    """Flatten a cattrs exception group into ``(key path, message)`` pairs."""
    if isinstance(exc, ForbiddenExtraKeysError):
        known = [f.name for f in attrs.fields(exc.cl)]
        for key in sorted(exc.extra_fields):
            yield (*path, key), unknown_key_message(key, known)
        return
    if isinstance(exc, ClassValidationError | IterableValidationError):
        for sub in exc.exceptions:
            yield from _problems(sub, (*path, *_note_path(sub)))
        return
    yield path, str(exc)


def _note_path(exc: BaseException) -> tuple[str, ...]:
    for note in getattr(exc, "__notes__", ()):
        if hasattr(note, "name"):
            return (note.name,)
        if hasattr(note, "index"):
            return (f"[{note.index}]",)
    return ()


def dotted(*parts: str) -> str:
    """``("loss", "weighting", "clamp")`` -> ``loss.weighting.clamp``; list indices as ``[i]``."""
    return ".".join(p for p in parts if p).replace(".[", "[") or "<top level>"


def unknown_key_message(key: str, known: Sequence[str]) -> str:
    if not known:
        return "unknown key; this table takes no keys"
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}; valid keys: {', '.join(known)}"


def structure(cls: type, data: Any) -> tuple[Any | None, Problems]:
    """Structure ``data`` into ``cls`` and run the value checks, finding every problem at once.

    cattrs stops at the first class with a bad key, so each bad key is dropped and the rest is
    structured again: value errors are then reported together with the structural ones.
    Returns ``(None, problems)`` only when nothing can be structured at all.
    """
    data = deep_copy(data)
    problems: Problems = []
    while True:
        try:
            obj = CONVERTER.structure(data, cls)
        except (ClassValidationError, TypeError, ValueError) as exc:
            found = list(_problems(exc, ()))
            problems += found
            if not all([_drop(data, path) for path, _ in found]):
                return None, problems
            continue
        return obj, problems + list(_check_values(obj, ()))


def _drop(data: Any, path: tuple[str, ...]) -> bool:
    """Delete the table key that ``path`` points into (a list element drops the whole list)."""
    keys = list(itertools.takewhile(lambda part: not part.startswith("["), path))
    node = data
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if not keys or not isinstance(node, dict) or keys[-1] not in node:
        return False
    del node[keys[-1]]
    return True


def structure_options(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """Structure a plugin's option table into its ``config_cls``; ``where`` prefixes errors."""
    options, problems = structure(cls, dict(data))
    if problems:
        raise ConfigError(f"{where}: {dotted(*path)}: {message}" for path, message in problems)
    return options


def _check_values(obj: Any, path: tuple[str, ...]) -> Iterable[Problem]:
    """Run the ``check`` of every field declared with :func:`field`, recursively.

    Plugin option fields are skipped: each is checked with its plugin's class on resolution.
    """
    for f in attrs.fields(type(obj)):
        if f.metadata.get("plugin_tables"):
            continue
        value = getattr(obj, f.name)
        check = f.metadata.get("check")
        if check is not None and value is not None and (message := check(value)):
            yield (*path, f.name), message
        if attrs.has(type(value)):
            yield from _check_values(value, (*path, f.name))


# -- plugin option tables --------------------------------------------------------------------


def deep_copy(raw: Any) -> Any:
    """A copy of plain TOML data (dicts and lists), so structuring never edits the caller's."""
    if isinstance(raw, dict):
        return {k: deep_copy(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [deep_copy(v) for v in raw]
    return raw
