"""docs/architecture.md is the source of truth for the layout: it names every module of
cmi_core, and its layer diagram lists the layers of the import-linter contract in order."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()


def test_every_module_has_a_row():
    core = ROOT / "cmi_core"
    modules = [
        path.relative_to(core).as_posix()
        for path in sorted(core.rglob("*.py"))
        if (path.name != "__init__.py" or path.parent == core) and path.parent.name != "testing"
    ]
    rows = set(re.findall(r"^\| `(?:cmi_core/)?([\w/]+\.py)` \|", DOC, re.MULTILINE))
    missing = [m for m in modules if m not in rows]
    assert not missing, f"modules without a row in docs/architecture.md: {missing}"
    gone = sorted(rows - set(modules))
    assert not gone, f"rows in docs/architecture.md for modules that do not exist: {gone}"


def test_the_diagram_lists_the_contracts_layers_in_order():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    diagram = DOC[DOC.index("## Layers") :].split("```")[1]
    drawn = [line.split("  ")[0].strip() for line in diagram.strip().splitlines()]
    assert drawn == [layer.strip() for layer in layers]
