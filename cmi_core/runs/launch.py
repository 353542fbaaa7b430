"""Runs whose processes an outside launcher started: ``torchrun`` and SLURM's ``srun``.

Lightning's own ``ddp`` launcher starts the other ranks from inside ``trainer.fit``, after rank 0
has checked and prepared the run directory. ``torchrun`` and ``srun`` start every rank at once,
on every node, so the others could create ``fold_<k>/`` in a directory rank 0 is still checking
(and then refuse as "not empty"), or resume from a checkpoint that ``--overwrite`` is about to
delete. For these runs every process joins the process group first, with the backend
Lightning's DDP strategy would choose (it reuses an initialised group; its metric reductions
depend on the backend's name), and rank 0 prepares the directory while the others wait; an error
on rank 0 stops every rank with the same message instead of leaving them waiting.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from lightning_fabric.plugins.environments import (
    ClusterEnvironment,
    SLURMEnvironment,
    TorchElasticEnvironment,
)

from cmi_core.errors import RunError


def external_environment() -> ClusterEnvironment | None:
    """The launcher's environment when torchrun or srun started more than one process.

    Checked in Lightning's order (torchrun first: it can run inside a SLURM job)."""
    for kind in (TorchElasticEnvironment, SLURMEnvironment):
        if kind.detect():
            environment = kind()
            return environment if environment.world_size() > 1 else None
    return None


def launched_externally() -> bool:
    """Whether this process is one of several that torchrun or srun started."""
    return external_environment() is not None


def uses_cuda(accelerator: str) -> bool:
    """Whether Lightning will train on a GPU for ``trainer.accelerator``."""
    return accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def join_process_group(environment: ClusterEnvironment, accelerator: str) -> torch.device:
    """Initialise the default group from the launcher's variables, as Lightning's DDP strategy
    would (NCCL on a GPU, gloo on the CPU), and return the device its collectives use."""
    device = torch.device("cpu")
    if uses_cuda(accelerator):
        device = torch.device("cuda", environment.local_rank())
        torch.cuda.set_device(device)  # Lightning sets the same one
    if not dist.is_initialized():
        os.environ["MASTER_ADDR"] = environment.main_address
        os.environ["MASTER_PORT"] = str(environment.main_port)
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            rank=environment.global_rank(),
            world_size=environment.world_size(),
        )
    return device


@contextlib.contextmanager
def rank_zero_first(accelerator: str) -> Iterator[None]:
    """Rank 0 runs the body first; the other ranks wait for it, then run it too.

    Outside torchrun and srun the body simply runs. The body should act only on rank 0 (the
    others run it after rank 0 succeeded, so their part sees rank 0's result)."""
    environment = external_environment()
    if environment is None:
        yield
        return
    device = join_process_group(environment, accelerator)
    if dist.get_rank() == 0:
        try:
            yield
        except BaseException as exc:
            _broadcast(str(exc) or type(exc).__name__, device)
            raise
        _broadcast(None, device)
        return
    failure = _broadcast(None, device)
    if failure is not None:
        raise RunError(f"rank 0 stopped the run: {failure}")
    yield


def _broadcast(message: str | None, device: torch.device) -> str | None:
    """Rank 0's ``message`` on every rank."""
    box = [message]
    dist.broadcast_object_list(box, src=0, device=device)
    return box[0]
