"""Training-step time of a ``cmi run`` fold vs a plain PyTorch loop (target: at most 1.10x).

``bench/bench_step.py`` compares the LightningModule in a bare ``Trainer`` with a plain loop on
random tensors. This script measures what ``cmi run`` adds on top: the run's own ``Trainer``
(``make_trainer``: gradient clipping, TensorBoard logger at the config's log interval, every
fold callback, the epoch progress bar, checkpoints) on the config's model and real data loader
(fold 0 of the synthetic set, augmentation included). The plain loop uses the same model, the
same DataLoader and the same optimizer and schedule, and logs nothing.

A step's time is the time between the starts of two consecutive training batches (data loading
included), median over one epoch of fold 0; neither variant validates. The two variants are
interleaved over several rounds because the machine is shared.

    .venv/bin/python bench/bench_run.py [--config configs/exp025.toml] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from pytorch_lightning import Callback, seed_everything
from torch.utils.data import DataLoader

from cmi_core import run
from cmi_core.config import Config, load_config
from cmi_core.data.io import SequenceSet
from cmi_core.losses import compute_losses
from cmi_core.optim import build_optimizer

WARMUP = 3


def median_step(starts: list[float]) -> float:
    return statistics.median(b - a for a, b in itertools.pairwise(starts[WARMUP:]))


def plain_loop(cfg: Config, in_channels: int, loader: DataLoader) -> float:
    seed_everything(cfg.trainer.seed, verbose=False)
    model = run.build_model(cfg, in_channels).train()
    optimizer, scheduler = build_optimizer(
        model, cfg.optimizer, model.weighting.parameters(), model.lr_scale, len(loader)
    )
    starts = []
    for batch in loader:
        starts.append(time.perf_counter())
        outputs = model(batch["x"], batch["mask"], batch["demographics"])
        total = model.weighting(
            compute_losses(outputs, batch, model.loss_cfg, model.weighting.terms)
        )
        optimizer.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.gradient_clip_val)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        model.weighting.after_optimizer_step()
    starts.append(time.perf_counter())
    return median_step(starts)


class StepClock(Callback):
    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_batch_start(self, *args: object) -> None:
        self.starts.append(time.perf_counter())

    def on_train_epoch_end(self, *args: object) -> None:
        self.starts.append(time.perf_counter())


def run_trainer(cfg: Config, data: SequenceSet, loader: DataLoader) -> float:
    """One epoch through the run's Trainer and fold callbacks, in a throw-away fold directory."""
    seed_everything(cfg.trainer.seed, verbose=False)
    model = run.build_model(cfg, len(data.feature_names))
    clock = StepClock()
    with tempfile.TemporaryDirectory() as root:
        callbacks = run.fold_callbacks(cfg, data, 0, Path(root), progress=True)
        trainer = run.make_trainer(cfg, Path(root), [*callbacks.all, clock], progress=True)
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            trainer.fit(model, loader)
    return median_step(clock.starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/exp025.toml"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cfg = load_config(args.config, ["trainer.max_epochs=1"])
    run.quiet_lightning()
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    data = run.load_data(cfg)
    fold_of = run.assign_folds(data.subjects, data.labels, cfg.cv.n_folds, cfg.cv.seed)
    loader, _ = run.make_loaders(
        cfg, data, np.flatnonzero(fold_of != 0), np.flatnonzero(fold_of == 0)
    )
    times: dict[str, list[float]] = {"plain loop": [], "cmi run trainer": []}
    for round_ in range(args.rounds):
        variants = [
            ("plain loop", lambda: plain_loop(cfg, len(data.feature_names), loader)),
            ("cmi run trainer", lambda: run_trainer(cfg, data, loader)),
        ]
        for name, measure in variants[round_ % 2 :] + variants[: round_ % 2]:
            times[name].append(measure())
    median = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"machine: {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; config {args.config}; {len(loader)} steps/epoch "
        f"of {cfg.trainer.batch_size} x {cfg.data.max_len}; {args.rounds} rounds"
    )
    for name, value in median.items():
        rounds = ", ".join(f"{v * 1000:.1f}" for v in times[name])
        print(f"  {name:16s} {value * 1000:7.1f} ms/step  (rounds: {rounds})")
    ratio = median["cmi run trainer"] / median["plain loop"]
    print(f"cmi run trainer / plain loop = {ratio:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
