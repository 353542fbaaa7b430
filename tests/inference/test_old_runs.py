"""Runs written before the network was split from the training module still load.

``data/state_dict_before_network_split.json`` is the state dict (names and shapes, weighting
values left out) of a one-fold ``uncertainty`` run written by the code before the split, and
``data/config_before_network_split.toml`` its config: the network prediction builds from that
config must take exactly those tensors, so every ``best.pt`` of such a run loads unchanged.
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

import pytest

from cmi_core import builders
from cmi_core.data.features import feature_names
from cmi_core.predict.fold_models import inference_config, inference_model, load_checkpoint
from cmi_core.predict.predictor import Predictor
from cmi_core.train.network import CMINetwork

DATA = Path(__file__).parent / "data"


def test_the_network_takes_the_state_dict_written_before_the_split() -> None:
    raw = tomllib.loads((DATA / "config_before_network_split.toml").read_text())
    as_read = copy.deepcopy(raw)
    cfg = inference_config(raw, "config_before_network_split.toml")
    assert raw == as_read  # the caller's table is not rewritten for inference
    network = inference_model(cfg, len(feature_names(cfg.data.features)))
    before = json.loads((DATA / "state_dict_before_network_split.json").read_text())
    assert {k: list(v.shape) for k, v in network.state_dict().items()} == before


def test_prediction_loads_only_the_network(
    tiny_run: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No training module, no weighting, and the config's options are not structured again."""
    state = load_checkpoint(tiny_run[0] / "fold_0" / "best.pt")["state_dict"]

    def restructured(*args: object, **kwargs: object) -> None:
        raise AssertionError("prediction structured plugin options a second time")

    monkeypatch.setattr(builders, "structure_options", restructured)
    model = Predictor.from_run(tiny_run[0]).ensembles[0].models[0]
    assert type(model) is CMINetwork
    assert set(model.state_dict()) == {k for k in state if not k.startswith("weighting.")}
