"""Run import-linter with the plugin packages filled in from the entry points.

The contracts in pyproject.toml name the plugin packages as ``"@plugins"``; the one list of
them is ``[project.entry-points."cmi.plugins"]``, so adding a plugin touches one place. This
writes the expanded configuration to a temporary file and runs ``lint-imports`` on it (the
test command calls this instead of ``lint-imports``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = "@plugins"


def plugin_packages(pyproject: dict[str, Any]) -> list[str]:
    """The top-level packages the ``cmi.plugins`` entry points name, sorted."""
    targets = pyproject["project"]["entry-points"]["cmi.plugins"].values()
    return sorted({target.split(":")[0].split(".")[0] for target in targets})


def expanded(pyproject: dict[str, Any]) -> dict[str, Any]:
    """``[tool.importlinter]`` with every ``"@plugins"`` list entry replaced by the packages."""
    packages = plugin_packages(pyproject)

    def expand(value: Any) -> Any:
        if isinstance(value, list):
            return [
                p for item in value for p in (packages if item == PLACEHOLDER else [expand(item)])
            ]
        if isinstance(value, dict):
            return {key: expand(item) for key, item in value.items()}
        return value

    return expand(pyproject["tool"]["importlinter"])


def _toml(config: dict[str, Any]) -> str:
    import tomli_w

    return tomli_w.dumps({"tool": {"importlinter": config}})


def main() -> int:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    linter = Path(sys.executable).with_name("lint-imports")
    with tempfile.NamedTemporaryFile("w", suffix=".toml", encoding="utf-8") as config:
        config.write(_toml(expanded(pyproject)))
        config.flush()
        return subprocess.run([str(linter), "--config", config.name], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
