"""Training-step time of the gradient-level strategies vs the loss-level ``none``.

Target (issue 12): a representation-level strategy (``upgrad``, 4 tasks) at most 1.5x the
``none`` step on the default model; parameter-level strategies report their ratio.

The model is exp025's (``configs/exp025.toml``: its backbone options, demographics, heads and
the four loss terms) on batches of exp025's size (64 sequences of ``max_len`` = 64 frames, 16
IMU channels, left-padded). Every strategy trains the LightningModule in a bare ``Trainer``
(AdamW + cosine, gradient clipping 0.5, a CSVLogger every 10 steps). As in
``bench/bench_step.py`` (whose turn-taking it reuses), the loops run in threads that take turns
one step at a time and each ratio is the median over the steps of the ratio of neighbouring
steps, so a busy neighbour on the shared machine hits every loop alike.

    .venv/bin/python bench/bench_weighting.py [--steps 20] [--only upgrad pcgrad@parameters]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import warnings
from collections.abc import Callable
from pathlib import Path

import attrs
import bench_step
import pytorch_lightning as pl
import torch
from bench_step import TurnTaking, print_ratios

import cmi_core
from cmi_core.config import load_config
from cmi_core.registry.manager import get_plugin_manager
from cmi_core.train.model import CMIModel
from cmi_core.train.network import CMINetwork
from cmi_core.weighting import active_terms


def _gradient_level() -> tuple[str, ...]:
    """Every registered gradient-level strategy: a new one is measured without naming it here."""
    manager = get_plugin_manager()
    names = manager.names("weighting")
    return tuple(n for n in names if manager.get("weighting", n).level == "gradient")


REPRESENTATION = _gradient_level()
PARAMETERS = ("upgrad", "mgda", "pcgrad", "gradnorm")  # a sample: each costs ~T backward passes
DEFAULT = (*REPRESENTATION, *(f"{name}@parameters" for name in PARAMETERS))
TARGETS = {"upgrad": 1.5}  # representation level; the others are reported (target inf)
CONFIG = Path(__file__).parents[1] / "configs" / "exp025.toml"


def make_model(run: str, total_steps: int) -> CMIModel:
    """exp025's model with ``run`` = ``strategy[@where]`` as its weighting."""
    cfg = load_config(CONFIG)
    strategy, _, where = run.partition("@")
    options = {"where": where} if where else {}
    torch.manual_seed(0)
    loss = cfg.loss
    weighting = cmi_core.build_weighting(
        strategy,
        active_terms(loss.nine_class_head_enabled, loss.kl_weight),
        alpha=loss.alpha,
        nine_class_loss_weight=loss.nine_class_loss_weight,
        kl_weight=loss.kl_weight,
        **options,
    )
    backbone = cmi_core.build_backbone(
        cfg.model.backbone, bench_step.CHANNELS, **attrs.asdict(cfg.model.options)
    )
    optimizer = cfg.optimizer
    network = CMINetwork(backbone, nine_class_head=loss.nine_class_head_enabled)
    return CMIModel(network, weighting, loss, optimizer, total_steps=total_steps)


def race(runs: tuple[str, ...], steps: int) -> dict[str, list[bench_step.Stamp]]:
    """bench_step's Lightning loop on exp025's model and batch size (its module settings)."""
    cfg = load_config(CONFIG)
    bench_step.BATCH, bench_step.LENGTH = cfg.trainer.batch_size, cfg.data.max_len
    bench_step.make_model = make_model
    batches = bench_step.make_batches(steps + bench_step.WARMUP)
    turns = TurnTaking(runs)

    def loop(run: str) -> Callable[[], None]:
        return lambda: bench_step.lightning(run, run, batches, turns)

    return turns.race({run: loop(run) for run in runs})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per loop")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: default")
    parser.add_argument("--only", nargs="*", default=DEFAULT, help="strategy[@parameters] ...")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    pl.seed_everything(0, verbose=False)
    runs = ("none", *args.only)
    params = sum(p.numel() for p in make_model("none", 1).parameters())  # plugins load here,
    steps = race(runs, args.steps)  # not concurrently in the threads
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; exp025 model {params} parameters; batch "
        f"{bench_step.BATCH} x {bench_step.LENGTH} x {bench_step.CHANNELS}; "
        f"{args.steps} timed steps per loop"
    )
    ratios = tuple((f"{run} / none", run, "none", TARGETS.get(run, math.inf)) for run in args.only)
    print_ratios(steps, ratios)


if __name__ == "__main__":
    main()
