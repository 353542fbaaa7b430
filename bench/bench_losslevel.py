"""Training-step time of the loss-level weightings ``dwa``, ``rlw``, ``gls``, ``famo`` vs ``none``.

Target (issue 12): each loss-level strategy costs at most 1.02x the ``none`` training step on
the default model (squeezeformer defaults, 16 IMU channels, batch 64 x 128 frames).

Two measurements in one script:
1. the LightningModule with each strategy, the loops taking turns one step at a time in
   threads as in ``bench_step.py`` (whose loop, turn-taking and ratio report it reuses); each
   ratio is the median over the timed steps of the ratio of neighbouring steps. Noise of a
   shared machine is a few percent per pair, more than the strategies cost;
2. so the script also times the strategy alone, what it adds to a step: its forward pass on
   the four loss terms, its share of the backward pass, ``effective_weights``/``raw_values``
   (logged every step) and ``after_optimizer_step``, median of many repetitions, and prints
   it as a fraction of the median ``none`` step of part 1 (wall and process CPU time).

    .venv/bin/python bench/bench_losslevel.py [--steps 30] [--threads 0]
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from functools import partial

import torch
from bench_step import (
    WARMUP,
    TurnTaking,
    lightning,
    make_batches,
    make_model,
    print_ratios,
    quiet_torch,
    step_parser,
)

import cmi_core
from cmi_core.weighting import TERMS

STRATEGIES = ("dwa", "rlw", "gls", "famo")
RUNS = ("lightning/none", *(f"lightning/{s}" for s in STRATEGIES))
RATIOS = tuple((f"{s} / none", f"lightning/{s}", "lightning/none", 1.02) for s in STRATEGIES)
LOSSES = {"multiclass": 2.5, "binary": 0.4, "nine_class": 1.7, "kl": 0.05}


def race(steps: int) -> dict[str, list[tuple[float, float]]]:
    batches, turns = make_batches(steps + WARMUP), TurnTaking(RUNS)
    loops = {name: partial(lightning, name, name.split("/")[1], batches, turns) for name in RUNS}
    return turns.race(loops)


def strategy_alone(strategy: str, repeat: int) -> float:
    """Median seconds of one step's worth of strategy work, outside the model."""
    weighting = cmi_core.build_weighting(strategy, TERMS)
    times = []
    for _ in range(repeat):
        losses = {t: torch.tensor(v, requires_grad=True) for t, v in LOSSES.items()}
        start = time.perf_counter()
        weighting(losses).backward()
        weighting.effective_weights()
        weighting.raw_values()
        weighting.after_optimizer_step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = step_parser(__doc__, 30)
    parser.add_argument("--repeat", type=int, default=2000, help="repetitions of part 2")
    args = parser.parse_args()
    quiet_torch(args.threads)
    params = sum(p.numel() for p in make_model("none", 1).parameters())  # plugins load here
    for strategy in STRATEGIES:  # and here, not concurrently in the threads
        cmi_core.build_weighting(strategy, TERMS)
    steps = race(args.steps)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; model {params} parameters; {args.steps} timed "
        "steps per loop"
    )
    print_ratios(steps, RATIOS)
    none_wall = statistics.median(wall for wall, _ in steps["lightning/none"])
    none_cpu = statistics.median(cpu for _, cpu in steps["lightning/none"])
    for strategy in ("none", *STRATEGIES):
        alone = strategy_alone(strategy, args.repeat)
        print(
            f"alone: {strategy:5s} {alone * 1e6:7.1f} us per step = {alone / none_wall:.3%} of "
            f"the median none step's wall time, {alone / none_cpu:.3%} of its CPU time"
        )


if __name__ == "__main__":
    main()
