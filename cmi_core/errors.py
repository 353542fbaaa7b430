"""User-facing errors: the CLI prints each as ``error: <line>`` and exits with code 2."""

from __future__ import annotations

from collections.abc import Iterable


class CmiError(Exception):
    """An error caused by the user's input (config, data, plugin choice), not by a bug.

    The message is complete on its own; the CLI shows it without a traceback.
    """

    def lines(self) -> list[str]:
        return [str(self)]


class ConfigError(CmiError):
    """One or more configuration problems, each already formatted as ``<file>: <key>: <msg>``."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def lines(self) -> list[str]:
        return self.problems


class PluginError(CmiError):
    """A plugin is missing, failed to load, or is ambiguous."""


class DataError(CmiError):
    """Input data that does not match the Kaggle schema or cannot be used."""


class RunError(CmiError):
    """A training run cannot start or continue (existing output, NaN loss, ...)."""


class NonFiniteError(RunError):
    """Training produced a non-finite loss, gradient or weight: the fold stops before any
    checkpoint holds it."""


class PathError(CmiError):
    """A path argument (or a path in a config) that is missing, of the wrong kind (a file where
    a directory is expected or the reverse), unreadable or unwritable."""
