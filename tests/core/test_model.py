"""CMIModel: heads, logged tags, the NaN guard, validation outputs and prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

import cmi_core
from cmi_core.config import LossConfig, OptimizerConfig
from cmi_core.data.schema import GESTURES
from cmi_core.metrics import competition_score
from cmi_core.train.model import CMIModel
from cmi_core.train.network import CMINetwork

from .conftest import CHANNELS, TINY_BACKBONE, ModelFactory, make_batch


def _fit(model: CMIModel, root: Path, train: list, val: list) -> pl.Trainer:
    trainer = pl.Trainer(
        max_epochs=1,
        default_root_dir=root,
        logger=pl.loggers.CSVLogger(root),
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, DataLoader(train, batch_size=None), DataLoader(val, batch_size=None))
    return trainer


@pytest.mark.parametrize("demographics", [True, False])
@pytest.mark.parametrize("nine_class_head", [True, False])
def test_forward_returns_the_heads_logits(demographics: bool, nine_class_head: bool) -> None:
    loss = LossConfig(nine_class_head_enabled=nine_class_head)
    terms = (
        ("multiclass", "binary", "nine_class", "kl")
        if nine_class_head
        else ("multiclass", "binary")
    )
    backbone = cmi_core.build_backbone("squeezeformer", CHANNELS, **TINY_BACKBONE)
    model = CMIModel(
        CMINetwork(backbone, nine_class_head=nine_class_head, use_demographics=demographics),
        cmi_core.build_weighting("none", terms),
        loss,
        OptimizerConfig(),
    )
    batch = make_batch()
    outputs = model(batch["x"], batch["mask"], batch["demographics"] if demographics else None)
    expected = {"multiclass": (4, 18), "binary": (4,)}
    if nine_class_head:
        expected["nine_class"] = (4, 9)
    assert {k: tuple(v.shape) for k, v in outputs.items()} == expected


def test_missing_demographics_count_as_zeros(make_model: ModelFactory) -> None:
    model = make_model().eval()
    batch = make_batch()
    zeros = torch.zeros_like(batch["demographics"])
    with torch.no_grad():
        missing = model(batch["x"], batch["mask"])["multiclass"]
        explicit = model(batch["x"], batch["mask"], zeros)["multiclass"]
    torch.testing.assert_close(missing, explicit)


def test_weighting_terms_must_match_the_loss_config() -> None:
    with pytest.raises(ValueError, match="do not match"):
        CMIModel(
            CMINetwork(cmi_core.build_backbone("squeezeformer", CHANNELS, **TINY_BACKBONE)),
            cmi_core.build_weighting("none", ("multiclass", "binary")),
            LossConfig(),  # expects nine_class and kl as well
            OptimizerConfig(),
        )


def test_training_logs_flat_tags_and_validation_keeps_its_outputs(
    make_model: ModelFactory, tmp_path: Path
) -> None:
    model = make_model("uncertainty")
    val = [make_batch(6, 30, seed=50), make_batch(5, 30, seed=51)]
    trainer = _fit(model, tmp_path, [make_batch(seed=i) for i in range(3)], val)

    header = (tmp_path / "lightning_logs/version_0/metrics.csv").read_text().splitlines()[0]
    terms = ("multiclass", "binary", "nine_class", "kl")
    expected = {"lr", "loss/total", "train/loss/total", "val/loss/total", "val/cmi_score"}
    expected |= {"val/binary_f1", "val/macro_f1"}
    for term in terms:
        expected |= {f"loss/{term}", f"train/loss/{term}", f"val/loss/{term}"}
        expected |= {f"weights/{term}", f"weighting/s_{term}"}
    assert expected <= set(header.split(","))

    probs, targets = model.last_val_probs, model.last_val_targets
    assert probs.shape == (11, 18)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(targets, torch.cat([b["y18"] for b in val]).numpy())
    predictions = probs.argmax(axis=1)
    confusion = model.last_val_confusion
    assert confusion.shape == (18, 18) and confusion.sum() == 11
    for t, p in zip(targets, predictions, strict=True):
        assert confusion[t, p] >= 1
    score = competition_score([GESTURES[i] for i in targets], [GESTURES[i] for i in predictions])
    logged = trainer.callback_metrics
    assert logged["val/cmi_score"].item() == pytest.approx(score["cmi_score"])
    assert logged["val/macro_f1"].item() == pytest.approx(score["macro_f1"])


def test_a_non_finite_loss_stops_with_the_step_and_the_terms(
    make_model: ModelFactory, tmp_path: Path
) -> None:
    bad = make_batch(seed=2)
    bad["x"][0, -1, 0] = float("nan")  # a NaN in a real frame
    with pytest.raises(cmi_core.RunError) as error:
        _fit(make_model("direct"), tmp_path, [make_batch(seed=1), bad], [make_batch()])
    message = str(error.value)
    assert message.startswith("non-finite loss at step 1: multiclass=nan, binary=nan, ")
    assert "nine_class=nan, kl=nan, total=nan" in message


def test_predict_step_returns_18_class_probabilities(make_model: ModelFactory) -> None:
    model = make_model().eval()
    with torch.no_grad():
        probs = model.predict_step(make_batch(), 0)
    assert probs.shape == (4, 18)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(4))


def test_the_trainer_builds_from_the_loaded_options_without_structuring_them_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cmi_core import builders
    from cmi_core.train.assemble import build_model
    from tests.run.conftest import tiny_config

    cfg = tiny_config(tmp_path, loss={"weighting": {"strategy": "uncertainty"}})

    def restructured(*args: object, **kwargs: object) -> None:
        raise AssertionError("build_model structured plugin options a second time")

    monkeypatch.setattr(builders, "structure_options", restructured)
    model = build_model(cfg, CHANNELS)
    assert model.weighting.terms and model.network.backbone is model.backbone


def test_the_typed_builders_refuse_a_dict() -> None:
    from cmi_core.builders import make_backbone

    with pytest.raises(TypeError, match="options here"):
        make_backbone("squeezeformer", CHANNELS, dict(TINY_BACKBONE))


def test_replacing_a_network_part_on_the_module_replaces_it_in_the_network(
    make_model: ModelFactory,
) -> None:
    model = make_model()
    heads = torch.nn.ModuleDict(dict(model.heads.items()))
    model.heads = heads
    assert model.network.heads is heads
