"""Train a config with Lightning's ``ddp`` strategy, as ``cmi run`` would.

Lightning re-launches this script for rank 1 (same arguments), exactly like it re-launches the
``cmi`` command. After training, every rank dumps its learnable weighting parameters and a
checksum of all weights to ``rank<r>.json`` beside the run directory (with the addresses
its process listens on), and its weights before and
after training to ``rank<r>_start.pt`` and ``rank<r>.pt``.

    python tests/run/ddp_script.py CONFIG RUN_DIR
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning import Callback

from cmi_core.config import load_config
from cmi_core.runs import run


def listening_addresses() -> list[str]:
    """The local addresses of this process's listening TCP sockets (``/proc``, Linux)."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append(fields[1].split(":")[0])  # hex address
    return found


class DumpWeights(Callback):
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        torch.save(pl_module.state_dict(), self.out_dir / f"rank{trainer.global_rank}_start.pt")

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        torch.save(pl_module.state_dict(), self.out_dir / f"rank{trainer.global_rank}.pt")
        weighting = {n: p.tolist() for n, p in pl_module.weighting.named_parameters()}
        checksum = sum(float(p.double().sum()) for p in pl_module.parameters())
        effective = {t: float(w) for t, w in pl_module.weighting.effective_weights().items()}
        dump = {
            "world_size": trainer.world_size,
            "weighting": weighting,
            "effective_weights": effective,
            "checksum": checksum,
            "listening": listening_addresses(),
        }
        (self.out_dir / f"rank{trainer.global_rank}.json").write_text(json.dumps(dump))


def main() -> None:
    config, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
    train_fold = run.train_fold
    run.train_fold = lambda *args, **kwargs: train_fold(
        *args, extra_callbacks=[DumpWeights(run_dir.parent)], **kwargs
    )
    run.run_experiment(load_config(config), run_dir, progress=False)


if __name__ == "__main__":
    main()
