"""What a sweep is made of: ``--grid`` arguments, seeds, the points they span, and
``sweep.json`` (read by ``cmi sweep`` to resume and by ``cmi compare``).

Kept free of torch and Lightning so that parsing and validating a sweep, and comparing finished
runs, start in a fraction of a second.
"""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from cmi_core.common.atomic import write_text_atomic
from cmi_core.config import Config, load_config
from cmi_core.errors import CmiError, ConfigError, RunError
from cmi_core.rundir.reader import read_json_object

SWEEP_FILE = "sweep.json"
SEED_KEY = "trainer.seed"
"""Set by the sweep itself for every point (``--seeds``, ``--seed-list``): never a grid key."""
NO_EFFECT_KEYS = frozenset({"trainer.threads", "trainer.num_workers", "trainer.jobs"})
"""Keys that change how fast a run goes, not its results: ``cmi compare`` would see the points
of a grid over one as a single config (it groups runs by config, these keys aside)."""


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
        axis = GridAxis(argument, key.strip(), texts, tuple(map(_toml_value, texts)))
        _check_axis(axis)
        axes.append(axis)
    keys = [axis.key for axis in axes]
    if len(set(keys)) < len(keys):
        raise SweepError(f"--grid: a key is given twice: {', '.join(keys)}")
    return axes


def _check_axis(axis: GridAxis) -> None:
    """Refuse a grid the sweep would not honour: over the seed it sets itself, over a key that
    does not change results, or naming one value twice (``0.1`` and ``1e-1`` are one point)."""
    if axis.key == SEED_KEY:
        raise SweepError(
            f"--grid {axis.argument}: the sweep sets {SEED_KEY} itself; give the seeds with "
            f"--seed-list {','.join(axis.texts)}"
        )
    if axis.key in NO_EFFECT_KEYS:
        raise SweepError(
            f"--grid {axis.argument}: {axis.key} does not change results, so cmi compare would "
            "see its points as one config; time it with separate runs instead"
        )
    seen: dict[tuple[str, Any], str] = {}
    for text, value in zip(axis.texts, axis.values, strict=True):
        first = seen.setdefault(_identity(value), text)
        if first != text:
            raise SweepError(f"--grid {axis.argument}: {first} and {text} are the same value")


def _identity(value: Any) -> tuple[str, Any]:
    """What makes two grid values one point: numbers by value (``0.1`` is ``1e-1``, ``1`` is
    ``1.0``), booleans apart from numbers, anything else by its JSON form."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return ("json", json.dumps(value, sort_keys=True))


def value_text(value: Any) -> str:
    """One spelling per value, for point names and labels: ``1e-1`` and ``0.1`` both ``0.1``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value)


def point_title(values: Mapping[str, Any]) -> str:
    """A grid point as ``cmi compare`` names it: ``key=value`` with the shortest unambiguous
    keys, space-separated (``strategy=none max_len=96``)."""
    short = _short_keys(list(values))
    return " ".join(f"{short[key]}={value_text(value)}" for key, value in values.items())


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
        texts = [value_text(value) for _, value in combo]  # by value: 1e-1 names as 0.1
        if len(axes) == 1:
            label = _slug(texts[0])
        else:
            label = "_".join(f"{short[a.key]}-{_slug(t)}" for a, t in zip(axes, texts, strict=True))
        values = {a.key: value for a, (_, value) in zip(axes, combo, strict=True)}
        grid = tuple(f"{a.key}={t}" for a, (t, _) in zip(axes, combo, strict=True))
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
    """``sweep.json`` (``None`` where there is none); a damaged one (cut short, not an object,
    no list of points) is one ``RunError`` line."""
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        return None
    state = read_json_object(path)
    sweep_points(sweep_dir, state)
    return state


def sweep_points(sweep_dir: Path, state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The points of a read ``sweep.json``, each with its ``name``, ``label`` and ``seed``."""
    points = state.get("points")
    if not isinstance(points, list) or not all(_is_point(p) for p in points):
        raise RunError(
            f"{Path(sweep_dir) / SWEEP_FILE}: not a sweep (no list of points with a name, label "
            "and seed)"
        )
    return points


def _is_point(raw: Any) -> bool:
    return (
        isinstance(raw, dict)
        and isinstance(raw.get("name"), str)
        and isinstance(raw.get("label"), str)
        and type(raw.get("seed")) is int
    )


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
