"""Random-number state carried through ``last.ckpt``, so a resumed fold draws what the
uninterrupted fold would have drawn (docs/running.md, "Determinism").

Lightning restores weights, optimizer, schedulers and loop counters but no RNG. A fold draws
from: torch's global RNG (dropout, the dataset's augmentation draws, model init), the training
loader's generator (the shuffle order and DataLoader worker seeds), mixup's own generator, and
Python's and numpy's global RNGs (for any plugin that uses them). :class:`RngState` saves them
all in ``last.ckpt`` (plain tensors and lists: loads with ``weights_only=True``) and restores
them when the resumed epoch starts. Not covered: DataLoader worker processes (``num_workers >
0``) keep their own RNG streams, so mixup and augmentation in workers are not resumed exactly.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader


class RngState(pl.Callback):
    """Saves and restores every RNG a fold draws from (see the module docstring).

    ``loader`` is the fold's training DataLoader: its generator, and its collate function's
    ``generator`` when it has one (mixup), are part of the state.
    """

    def __init__(self, loader: DataLoader) -> None:
        self.loader_generator: torch.Generator | None = loader.generator
        self.collate = loader.collate_fn if hasattr(loader.collate_fn, "generator") else None
        self.pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        numpy_state = np.random.get_state(legacy=False)
        state: dict[str, Any] = {
            "python": _python_state(random.getstate()),
            "numpy": {
                "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
                "pos": int(numpy_state["state"]["pos"]),
                "has_gauss": int(numpy_state["has_gauss"]),
                "gauss": float(numpy_state["gauss"]),
            },
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        if self.loader_generator is not None:
            state["loader"] = self.loader_generator.get_state()
        if self.collate is not None and self.collate.generator is not None:
            state["collate"] = self.collate.generator.get_state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the state until the resumed epoch starts: on resume Lightning creates the
        loader's iterator once more than an uninterrupted fold does (one extra generator draw)
        before that epoch, and nothing draws between a checkpoint and the next epoch's start."""
        self.pending = state_dict

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.pending is not None:
            self._restore(self.pending)
            self.pending = None

    def _restore(self, state_dict: dict[str, Any]) -> None:
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))
        saved = state_dict["numpy"]
        np.random.set_state(
            {
                "bit_generator": "MT19937",
                "state": {"key": saved["key"].numpy().astype(np.uint32), "pos": saved["pos"]},
                "has_gauss": saved["has_gauss"],
                "gauss": saved["gauss"],
            }
        )
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
        if "loader" in state_dict and self.loader_generator is not None:
            self.loader_generator.set_state(state_dict["loader"])
        if "collate" in state_dict and self.collate is not None:
            self.collate.generator = torch.Generator()
            self.collate.generator.set_state(state_dict["collate"])


def _python_state(state: tuple) -> tuple:
    version, internal, gauss = state
    return version, list(internal), gauss
