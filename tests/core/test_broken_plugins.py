"""The contract kit fails each broken plugin of ``broken_weightings.py``, with a sentence.

Each plugin runs through ``WeightingContract`` in a pytest session of its own (``pytester``),
as a third-party author runs it; every other check passes, so only the one naming the fault
fails, and its message says what the plugin must do.
"""

from __future__ import annotations

import pytest

CONTRACT_FILE = """
import pytest
from cmi_core.testing import WeightingContract

class TestPlugin(WeightingContract):
    @pytest.fixture
    def plugin_name(self):
        return {name!r}

    @pytest.fixture
    def plugin_modules(self):
        return ["tests.core.broken_weightings"]
"""

BROKEN = {
    "zero_total": (
        "test_every_active_loss_gets_a_nonzero_gradient",
        "every active loss must get a non-zero, finite gradient",
    ),
    "buffer_learner": (
        "test_state_changes_after_a_step_exactly_when_it_learns",
        "a learning strategy must update its parameters or buffers",
    ),
    "nan_above_1e7": (
        "test_extreme_losses_stay_finite",
        "must stay finite for any loss from 0 to 1e+08, mixed magnitudes included",
    ),
    "unnamed_clamp": (
        "test_parameters_stay_in_the_declared_range",
        "the forward pass must clamp to the declared parameter_range() (-2.0, 2.0)",
    ),
    "sign_error": (
        "test_forward_matches_the_reference_formula",
        "forward must compute the strategy's documented formula",
    ),
}


def _failures(pytester: pytest.Pytester, name: str) -> dict[str, str]:
    """Run the kit on plugin ``name``; the failed checks (without parameters) and messages."""
    pytester.makepyfile(test_plugin=CONTRACT_FILE.format(name=name))
    recorder = pytester.inline_run("-p", "no:cacheprovider")
    passed, _, failed = recorder.listoutcomes()
    assert passed, f"no check of the kit passed for {name}: the harness itself is broken"
    return {report.head_line.split(".")[-1].split("[")[0]: report.longreprtext for report in failed}


@pytest.mark.parametrize("name", list(BROKEN))
def test_the_kit_fails_a_broken_plugin_with_a_sentence(
    pytester: pytest.Pytester, name: str
) -> None:
    check, sentence = BROKEN[name]
    failures = _failures(pytester, name)
    assert set(failures) == {check}, (
        f"{name}: expected only {check} to fail, failed: {sorted(failures)}"
    )
    assert sentence in failures[check], failures[check]


def test_the_harness_passes_a_sound_plugin(pytester: pytest.Pytester) -> None:
    assert _failures(pytester, "uncertainty") == {}
