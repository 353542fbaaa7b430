"""The contract kit itself: it fails each broken plugin of ``broken_plugins.py`` with a sentence.

Each plugin runs through the kit's class in a pytest session of its own (``pytester``), as a
third-party author runs it; every other check passes, so only the one naming the fault fails,
and its message says what the plugin must do.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cmi_core.testing

CONTRACT_FILE = """
import pytest
from cmi_core.testing import {contract}

class TestPlugin({contract}):
    @pytest.fixture
    def plugin_name(self):
        return {name!r}

    @pytest.fixture
    def plugin_modules(self):
        return ["tests.core.broken_plugins"]
"""

# plugin -> (contract class, the one check that must fail, a sentence of its message)
BROKEN = {
    "zero_total": (
        "WeightingContract",
        "test_every_active_loss_gets_a_nonzero_gradient",
        "every active loss must get a non-zero, finite gradient",
    ),
    "buffer_learner": (
        "WeightingContract",
        "test_state_changes_after_a_step_exactly_when_it_learns",
        "a learning strategy must update its parameters or buffers",
    ),
    "nan_above_1e7": (
        "WeightingContract",
        "test_extreme_losses_stay_finite",
        "must stay finite for any loss from 0 to 1e+08, mixed magnitudes included",
    ),
    "unnamed_clamp": (
        "WeightingContract",
        "test_parameters_stay_in_the_declared_range",
        "the forward pass must clamp to the declared parameter_range() (-2.0, 2.0)",
    ),
    "sign_error": (
        "WeightingContract",
        "test_forward_matches_the_reference_formula",
        "forward must compute the strategy's documented formula",
    ),
    "forgetful": (
        "BackboneContract",
        "test_state_dict_round_trip",
        "everything the output depends on must be a parameter or a persistent buffer",
    ),
    "lazy_state": (
        "BackboneContract",
        "test_state_dict_round_trip",
        "state sized at the first step must be resized in _load_from_state_dict",
    ),
    "ignores_mixup": (
        "TaskContract",
        "test_the_loss_is_mixup_aware",
        "with mix_lambda = 0 the loss must be the loss of the partners' targets",
    ),
    "detached_loss": (
        "TaskContract",
        "test_the_loss_trains_the_heads_it_reads",
        "the loss sends no gradient to the head(s) it reads",
    ),
    "undeclared_dependency": (
        "TaskContract",
        "test_the_loss_reads_only_the_outputs_it_declares",
        "the loss reads the output 'multiclass', which it does not declare",
    ),
    "counts_unknown_frames": (
        "TaskContract",
        "test_a_frame_loss_skips_frames_without_a_label",
        "a per-frame loss must count only the frames with a known label",
    ),
}


def _failures(pytester: pytest.Pytester, contract: str, name: str) -> dict[str, str]:
    """Run ``contract`` on plugin ``name``: the failed checks (without parameters), messages."""
    pytester.makepyfile(test_plugin=CONTRACT_FILE.format(contract=contract, name=name))
    recorder = pytester.inline_run("-p", "no:cacheprovider")
    passed, _, failed = recorder.listoutcomes()
    assert passed, f"no check of the kit passed for {name}: the harness itself is broken"
    return {report.head_line.split(".")[-1].split("[")[0]: report.longreprtext for report in failed}


@pytest.mark.parametrize("name", list(BROKEN))
def test_the_kit_fails_a_broken_plugin_with_a_sentence(
    pytester: pytest.Pytester, name: str
) -> None:
    contract, check, sentence = BROKEN[name]
    failures = _failures(pytester, contract, name)
    assert set(failures) == {check}, (
        f"{name}: expected only {check} to fail, failed: {sorted(failures)}"
    )
    assert sentence in failures[check], failures[check]


def test_the_harness_passes_a_sound_plugin(pytester: pytest.Pytester) -> None:
    assert _failures(pytester, "WeightingContract", "uncertainty") == {}


def test_the_sound_task_behind_the_broken_ones_passes(pytester: pytest.Pytester) -> None:
    assert _failures(pytester, "TaskContract", "sound_task") == {}
    assert _failures(pytester, "TaskContract", "sound_frame_task") == {}


def test_the_documented_lazy_state_pattern_passes(pytester: pytest.Pytester) -> None:
    assert _failures(pytester, "BackboneContract", "lazy_state_loaded") == {}


def _bare_checks(path: Path) -> list[str]:
    """``assert`` statements without a message, ``assert_close`` calls without ``msg=``."""
    bare = []
    for node in ast.walk(ast.parse(path.read_text())):
        bare_assert = isinstance(node, ast.Assert) and node.msg is None
        bare_close = (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "assert_close"
            and not any(k.arg == "msg" for k in node.keywords)
        )
        if bare_assert or bare_close:
            bare.append(f"{path.name}:{node.lineno}")
    return bare


def test_every_check_of_the_kit_fails_with_a_sentence() -> None:
    kit = Path(cmi_core.testing.__file__).parent
    bare = [where for path in sorted(kit.glob("*.py")) for where in _bare_checks(path)]
    assert not bare, f"checks that would fail with a bare AssertionError: {bare}"
