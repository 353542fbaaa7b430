"""Training-step time: ``uncertainty`` vs ``none``, and the LightningModule vs a plain loop.

Targets (issue 4): uncertainty / none <= 1.02; Lightning / plain PyTorch <= 1.10, on the default
model (squeezeformer defaults, 16 IMU channels) with a batch of 64 sequences of 128 frames.

Three training loops run the same batches: Lightning with ``uncertainty``, Lightning with
``none``, and a plain PyTorch loop with ``uncertainty`` on the same model, optimizer (AdamW +
cosine schedule) and gradient clipping (0.5). The Lightning runs log every step's tags into a
CSVLogger (written every 10 steps, the product's ``log_every_n_steps``); the plain loop logs
nothing. A step is everything from one batch start to the next (data loading included).

The machine is shared and a busy neighbour changes step times several-fold within seconds,
so the loops run in threads that take turns one step at a time: step k of each loop runs
back to back, and each ratio is the median over k of the ratio of neighbouring steps. The
median cannot see a cost that hits fewer than half of the steps (a logger flush every 10
steps), so the ratio of the summed step times is printed beside it. Wall time is the target;
the loop thread's CPU time (``time.thread_time``: not other threads of the process, such as
a neighbouring loop's) is printed too.

    .venv/bin/python bench/bench_step.py [--steps 40] [--threads 0]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

import cmi_core
from cmi_core.config import LossConfig, OptimizerConfig
from cmi_core.data.schema import GESTURE_IS_TARGET, GESTURE_TO_NINE
from cmi_core.train.losses import compute_losses
from cmi_core.train.model import CMIModel
from cmi_core.train.network import CMINetwork
from cmi_core.train.optim import build_optimizer
from cmi_core.weighting import active_terms

BATCH, LENGTH, CHANNELS, WARMUP = 64, 128, 16, 5
RUNS = ("lightning/uncertainty", "lightning/none", "plain/uncertainty")
RATIOS = (
    ("uncertainty / none", "lightning/uncertainty", "lightning/none", 1.02),
    ("lightning / plain loop", "lightning/uncertainty", "plain/uncertainty", 1.10),
)
Stamp = tuple[float, float]  # (wall, CPU time of the calling thread)


def now() -> Stamp:
    return time.perf_counter(), time.thread_time()


class TurnTaking:
    """Lets loops in threads run one step each in rotation; records each step's duration.

    A loop calls ``tick(name)`` at the start of every step and ``done(name)`` at its end. No
    loop starts its first step before every loop is ready (set-up is not timed).
    """

    def __init__(self, names: tuple[str, ...]) -> None:
        self.rotation, self.turn, self.failed = list(names), 0, False
        self.ready: set[str] = set()
        self.started: dict[str, Stamp] = {}
        self.steps: dict[str, list[Stamp]] = {name: [] for name in names}
        self.condition = threading.Condition()

    def tick(self, name: str) -> None:
        with self.condition:
            self._finish_step(name)
            self.ready.add(name)
            self.condition.notify_all()
            self.condition.wait_for(
                lambda: (
                    self.failed
                    or (len(self.ready) == len(self.steps) and self.rotation[self.turn] == name)
                )
            )
            if self.failed:
                raise RuntimeError("another training loop failed")
            self.started[name] = now()

    def done(self, name: str) -> None:
        with self.condition:
            self._finish_step(name)
            index = self.rotation.index(name)
            self.rotation.remove(name)
            self.turn = index % len(self.rotation) if self.rotation else 0
            self.condition.notify_all()

    def fail(self) -> None:
        with self.condition:
            self.failed = True
            self.condition.notify_all()

    def race(self, loops: dict[str, Callable[[], None]]) -> dict[str, list[Stamp]]:
        """Run each loop in its own thread, taking turns; the timed steps after warm-up."""

        def guarded(name: str) -> None:
            try:
                loops[name]()
            except BaseException:
                self.fail()
                raise

        threads = [threading.Thread(target=guarded, args=(name,)) for name in loops]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.failed:
            raise SystemExit("a training loop failed (traceback above)")
        return {name: steps[WARMUP:] for name, steps in self.steps.items()}

    def _finish_step(self, name: str) -> None:
        if name in self.started:
            start, end = self.started.pop(name), now()
            self.steps[name].append((end[0] - start[0], end[1] - start[1]))
            self.turn = (self.rotation.index(name) + 1) % len(self.rotation)


def make_batches(n: int, length: int = LENGTH) -> list[dict[str, torch.Tensor]]:
    """``n`` seeded batches of ``BATCH`` left-padded sequences of 29 to ``length`` frames."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(n):
        y18 = torch.randint(0, 18, (BATCH,), generator=generator)
        lengths = torch.randint(29, length + 1, (BATCH,), generator=generator)
        mask = torch.arange(length)[None, :] >= (length - lengths[:, None])  # left padding
        batches.append(
            {
                "x": torch.randn(BATCH, length, CHANNELS, generator=generator) * mask[..., None],
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
    network = CMINetwork(backbone, nine_class_head=loss.nine_class_head_enabled)
    return CMIModel(network, weighting, loss, OptimizerConfig(), total_steps=total_steps)


def plain_loop(name: str, strategy: str, batches: list, turns: TurnTaking) -> None:
    model = make_model(strategy, len(batches)).train()
    optimizer, scheduler = plain_optimizer(model, len(batches))
    for batch in DataLoader(batches, batch_size=None):
        turns.tick(name)
        plain_step(model, optimizer, batch)
        scheduler.step()
    turns.done(name)


def plain_optimizer(model: CMIModel, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    """The run's optimizer and schedule for ``steps`` steps, as the LightningModule builds them."""
    return build_optimizer(
        model, model.optimizer_cfg, model.weighting.parameters(), model.lr_scale, steps
    )


def plain_step(
    model: CMIModel, optimizer: torch.optim.Optimizer, batch: dict, clip: float = 0.5
) -> None:
    """One training step without Lightning: losses, weighting, backward, clipping, update."""
    outputs = model(batch["x"], batch["mask"], batch["demographics"])
    losses = compute_losses(outputs, batch, model.loss_cfg, model.weighting.terms)
    total = model.weighting(losses)
    optimizer.zero_grad()
    total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    model.weighting.after_optimizer_step()


class Turns(pl.Callback):
    def __init__(self, name: str, turns: TurnTaking) -> None:
        self.name, self.turns = name, turns

    def on_train_batch_start(self, *args: object) -> None:
        self.turns.tick(self.name)

    def on_train_end(self, *args: object) -> None:
        self.turns.done(self.name)


def lightning(name: str, strategy: str, batches: list, turns: TurnTaking) -> None:
    model = make_model(strategy, len(batches))
    with tempfile.TemporaryDirectory() as root:
        trainer = pl.Trainer(
            max_epochs=1,
            logger=pl.loggers.CSVLogger(root),
            log_every_n_steps=10,
            gradient_clip_val=0.5,
            callbacks=[Turns(name, turns)],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
            devices=1,
        )
        trainer.fit(model, DataLoader(batches, batch_size=None))


def print_ratios(
    steps: dict[str, list[Stamp]], ratios: tuple[tuple[str, str, str, float], ...]
) -> None:
    """Median and summed step time per loop, then each ``a / b`` ratio two ways: the median of
    paired steps, and summed time over summed time (which also counts the rare costs)."""
    width = max(map(len, steps))
    for clock, i in (("wall", 0), ("cpu", 1)):
        for name, values in steps.items():
            median = statistics.median(v[i] for v in values)
            total = sum(v[i] for v in values)
            print(
                f"  {clock} {name:{width}s} median {median * 1000:6.1f} ms/step, "
                f"sum {total:7.2f} s over {len(values)} steps"
            )
        for label, a, b, target in ratios:
            paired = [x[i] / y[i] for x, y in zip(steps[a], steps[b], strict=True)]
            quartiles = statistics.quantiles(paired, n=4)
            summed = sum(x[i] for x in steps[a]) / sum(y[i] for y in steps[b])
            print(
                f"{clock}: {label} = {statistics.median(paired):.3f} median of step pairs "
                f"(target <= {target}; quartiles {quartiles[0]:.3f} .. {quartiles[2]:.3f}), "
                f"{summed:.3f} summed"
            )


def run(steps: int) -> dict[str, list[Stamp]]:
    batches, turns = make_batches(steps + WARMUP), TurnTaking(RUNS)
    kinds: dict[str, Callable[..., None]] = {"lightning": lightning, "plain": plain_loop}

    def loop(name: str) -> Callable[[], None]:
        kind, strategy = name.split("/")
        return lambda: kinds[kind](name, strategy, batches, turns)

    return turns.race({name: loop(name) for name in RUNS})


def step_parser(doc: str, steps: int) -> argparse.ArgumentParser:
    """The options every step benchmark takes: ``--steps`` and ``--threads``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--steps", type=int, default=steps, help="timed steps per loop")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: default")
    return parser


def quiet_torch(threads: int) -> None:
    """Set torch's thread count (0: its default) and silence warnings and Lightning's info."""
    if threads:
        torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)


def main() -> None:
    args = step_parser(__doc__, 40).parse_args()
    quiet_torch(args.threads)
    params = sum(p.numel() for p in make_model("none", 1).parameters())  # plugins load here,
    steps = run(args.steps)  # not concurrently in the threads
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; model {params} parameters; "
        f"batch {BATCH} x {LENGTH} x {CHANNELS}; {args.steps} timed steps per loop"
    )
    print_ratios(steps, RATIOS)


if __name__ == "__main__":
    main()
