"""Runs written before the network was split from the training module still predict, exactly.

``data/run_before_network_split`` is a one-fold run (``uncertainty``, so its ``best.pt`` holds
``weighting.*`` values too) written by the code before the split, with the probabilities that
code predicted for three fixed inputs (``expected.pt``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cmi_core import builders
from cmi_core.predict.fold_models import load_checkpoint
from cmi_core.predict.predictor import Predictor
from cmi_core.train.network import CMINetwork

RUN = Path(__file__).parent / "data" / "run_before_network_split"


def test_a_run_written_before_the_split_predicts_as_it_did() -> None:
    expected = torch.load(RUN / "expected.pt", weights_only=True)
    ensemble = Predictor.from_run(RUN).ensembles[0]
    probs = ensemble.proba(expected["x"], expected["mask"], expected["demographics"])
    torch.testing.assert_close(probs, expected["probs"], rtol=0, atol=1e-6)


def test_prediction_loads_only_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """No training module, no weighting, and the config's options are not structured again."""
    state = load_checkpoint(RUN / "fold_0" / "best.pt")["state_dict"]
    assert any(key.startswith("weighting.") for key in state)  # the run did learn weights

    def restructured(*args: object, **kwargs: object) -> None:
        raise AssertionError("prediction structured plugin options a second time")

    monkeypatch.setattr(builders, "structure_options", restructured)
    (model,) = Predictor.from_run(RUN).ensembles[0].models
    assert type(model) is CMINetwork
    assert set(model.state_dict()) == {k for k in state if not k.startswith("weighting.")}
