"""The run's own progress messages: one line on stderr, from the launching process only."""

from __future__ import annotations

import sys

from pytorch_lightning.utilities import rank_zero_only


def say(message: str) -> None:
    """Print ``message`` on stderr (DDP worker ranks stay silent: the launcher speaks)."""
    if rank_zero_only.rank == 0:
        print(message, file=sys.stderr, flush=True)
