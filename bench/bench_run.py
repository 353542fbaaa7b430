"""Training time of a ``cmi run`` fold vs a plain PyTorch loop (target: at most 1.10x).

``bench/bench_step.py`` compares the LightningModule in a bare ``Trainer`` with a plain loop on
random tensors. This script measures what ``cmi run`` adds on top: the run's own ``Trainer``
(``assemble.make_trainer``: gradient clipping, the TensorBoard logger at the config's log interval)
with every fold callback (``assemble.fold_callbacks``: checkpoint writers, early stopping, clock,
hparams, confusion figure, the epoch progress bar), on the config's model and its real data
loaders (fold 0 of the synthetic set, augmentation included). The plain loop trains the same
model from the same DataLoaders with the same optimizer, schedule and clipping, validates after
every epoch as the model does (losses, probabilities, the competition score), and logs and
saves nothing. Both sides run on one device (``--device``, the config's accelerator is
overridden), so the ratio never compares a GPU with a CPU.

Like ``bench_step.py`` (whose turn-taking it reuses), the two loops run in threads that take
turns one step at a time. A step is everything from one batch start to the next (data loading
included), so the last step of an epoch includes its validation and the epoch-end callbacks.
Two ratios: the median over the steps of the ratio of neighbouring steps (robust to a busy
neighbour on the shared machine, blind to what happens in fewer than half of the steps) and
the ratio of the summed times of all timed steps, which cover whole epochs with validation.

    .venv/bin/python bench/bench_run.py [--config configs/exp025.toml] [--epochs 2]
                                        [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
from bench_step import Turns, TurnTaking, plain_optimizer, plain_step, print_ratios
from pytorch_lightning import seed_everything
from torch.utils.data import DataLoader

from cmi_core.config import Config, load_config
from cmi_core.data.folds import assign_folds
from cmi_core.data.schema import GESTURES
from cmi_core.data.sequences import SequenceSet
from cmi_core.data.source import load_data
from cmi_core.metrics import competition_score
from cmi_core.train import assemble
from cmi_core.train.losses import compute_losses
from cmi_core.train.model import CMIModel

RUNS = ("cmi run trainer", "plain loop")


Loaders = tuple[DataLoader, DataLoader]
ACCELERATORS = {"cpu": "cpu", "cuda": "gpu"}


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device) for key, value in batch.items()}


@torch.no_grad()
def validate(model: CMIModel, loader: DataLoader, device: torch.device) -> dict[str, float]:
    """What the model's validation computes: raw and weighted losses, then the score."""
    model.eval()
    probs, targets = [], []
    for batch in loader:
        batch = to_device(batch, device)
        outputs = model(batch["x"], batch["mask"], batch["demographics"])
        model.weighting(compute_losses(outputs, batch, model.loss_cfg, model.weighting.terms))
        probs.append(outputs["multiclass"].float().softmax(dim=-1))
        targets.append(batch["y18"])
    model.train()
    predictions = torch.cat(probs).argmax(dim=1).cpu().numpy()
    truth = torch.cat(targets).cpu().numpy()
    return competition_score([GESTURES[i] for i in truth], [GESTURES[i] for i in predictions])


def plain_loop(
    cfg: Config, in_channels: int, loaders: Loaders, device: torch.device, turns: TurnTaking
) -> None:
    loader, val_loader = loaders
    model = assemble.build_model(cfg, in_channels).to(device).train()
    steps = len(loader) * cfg.trainer.max_epochs
    optimizer, scheduler = plain_optimizer(model, steps)
    for _ in range(cfg.trainer.max_epochs):
        for batch in loader:
            turns.tick("plain loop")
            plain_step(model, optimizer, to_device(batch, device), cfg.trainer.gradient_clip_val)
            if scheduler is not None:
                scheduler.step()
        validate(model, val_loader, device)
    turns.done("plain loop")


def run_trainer(cfg: Config, data: SequenceSet, loaders: Loaders, turns: TurnTaking) -> None:
    """The run's Trainer and fold callbacks, in a throw-away fold directory."""
    model = assemble.build_model(cfg, len(data.feature_names))
    with tempfile.TemporaryDirectory() as root:
        callbacks = assemble.fold_callbacks(cfg, data, 0, Path(root), progress=True)
        turn = Turns("cmi run trainer", turns)
        trainer = assemble.make_trainer(cfg, Path(root), [*callbacks.all, turn], progress=True)
        trainer.fit(model, *loaders)


def measure(
    cfg: Config, data: SequenceSet, loaders: Loaders, device: torch.device
) -> dict[str, list]:
    turns = TurnTaking(RUNS)
    loops = {
        "cmi run trainer": lambda: run_trainer(cfg, data, loaders, turns),
        "plain loop": lambda: plain_loop(cfg, len(data.feature_names), loaders, device, turns),
    }
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        return turns.race(loops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/exp025.toml"))
    parser.add_argument("--epochs", type=int, default=2, help="training epochs of fold 0")
    parser.add_argument("--device", choices=list(ACCELERATORS), default="cpu", help="both sides")
    args = parser.parse_args()
    pinned = f"trainer.accelerator={ACCELERATORS[args.device]}"
    cfg = load_config(args.config, [f"trainer.max_epochs={args.epochs}", pinned])
    assemble.quiet_lightning()
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    seed_everything(cfg.trainer.seed, verbose=False)
    data = load_data(cfg)
    fold_of = assign_folds(data.subjects, data.labels, cfg.cv.n_folds, cfg.cv.seed)
    loaders = assemble.make_loaders(
        cfg, data, np.flatnonzero(fold_of != 0), np.flatnonzero(fold_of == 0)
    )
    assemble.build_model(cfg, len(data.feature_names))  # plugins load here, not in the threads
    steps = measure(cfg, data, loaders, torch.device(args.device))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device} on both sides; "
        f"{args.config}: batch {cfg.trainer.batch_size} x {cfg.data.max_len}, "
        f"{len(loaders[0])} steps/epoch + {len(loaders[1])} validation batches x {args.epochs} "
        f"epochs, {len(steps['plain loop'])} timed steps per loop"
    )
    print_ratios(steps, (("cmi run trainer / plain loop", *RUNS, 1.10),))


if __name__ == "__main__":
    main()
