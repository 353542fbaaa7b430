"""The values Lightning's ``Trainer`` accepts for the ``[trainer]`` keys passed to it, so that
``cmi check`` refuses what ``cmi run`` would fail on after creating the run directory.

Lightning is not imported here (``cmi check`` must stay fast, ~7 s less): its accepted values
are listed, and tests/platform/test_check_refuses.py checks each list against the installed
Lightning.
"""

from __future__ import annotations

from typing import Any

PRECISIONS = (
    "32-true",
    "32",
    "16-mixed",
    "16",
    "bf16-mixed",
    "bf16",
    "16-true",
    "bf16-true",
    "64-true",
    "64",
)
"""Lightning's precision names (``transformer-engine`` needs a package nobody here uses)."""

_DDP = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")
STRATEGIES = (
    "auto",
    "single_device",
    *_DDP,
    *(f"{name}_find_unused_parameters_{flag}" for name in _DDP for flag in ("true", "false")),
    "fsdp",
    "fsdp_cpu_offload",
    "deepspeed",
    "deepspeed_stage_1",
    "deepspeed_stage_2",
    "deepspeed_stage_2_offload",
    "deepspeed_stage_3",
    "deepspeed_stage_3_offload",
    "deepspeed_stage_3_offload_nvme",
)
"""Lightning's registered strategies for CPUs and GPUs (the TPU ones are left out)."""


def devices_problem(value: Any) -> str | None:
    """Lightning's ``devices``: ``"auto"``, a count (``-1``: every GPU), a list of GPU indices
    or such a list written as a string (``"0,1"``)."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)):
        return None if value == "auto" or value >= 1 or value == -1 else _devices_message(value)
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
        ok = parts and all(part.isdigit() or part == "-1" for part in parts)
        return None if ok else _devices_message(value)
    if isinstance(value, list):
        ok = value and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        return None if ok else _devices_message(value)
    return _devices_message(value)


def _devices_message(value: Any) -> str:
    return f"must be 'auto', a count >= 1 (-1: all GPUs) or a list of GPU indices, got {value!r}"


def batch_limit(value: float) -> str | None:
    """A batch limit is a fraction in (0, 1] or a whole count above 1 (Lightning refuses 2.5)."""
    if value > 0 and (value <= 1 or float(value).is_integer()):
        return None
    return f"must be a fraction in (0, 1] or a whole number of batches, got {value!r}"
