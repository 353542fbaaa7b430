"""docs/weighting.md describes every strategy this project ships at its level, and each
loss-level one's options and their defaults (a third-party plugin installed beside it documents
itself)."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from cmi_core.registry.manager import get_plugin_manager

pytestmark = pytest.mark.plugin_listing  # run again beside the examples (test_example_plugin)

DOC = Path(__file__).resolve().parents[2] / "docs" / "weighting.md"
STRATEGIES = sorted(
    info.name
    for info in get_plugin_manager().infos()
    if info.kind == "weighting" and info.distribution == "cmi-trainer"
)
LOSS_LEVEL = [n for n in STRATEGIES if get_plugin_manager().get("weighting", n).level == "loss"]


def test_one_table_lists_the_strategies():
    """One table, so two cannot disagree on a strategy's level or cost."""
    headers = re.findall(r"^\| strategy \| (?:level|kind) \|", DOC.read_text(), re.MULTILINE)
    assert len(headers) == 1, f"{len(headers)} strategy tables in docs/weighting.md"


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_has_a_row_at_its_level(name: str) -> None:
    level = get_plugin_manager().get("weighting", name).level
    assert re.search(rf"^\| `{name}` \| {level} \|", DOC.read_text(), re.MULTILINE), (
        f"no '| `{name}` | {level} |' row in the 'Every strategy' table"
    )


@pytest.mark.parametrize("name", LOSS_LEVEL)
def test_the_strategy_has_a_section_with_every_option(name: str) -> None:
    doc = DOC.read_text()
    section = re.search(rf"^## `{name}` .*?(?=^## )", doc, re.MULTILINE | re.DOTALL)
    assert section, f"no '## `{name}`' section"
    options = get_plugin_manager().get("weighting", name).config_cls
    for option in attrs.fields(options):
        default = option.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        if isinstance(default, bool):
            shown = str(default).lower()  # as TOML writes it
        elif isinstance(default, str):
            shown = f'"{default}"'
        elif isinstance(default, tuple | list):
            shown = f"[{', '.join(map(repr, default))}]"  # as TOML writes it
        else:
            shown = repr(default).replace("e-0", "e-")
        row = f"| `{option.name}` | `{shown}` |"
        assert row in section.group(0), f"option row {row!r} missing from the {name} section"
