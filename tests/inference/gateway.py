"""What the Kaggle gateway (``cmi_gateway.CMIGateway``) hands ``predict``, without Kaggle.

It reads the CSV files with polars (default options), shuffles the unique sequence ids and,
per sequence, passes all rows of that sequence (test.csv columns, ``subject`` included) and
the subject's one-row demographics frame (DOMAIN.md section 5).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import polars as pl

from cmi_core.data.schema import GESTURES, TEST_COLUMNS, THM_COLUMNS, TOF_COLUMNS

Call = tuple[str, pl.DataFrame, pl.DataFrame]


def gateway_calls(
    data_dir: Path, kind: str = "test", seed: int = 0, only: Collection[str] | None = None
) -> Iterator[Call]:
    """``(sequence_id, sequence frame, demographics frame)`` in shuffled order.

    ``kind = "train"`` serves the training files in the test layout (labels dropped), which
    is how the parity test replays validation sequences through ``predict``.
    """
    return _calls(data_dir / f"{kind}.csv", data_dir / f"{kind}_demographics.csv", seed, only)


def _calls(
    csv: Path, demographics_csv: Path, seed: int, only: Collection[str] | None
) -> Iterator[Call]:
    frame = pl.read_csv(csv).select(TEST_COLUMNS)
    demographics = pl.read_csv(demographics_csv)
    if only is not None:
        frame = frame.filter(pl.col("sequence_id").is_in(list(only)))
    sequences = frame.partition_by("sequence_id", as_dict=True, maintain_order=True)
    order = sorted(key[0] for key in sequences)
    random.Random(seed).shuffle(order)
    for sequence_id in order:
        sequence = sequences[(sequence_id,)]
        subject = sequence["subject"][0]
        yield sequence_id, sequence, demographics.filter(pl.col("subject") == subject)


class FakeInferenceServer:
    """Stands in for ``kaggle_evaluation.cmi_inference_server.CMIInferenceServer``.

    ``run_local_gateway`` replays the files like the real gateway and checks every answer the
    way it does (a Python ``str`` among the 18 gestures); the answers are kept for the test.
    """

    instances: ClassVar[list[FakeInferenceServer]] = []  # what ran, for the test to read

    def __init__(self, predict: Callable[[pl.DataFrame, pl.DataFrame], str]) -> None:
        self.predict = predict
        self.answers: dict[str, str] = {}
        self.imu_only = 0  # sequences served with every thermopile and ToF value null
        FakeInferenceServer.instances.append(self)

    def serve(self) -> None:
        raise AssertionError("serve() is for the competition rerun only")

    def run_local_gateway(self, data_paths: Sequence[str]) -> None:
        for sequence_id, sequence, demographics in _calls(*map(Path, data_paths), 7, None):
            answer = self.predict(sequence, demographics)
            if type(answer) is not str or answer not in GESTURES:
                raise AssertionError(f"INVALID_SUBMISSION for {sequence_id}: {answer!r}")
            self.answers[sequence_id] = answer
            sensors = sequence.select(*THM_COLUMNS, *TOF_COLUMNS)
            self.imu_only += sensors.null_count().sum_horizontal()[0] == sensors.width * len(
                sensors
            )
