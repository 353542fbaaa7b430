"""The gradient-level plugin example of docs/weighting.md passes the contract kit as written."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from cmi_core.builders import build_weighting
from cmi_core.testing import gradient_contract as kit
from cmi_core.weighting import TERMS, LossWeighting

DOC = Path(__file__).resolve().parents[2] / "docs" / "weighting.md"


@pytest.fixture
def example_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    section = DOC.read_text().split("## Writing a gradient-level plugin", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    package = tmp_path / "my_strategies"
    package.mkdir()
    (package / "__init__.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_strategies"
    sys.modules.pop("my_strategies", None)


def test_the_documented_gradient_plugin_passes_the_kit(example_module: str) -> None:
    def build(terms: Sequence[str] = TERMS) -> LossWeighting:
        return build_weighting("softmax_norm", terms, modules=[example_module], temperature=2.0)

    kit.check_kind_and_terms(build)
    kit.check_every_task_moves(build)
    kit.check_agreeing_tasks_keep_their_direction(build)
    kit.check_extreme_jacobians_stay_finite(build)
    kit.check_logged_weights(build)
    kit.check_state_dict_round_trip(build)
    kit.check_trains_the_model(build, "representation")


def test_the_aggregator_example_is_the_mgda_plugin_as_shipped() -> None:
    """The declaration docs/weighting.md shows is the plugin's own code, not a copy that drifts."""
    section = DOC.read_text().split("**Around an aggregator, a declaration.**", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    plugin = Path(__file__).resolve().parents[2] / "plugins" / "cmi_weighting_mgda" / "__init__.py"
    assert plugin.read_text().endswith(code)
