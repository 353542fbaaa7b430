"""What a sweep is made of: ``--grid`` arguments, seeds, the points they span, and
``sweep.json`` (read by ``cmi sweep`` to resume and by ``cmi compare``).

Kept free of torch and Lightning so that parsing and validating a sweep, and comparing finished
runs, start in a fraction of a second.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from cmi_core.common.atomic import write_text_atomic
from cmi_core.config import Config, load_config
from cmi_core.errors import CmiError, ConfigError

SWEEP_FILE = "sweep.json"


class SweepError(CmiError):
    """A sweep that cannot start: bad ``--grid``, no seeds, a directory holding another sweep."""


@attrs.frozen
class GridAxis:
    """One ``--grid KEY=V1,V2`` argument: the dotted key, the value texts and their values."""

    argument: str
    key: str
    texts: tuple[str, ...]
    values: tuple[Any, ...]


@attrs.frozen
class Point:
    """One grid point with one seed: a run directory ``<sweep>/<name>/``."""

    name: str
    label: str
    seed: int
    values: dict[str, Any]
    overrides: tuple[str, ...]


def parse_grid(arguments: Sequence[str]) -> list[GridAxis]:
    """``KEY=V1,V2,...`` arguments; values are TOML (``0.1``, ``true``, ``[1, 2]``) or words."""
    if not arguments:
        raise SweepError("empty grid: give at least one --grid KEY=V1,V2,...")
    axes = []
    for argument in arguments:
        key, sep, text = argument.partition("=")
        texts = tuple(t.strip() for t in _split_top_level(text))
        if not sep or not key.strip() or not any(texts):
            raise SweepError(f"--grid {argument}: expected KEY=V1,V2,... with at least one value")
        if "" in texts:
            raise SweepError(f"--grid {argument}: empty value between commas")
        axes.append(GridAxis(argument, key.strip(), texts, tuple(map(_toml_value, texts))))
    keys = [axis.key for axis in axes]
    if len(set(keys)) < len(keys):
        raise SweepError(f"--grid: a key is given twice: {', '.join(keys)}")
    return axes


def seed_list(seeds: int | None, seeds_given: Sequence[int] | None, default: int) -> list[int]:
    """``--seeds N`` -> 0..N-1, ``--seed-list`` as given, neither -> the config's own seed."""
    if seeds_given is not None:
        if not seeds_given:
            raise SweepError("--seed-list: give at least one seed")
        if len(set(seeds_given)) < len(seeds_given):
            raise SweepError(f"--seed-list: a seed is given twice: {list(seeds_given)}")
        return list(seeds_given)
    if seeds is None:
        return [default]
    if seeds < 1:
        raise SweepError(f"--seeds must be at least 1, got {seeds}")
    return list(range(seeds))


def make_points(axes: Sequence[GridAxis], seeds: Sequence[int]) -> list[Point]:
    """Every combination of the grid values, each with every seed."""
    short = _short_keys([axis.key for axis in axes])
    choices = [list(zip(axis.texts, axis.values, strict=True)) for axis in axes]
    points = []
    for combo in itertools.product(*choices):
        texts = [text for text, _ in combo]
        if len(axes) == 1:
            label = _slug(texts[0])
        else:
            label = "_".join(f"{short[a.key]}-{_slug(t)}" for a, t in zip(axes, texts, strict=True))
        values = {a.key: value for a, (_, value) in zip(axes, combo, strict=True)}
        grid = tuple(f"{a.key}={t}" for a, t in zip(axes, texts, strict=True))
        points += [
            Point(f"{label}-seed{seed}", label, seed, values, (*grid, f"trainer.seed={seed}"))
            for seed in seeds
        ]
    names = [p.name for p in points]
    if len(set(names)) < len(names):
        raise SweepError("--grid: two values give the same directory name; write them alike")
    return points


@attrs.frozen
class SweepPlan:
    """A validated sweep: every point's config loaded before anything is written or trained."""

    config: Path
    overrides: tuple[str, ...]
    axes: tuple[GridAxis, ...]
    seeds: tuple[int, ...]
    points: tuple[Point, ...]
    configs: dict[str, Config]


def plan_sweep(
    config: Path,
    overrides: Sequence[str],
    grid: Sequence[str],
    seeds: int | None,
    seeds_given: Sequence[int] | None,
) -> SweepPlan:
    """Parse ``--grid``/``--seeds`` and load every point's config (all problems at once)."""
    axes = parse_grid(grid)
    base = load_config(config, overrides)
    chosen = seed_list(seeds, seeds_given, base.trainer.seed)
    points = make_points(axes, chosen)
    configs = load_points(config, overrides, axes, points)
    return SweepPlan(config, tuple(overrides), tuple(axes), tuple(chosen), tuple(points), configs)


def load_points(
    config: Path, overrides: Sequence[str], axes: Sequence[GridAxis], points: Sequence[Point]
) -> dict[str, Config]:
    """Every point's config; each problem names the ``--grid`` argument(s) that caused it."""
    configs, problems = {}, []
    for point in points:
        try:
            configs[point.name] = load_config(config, [*overrides, *point.overrides])
        except ConfigError as exc:
            problems += [_blame(line, axes, point) for line in exc.problems]
    if problems:
        raise ConfigError(dict.fromkeys(problems))  # one line per problem, not per point
    return configs


def _blame(line: str, axes: Sequence[GridAxis], point: Point) -> str:
    """The ``--grid`` argument whose key the line names, else the point's grid values (a
    value can break another key: a strategy that does not take the config's options)."""
    for axis in axes:
        if f": {axis.key}:" in line or f"-o {axis.key}=" in line:
            for text in axis.texts:  # the --grid argument names the values: one line for all
                line = line.replace(f"-o {axis.key}={text}: ", "")
            return f"--grid {axis.argument}: {line}"
    values = ", ".join(f"{key}={value}" for key, value in point.values.items())
    return f"--grid {values}: {line}"


# -- sweep.json ------------------------------------------------------------------------------


def read_sweep(sweep_dir: Path) -> dict[str, Any] | None:
    """``sweep.json`` of ``sweep_dir``, ``None`` when there is none; a damaged one (cut short,
    not an object, no list of points) is a one-line ``SweepError``, not a traceback."""
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SweepError(f"{path}: cannot be read ({exc}); {_DAMAGED}") from None
    if not isinstance(state, dict) or not isinstance(state.get("points"), list):
        raise SweepError(f"{path}: not a sweep record (no list of points); {_DAMAGED}")
    return state


_DAMAGED = "the sweep record is damaged (restore it from a copy)"


def write_sweep(sweep_dir: Path, state: Mapping[str, Any]) -> None:
    """Atomically (a reader never sees half a file, an interrupted write keeps the old one)."""
    path = Path(sweep_dir) / SWEEP_FILE
    write_text_atomic(path, json.dumps(state, indent=2) + "\n")


# -- helpers ---------------------------------------------------------------------------------


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes, so ``clamp=[-5,5],[-10,10]`` is 2 values."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _toml_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _short_keys(keys: Sequence[str]) -> dict[str, str]:
    """The last component of each key, or the whole key where two last components clash."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {k: s if last.count(s) == 1 else k for k, s in zip(keys, last, strict=True)}


def _slug(text: str) -> str:
    """A directory-name-safe rendering of a value text."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text.strip("\"'")).strip("_") or "empty"
