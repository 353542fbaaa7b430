"""Hydra's competition counts in the `rocket` backbone: the loser's index by ``min(dim).indices``
against ``argmin``, in one process, and the share of Hydra in a training step.

``argmin`` over the group's kernels (dimension 2 of ``[B, G, K, T]``, not the last) runs a slow
strided reduction on the CPU; ``min(dim).indices`` returns the same first index. The script
checks the two give identical features, then prints the median CPU time of each (one thread,
batch ``--batch`` x 64 frames x 16 channels, the shapes of ``configs/rocket_hydra.toml``), their
ratio, and the training step of the whole backbone with and without Hydra.

    .venv/bin/python bench/bench_hydra.py [--repeat 10] [--batch 64]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import torch

from cmi_backbone_rocket import encoder, hydra
from cmi_core.config import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "rocket_hydra.toml"


def cpu_ms(work: Callable[[], object], repeat: int) -> float:
    """Median thread CPU time of ``work`` over ``repeat`` calls after one untimed call."""
    work()
    times = []
    for _ in range(repeat):
        start = time.thread_time()
        work()
        times.append(time.thread_time() - start)
    return 1000 * statistics.median(times)


def counts_with_argmin(z: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """``hydra.competition_counts`` as it was, with ``argmin`` for the loser."""
    weight = frames[:, None, :].to(z.dtype)
    top, winner = z.max(dim=2)
    loser = z.argmin(dim=2)
    wins = torch.zeros(z.shape[:3], dtype=z.dtype)
    losses = torch.zeros_like(wins)
    wins.scatter_add_(2, winner, top * weight)
    losses.scatter_add_(2, loser, weight.expand_as(top))
    return torch.stack([wins, losses], dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    options = load_config(CONFIG).model.options
    z = torch.randn(args.batch, options.hydra_groups, options.hydra_kernels, 64)
    frames = torch.ones(args.batch, 64, dtype=torch.bool)
    frames[: args.batch // 2, :16] = False  # left padding in half the batch
    assert torch.equal(hydra.competition_counts(z, frames), counts_with_argmin(z, frames))
    old = cpu_ms(lambda: counts_with_argmin(z, frames), args.repeat)
    new = cpu_ms(lambda: hydra.competition_counts(z, frames), args.repeat)
    print(f"competition counts, one group set: argmin {old:.1f} ms, min(dim).indices {new:.1f} ms")
    print(f"ratio new/old: {new / old:.2f} (identical features)")
    x = torch.randn(args.batch, 64, 16)
    for groups in (0, options.hydra_groups):
        torch.manual_seed(0)
        model = encoder.RocketEncoder(16, attrs.evolve(options, hydra_groups=groups))
        step_ms = cpu_ms(lambda m=model: m(x, frames).sum().backward(), args.repeat)
        print(f"training step, hydra_groups = {groups}: {step_ms:.1f} ms")


if __name__ == "__main__":
    main()
