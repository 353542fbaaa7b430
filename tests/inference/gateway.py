"""What the Kaggle gateway (``cmi_gateway.CMIGateway``) hands ``predict``, without Kaggle.

It reads the CSV files with polars, shuffles the unique sequence ids and, per sequence, passes
all rows of that sequence (test.csv columns, ``subject`` included) and the subject's one-row
demographics frame (DOMAIN.md section 5).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterator
from pathlib import Path

import polars as pl

from cmi_core.data.schema import TEST_COLUMNS


def gateway_calls(
    data_dir: Path, kind: str = "test", seed: int = 0, only: Collection[str] | None = None
) -> Iterator[tuple[str, pl.DataFrame, pl.DataFrame]]:
    """``(sequence_id, sequence frame, demographics frame)`` in shuffled order.

    ``kind = "train"`` serves the training files in the test layout (labels dropped), which
    is how the parity test replays validation sequences through ``predict``.
    """
    frame = pl.read_csv(data_dir / f"{kind}.csv").select(TEST_COLUMNS)
    demographics = pl.read_csv(data_dir / f"{kind}_demographics.csv")
    if only is not None:
        frame = frame.filter(pl.col("sequence_id").is_in(list(only)))
    sequences = frame.partition_by("sequence_id", as_dict=True, maintain_order=True)
    order = sorted(key[0] for key in sequences)
    random.Random(seed).shuffle(order)
    for sequence_id in order:
        sequence = sequences[(sequence_id,)]
        subject = sequence["subject"][0]
        yield sequence_id, sequence, demographics.filter(pl.col("subject") == subject)
