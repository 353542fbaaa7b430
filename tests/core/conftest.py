"""Tiny models and batches for the core tests (as the original exp025 tests: 7 channels)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import cmi_core
from cmi_core.config import LossConfig, OptimizerConfig
from cmi_core.data.schema import GESTURE_IS_TARGET, GESTURE_TO_NINE
from cmi_core.train.model import CMIModel
from cmi_core.train.network import CMINetwork
from cmi_core.weighting import active_terms

CHANNELS = 7
TINY_BACKBONE = {"d_model": 16, "n_layers": 1, "n_heads": 2, "ff_dim": 32}


def make_batch(size: int = 4, length: int = 50, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random sequences with a learnable hint of the label; the last ones are left-padded."""
    generator = torch.Generator().manual_seed(seed)
    y18 = torch.randint(0, 18, (size,), generator=generator)
    x = torch.randn(size, length, CHANNELS, generator=generator) + 0.3 * y18[:, None, None]
    mask = torch.ones(size, length, dtype=torch.bool)
    mask[size // 2 :, : length // 3] = False
    batch = {
        "x": x,
        "mask": mask,
        "demographics": torch.rand(size, 7, generator=generator),
        "y18": y18,
        "ybin": torch.as_tensor(GESTURE_IS_TARGET)[y18].float(),
        "y9": torch.as_tensor(GESTURE_TO_NINE)[y18],
    }
    # the auxiliary tasks' targets, drawn after the others so those stay as they were
    batch["yorient"] = torch.randint(0, 4, (size,), generator=generator)
    batch["ycomposite"] = torch.randint(0, 144, (size,), generator=generator)
    batch["yphase"] = torch.randint(0, 2, (size, length), generator=generator).masked_fill(
        ~mask, -1
    )
    batch["ybehavior"] = torch.randint(0, 4, (size, length), generator=generator)
    batch["ybehavior"] = batch["ybehavior"].masked_fill(~mask, -1)
    return batch


ModelFactory = Callable[..., CMIModel]


@pytest.fixture
def make_model() -> ModelFactory:
    """``make_model(strategy, loss=LossConfig(), optimizer=OptimizerConfig(), **options)``."""

    def make(
        strategy: str = "none",
        loss: LossConfig | None = None,
        optimizer: OptimizerConfig | None = None,
        total_steps: int | None = 10,
        **options: Any,
    ) -> CMIModel:
        loss = loss or LossConfig()
        torch.manual_seed(0)
        terms = active_terms(loss.nine_class_head_enabled, loss.kl_weight)
        weighting = cmi_core.build_weighting(
            strategy,
            terms,
            alpha=loss.alpha,
            nine_class_loss_weight=loss.nine_class_loss_weight,
            kl_weight=loss.kl_weight,
            **options,
        )
        backbone = cmi_core.build_backbone("squeezeformer", CHANNELS, **TINY_BACKBONE)
        network = CMINetwork(backbone, nine_class_head=loss.nine_class_head_enabled)
        return CMIModel(
            network, weighting, loss, optimizer or OptimizerConfig(), total_steps=total_steps
        )

    return make
