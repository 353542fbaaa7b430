"""Value checks and ``field``: how the core config and every plugin's option class declare a
key, its default, the check of its value and its one-line doc (public: plugins import these
from ``cmi_core``)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

import attrs

Check = Callable[[Any], str | None]


def positive(value: Any) -> str | None:
    return None if value > 0 else f"must be > 0, got {value!r}"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else f"must be >= 0, got {value!r}"


def at_least(low: float) -> Check:
    return lambda value: None if value >= low else f"must be >= {low}, got {value!r}"


def in_range(low: float, high: float) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be in [{low}, {high}], got {value!r}"

    return check


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown value {value!r}{hint}; expected one of: {', '.join(choices)}"

    return check


MAX_SEED = 2**32 - 1  # numpy's RandomState and Lightning's seed_everything take 0 .. 2**32 - 1


def seed_range(value: Any) -> str | None:
    """A seed every generator of a run accepts (numpy refuses a negative one, Lightning one
    above 2**32 - 1): checked by ``cmi check``, not found by a traceback in the first fold."""
    return None if 0 <= value <= MAX_SEED else f"must be in [0, {MAX_SEED}], got {value!r}"


def odd_at_least(low: int) -> Check:
    """For kernel sizes: odd keeps 'same' padding symmetric."""
    return lambda value: (
        None
        if value >= low and value % 2 == 1
        else f"must be an odd number >= {low}, got {value!r}"
    )


def ordered_pair(value: Sequence[float]) -> str | None:
    if len(value) != 2:
        return f"must be [low, high], got {list(value)!r}"
    return None if value[0] < value[1] else f"low must be < high, got {list(value)!r}"


def field(default: Any, check: Check | None = None, doc: str = "", *, plugin: bool = False) -> Any:
    """An attrs field with a value check and a one-line doc (used by the docs test).

    ``plugin=True`` marks a field filled from the plugin option tables, not a key of its own.
    """
    kwargs: dict[str, Any] = {"metadata": {"check": check, "doc": doc, "plugin_tables": plugin}}
    if isinstance(default, list | dict):
        kwargs["factory"] = lambda d=default: type(d)(d)
    elif attrs.has(default):
        kwargs["factory"] = default
    else:
        kwargs["default"] = default
    return attrs.field(**kwargs)


@attrs.frozen
class TaskOptions:
    """Options every task added beside the four exp025 terms has: its fixed weight (used by
    the ``none`` strategy, and as the starting weight of strategies that start from it).
    Here, torch-free, so a task plugin declares its options without importing torch."""

    weight: float = field(1.0, non_negative, "fixed weight of this task's loss")
