"""The cmi-trainer contract kit, run on the installed ``normalized`` plugin."""

import pytest
import torch

import cmi_core
from cmi_core.testing import WeightingContract


class TestNormalized(WeightingContract):
    @pytest.fixture
    def plugin_name(self):
        return "normalized"


def test_every_term_is_divided_by_its_first_loss():
    weighting = cmi_core.build_weighting("normalized", ["multiclass", "binary"], alpha=0.75)
    first = {"multiclass": torch.tensor(2.0), "binary": torch.tensor(0.5)}
    assert float(weighting(first)) == pytest.approx(0.75 + 0.25)  # each term at its reference
    later = {"multiclass": torch.tensor(1.0), "binary": torch.tensor(0.5)}
    assert float(weighting(later)) == pytest.approx(0.75 * 1.0 / 2.0 + 0.25 * 0.5 / 0.5)
    weights = {t: float(w) for t, w in weighting.effective_weights().items()}
    assert weights == pytest.approx({"multiclass": 0.75 / 2.0, "binary": 0.25 / 0.5})


def test_validation_does_not_set_the_reference():
    weighting = cmi_core.build_weighting("normalized", ["multiclass", "binary"]).eval()
    weighting({"multiclass": torch.tensor(4.0), "binary": torch.tensor(0.1)})
    weights = {t: float(w) for t, w in weighting.effective_weights().items()}
    assert weights == pytest.approx({"multiclass": 0.5, "binary": 0.5})
