"""Training-step time: ``uncertainty`` vs ``none``, and the LightningModule vs a plain loop.

Targets (issue 4): uncertainty / none <= 1.02; Lightning / plain PyTorch <= 1.10, on the default
model (squeezeformer defaults, 16 IMU channels) with a batch of 64 sequences of 128 frames.

Both loops do the same work per step: forward, the four named losses, the weighting, backward,
gradient clipping at 0.5, AdamW + cosine schedule step, ``after_optimizer_step``. The
Lightning run also logs its tags every step into a CSVLogger (written every 10 steps, as the
product's default ``log_every_n_steps``); the plain loop logs nothing. A step's time is the
time between the starts of two consecutive steps (data loading included), median over the
steps. The machine is shared, so the variants run back to back in many short rounds and each
ratio is the median over rounds of the ratio within a round. Wall time is the target; the
process CPU time (all threads) is printed too.

    .venv/bin/python bench/bench_step.py [--steps 15] [--rounds 8] [--threads 0]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

import cmi_core
from cmi_core.config import LossConfig, OptimizerConfig
from cmi_core.data.schema import GESTURE_IS_TARGET, GESTURE_TO_NINE
from cmi_core.losses import compute_losses
from cmi_core.model import CMIModel
from cmi_core.optim import build_optimizer
from cmi_core.weighting import active_terms

BATCH, LENGTH, CHANNELS, WARMUP = 64, 128, 16, 5
# Ratios of the same round's medians (the variants of a round run back to back), then the median
RATIOS = (
    ("uncertainty / none", "lightning/uncertainty", "lightning/none", 1.02),
    ("lightning / plain loop", "lightning/uncertainty", "plain/uncertainty", 1.10),
)


def make_batches(n: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(n):
        y18 = torch.randint(0, 18, (BATCH,), generator=generator)
        lengths = torch.randint(29, LENGTH + 1, (BATCH,), generator=generator)
        mask = torch.arange(LENGTH)[None, :] >= (LENGTH - lengths[:, None])  # left padding
        batches.append(
            {
                "x": torch.randn(BATCH, LENGTH, CHANNELS, generator=generator) * mask[..., None],
                "mask": mask,
                "demographics": torch.rand(BATCH, 7, generator=generator),
                "y18": y18,
                "ybin": torch.as_tensor(GESTURE_IS_TARGET)[y18].float(),
                "y9": torch.as_tensor(GESTURE_TO_NINE)[y18],
            }
        )
    return batches


def make_model(strategy: str, total_steps: int) -> CMIModel:
    torch.manual_seed(0)
    loss = LossConfig()
    weighting = cmi_core.build_weighting(
        strategy, active_terms(loss.nine_class_head_enabled, loss.kl_weight)
    )
    backbone = cmi_core.build_backbone("squeezeformer", CHANNELS)
    return CMIModel(backbone, weighting, loss, OptimizerConfig(), total_steps=total_steps)


Clock = list[tuple[float, float]]  # (wall, process CPU) at the start of each step


def now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def median_step(starts: Clock) -> tuple[float, float]:
    steps = list(itertools.pairwise(starts[WARMUP:]))
    wall = statistics.median(b[0] - a[0] for a, b in steps)
    return wall, statistics.median(b[1] - a[1] for a, b in steps)


def plain_loop(strategy: str, batches: list) -> tuple[float, float]:
    model = make_model(strategy, len(batches)).train()
    optimizer, scheduler = _optimizer(model, len(batches))
    starts: Clock = []
    for batch in DataLoader(batches, batch_size=None):
        starts.append(now())
        outputs = model(batch["x"], batch["mask"], batch["demographics"])
        losses = compute_losses(outputs, batch, model.loss_cfg, model.weighting.terms)
        total = model.weighting(losses)
        optimizer.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        scheduler.step()
        model.weighting.after_optimizer_step()
    starts.append(now())
    return median_step(starts)


def _optimizer(model: CMIModel, total: int) -> tuple:
    return build_optimizer(
        model, model.optimizer_cfg, model.weighting.parameters(), model.lr_scale, total
    )


class StepClock(pl.Callback):
    def __init__(self) -> None:
        self.starts: Clock = []

    def on_train_batch_start(self, *args: object) -> None:
        self.starts.append(now())

    def on_train_end(self, *args: object) -> None:
        self.starts.append(now())


def lightning(strategy: str, batches: list) -> tuple[float, float]:
    model, clock = make_model(strategy, len(batches)), StepClock()
    with tempfile.TemporaryDirectory() as root:
        trainer = pl.Trainer(
            max_epochs=1,
            logger=pl.loggers.CSVLogger(root),
            log_every_n_steps=10,
            gradient_clip_val=0.5,
            callbacks=[clock],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
            devices=1,
        )
        trainer.fit(model, DataLoader(batches, batch_size=None))
    return median_step(clock.starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    batches = make_batches(args.steps + WARMUP + 1)
    runs: dict[str, Callable[[], tuple[float, float]]] = {
        "plain/uncertainty": lambda: plain_loop("uncertainty", batches),
        "lightning/uncertainty": lambda: lightning("uncertainty", batches),
        "lightning/none": lambda: lightning("none", batches),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for round_ in range(args.rounds):
        order = list(runs)[round_ % 3 :] + list(runs)[: round_ % 3]
        for name in order:
            times[name].append(runs[name]())
    params = sum(p.numel() for p in make_model("none", 1).parameters())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; model {params} parameters; "
        f"batch {BATCH} x {LENGTH} x {CHANNELS}; {args.steps} steps x {args.rounds} rounds"
    )
    for clock, i in (("wall", 0), ("cpu", 1)):
        for name, values in times.items():
            rounds = " ".join(f"{v[i] * 1000:.0f}" for v in values)
            median = statistics.median(v[i] for v in values)
            print(f"  {clock} {name:22s} median {median * 1000:6.1f} ms/step; rounds: {rounds}")
        for label, a, b, target in RATIOS:
            paired = [x[i] / y[i] for x, y in zip(times[a], times[b], strict=True)]
            print(
                f"{clock}: {label:22s} = {statistics.median(paired):.3f} (target <= {target}); "
                f"per round: {' '.join(f'{r:.3f}' for r in paired)}"
            )


if __name__ == "__main__":
    main()
