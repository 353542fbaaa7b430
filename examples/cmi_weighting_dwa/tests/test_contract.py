"""The cmi-trainer contract kit, run on the installed ``dwa`` plugin."""

import math

import pytest
import torch

import cmi_core
from cmi_core.testing import WeightingContract


class TestDWA(WeightingContract):
    @pytest.fixture
    def plugin_name(self):
        return "dwa"


def test_a_slowly_falling_loss_gets_more_weight():
    dwa = cmi_core.build_weighting("dwa", ["multiclass", "binary"], alpha=0.5, window=1)
    for multiclass, binary in [(2.0, 1.0), (2.0, 0.5)]:  # binary halves, multiclass stays
        dwa({"multiclass": torch.tensor(multiclass), "binary": torch.tensor(binary)})
    # rates r = (2/2, 0.5/1); w = 2 * softmax(r / 2), times the fixed weights 0.5 and 0.5
    e_multiclass, e_binary = math.exp(1.0 / 2), math.exp(0.5 / 2)
    total = e_multiclass + e_binary
    weights = {t: float(w) for t, w in dwa.effective_weights().items()}
    assert weights == pytest.approx(
        {"multiclass": e_multiclass / total, "binary": e_binary / total}
    )
