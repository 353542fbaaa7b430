"""How much of the CPU's arithmetic rate a config's training step uses (issue 22).

Issue 22 asks for half the fold time at the same numbers, on the argument that a step of
exp025 is a few GFLOP and one core does far more per second. This measures that argument on
this machine, in one process at one thread:

- the step's arithmetic: the forward pass's matrix products and convolutions as counted by
  ``torch.utils.flop_counter`` (attention through the ``math`` kernel so that its products are
  counted: the CPU's fused kernel is not), times 3 for forward + backward (the usual rule: the
  backward pass computes two products per forward product). The counter's own backward counts
  are not used: for a grouped (depthwise) convolution it counts ``groups`` times too many;
- the step's CPU time (``time.thread_time``, so neighbours' load does not count), median of
  the timed steps of the same training loop as ``bench_step.py``'s plain loop;
- the baseline: this machine's rate for one matrix product of the model's own width
  (``[batch x frames, d] x [d, ff]``, the step's largest), timed in the same process.

It prints the step's GFLOP, its achieved GFLOP/s and the ratio to the baseline: the share of
the step the products would take at their own rate, so what is left is the rest of the step
(element-wise work, layout copies, the optimizer, the framework's per-operation cost).

    .venv/bin/python bench/bench_flops.py [configs/exp025.toml] [--steps 20] [-o KEY=VALUE ...]

(for the backbones with a width and a feed-forward size, ``d_model`` and ``ff_dim``:
``squeezeformer``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from bench_step import BATCH, CHANNELS, make_batches, plain_optimizer, plain_step, quiet_torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from cmi_core.config import load_config
from cmi_core.train.assemble import build_model

WARMUP = 5


def forward_flops(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> int:
    """Counted FLOPs of one forward pass (attention's products included, via ``math``)."""
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as count:
        model(batch["x"], batch["mask"], batch["demographics"])
    return count.get_total_flops()


def step_seconds(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]]) -> float:
    """Median CPU seconds of a training step after ``WARMUP`` steps."""
    optimizer, _ = plain_optimizer(model, len(batches))
    times = []
    for batch in batches:
        start = time.thread_time()
        plain_step(model, optimizer, batch)
        times.append(time.thread_time() - start)
    return statistics.median(times[WARMUP:])


def matmul_rate(rows: int, inner: int, cols: int, seconds: float = 1.0) -> float:
    """FLOP/s of ``[rows, inner] x [inner, cols]`` on this thread, repeated for ``seconds``."""
    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    a @ b
    n, start = 0, time.thread_time()
    while time.thread_time() - start < seconds:
        a @ b
        n += 1
    return 2 * rows * inner * cols * n / (time.thread_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="configs/exp025.toml")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("-o", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    quiet_torch(1)
    cfg = load_config(args.config, args.overrides)
    torch.manual_seed(0)
    model = build_model(cfg, CHANNELS).train()
    batches = make_batches(WARMUP + args.steps, cfg.data.max_len)
    flops = 3 * forward_flops(model, batches[0])
    seconds = step_seconds(model, batches)
    options = cfg.model.options
    if not hasattr(options, "d_model") or not hasattr(options, "ff_dim"):
        raise SystemExit(f"bench_flops.py: {args.config}: a backbone with d_model and ff_dim")
    width, ff = options.d_model, options.ff_dim
    baseline = matmul_rate(BATCH * cfg.data.max_len, width, ff)
    achieved = flops / seconds
    print(
        f"machine: {platform.machine()}, torch {torch.__version__}, 1 thread; {args.config}: "
        f"batch {BATCH} x {cfg.data.max_len} x {CHANNELS}"
    )
    print(f"training step: {flops / 1e9:.2f} GFLOP (3 x forward), {seconds * 1e3:.1f} ms CPU")
    print(f"achieved: {achieved / 1e9:.1f} GFLOP/s")
    shape = f"[{BATCH * cfg.data.max_len}, {width}] x [{width}, {ff}]"
    print(f"baseline {shape}: {baseline / 1e9:.1f} GFLOP/s")
    print(f"ratio achieved / baseline: {achieved / baseline:.2f}")


if __name__ == "__main__":
    main()
