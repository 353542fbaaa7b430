"""A local stand-in for the Kaggle evaluation gateway, so a notebook can be dry-run offline.

The real gateway (``kaggle_evaluation.cmi_inference_server``) reads ``test.csv`` and
``test_demographics.csv`` with polars, shuffles the sequence ids (subjects interleaved) and
calls ``predict(sequence, demographics)`` once per sequence, with all rows of that sequence
(the test columns, ``subject`` included) and the subject's one-row demographics frame. An
answer that is not a plain ``str`` among the 18 gestures is an ``INVALID_SUBMISSION``.
:class:`LocalInferenceServer` does the same with the same interface, and :func:`replay` is the
one-call version (docs/kaggle.md, "Dry run").
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

import polars as pl

from cmi_core.data.schema import GESTURES, TEST_COLUMNS, THM_COLUMNS, TOF_COLUMNS
from cmi_core.errors import RunError

Call = tuple[str, pl.DataFrame, pl.DataFrame]
GATEWAY_SEED = 7
"""The stand-in server's default shuffle (``cmi predict --order-seed 7`` replays its order)."""
PredictFn = Callable[[pl.DataFrame, pl.DataFrame], str]


def gateway_calls(
    data_dir: Path, kind: str = "test", seed: int = 0, only: Collection[str] | None = None
) -> Iterator[Call]:
    """``(sequence_id, sequence frame, demographics frame)`` in the gateway's shuffled order.

    ``kind = "train"`` serves the training files in the test layout (labels dropped), which
    is how validation sequences can be replayed through ``predict``.
    """
    data_dir = Path(data_dir)
    return file_calls(
        data_dir / f"{kind}.csv", data_dir / f"{kind}_demographics.csv", seed=seed, only=only
    )


def arrival_order(sequence_ids: Sequence[str], seed: int) -> list[str]:
    """The gateway's order: the sorted ids shuffled by ``random.Random(seed)``, which
    interleaves subjects (``cmi predict --order-seed`` and ``cmi ensemble --orders`` use it)."""
    order = sorted(sequence_ids)
    random.Random(seed).shuffle(order)
    return order


def file_calls(
    csv: Path, demographics_csv: Path, *, seed: int = 0, only: Collection[str] | None = None
) -> Iterator[Call]:
    """The calls of :func:`gateway_calls` for explicit file paths."""
    frame = pl.read_csv(csv).select(TEST_COLUMNS)
    demographics = pl.read_csv(demographics_csv)
    if only is not None:
        frame = frame.filter(pl.col("sequence_id").is_in(list(only)))
    sequences = frame.partition_by("sequence_id", as_dict=True, maintain_order=True)
    for sequence_id in arrival_order([key[0] for key in sequences], seed):
        sequence = sequences[(sequence_id,)]
        subject = sequence["subject"][0]
        yield sequence_id, sequence, demographics.filter(pl.col("subject") == subject)


def is_imu_only(sequence: pl.DataFrame) -> bool:
    """Every thermopile and ToF value null: the IMU-only half of the hidden test set."""
    sensors = sequence.select(*THM_COLUMNS, *TOF_COLUMNS)
    return sensors.null_count().sum_horizontal()[0] == sensors.width * len(sensors)


def checked_answer(sequence_id: str, answer: object) -> str:
    """The answer, or the gateway's refusal: a plain ``str`` naming one of the 18 gestures."""
    if type(answer) is not str or answer not in GESTURES:
        raise RunError(f"INVALID_SUBMISSION for sequence {sequence_id}: {answer!r}")
    return answer


class LocalInferenceServer:
    """Stands in for ``kaggle_evaluation.cmi_inference_server.CMIInferenceServer``.

    ``run_local_gateway`` replays the files like the real gateway and checks every answer the
    way it does; the answers are kept in ``answers`` (``{sequence_id: gesture}``).
    """

    def __init__(self, predict: PredictFn, seed: int = GATEWAY_SEED) -> None:
        self.predict = predict
        self.seed = seed
        self.answers: dict[str, str] = {}
        self.imu_only = 0  # sequences served with every thermopile and ToF value null

    def serve(self) -> None:
        raise RunError("serve() is for the competition rerun only; use run_local_gateway()")

    def run_local_gateway(self, data_paths: Sequence[str]) -> None:
        csv, demographics = map(Path, data_paths)
        for sequence_id, sequence, demo in file_calls(csv, demographics, seed=self.seed):
            self.answers[sequence_id] = checked_answer(sequence_id, self.predict(sequence, demo))
            self.imu_only += is_imu_only(sequence)


def replay(predict: PredictFn, data_dir: Path, seed: int = GATEWAY_SEED) -> dict[str, str]:
    """``{sequence_id: gesture}`` of ``predict`` over ``test.csv`` of ``data_dir``, called as
    the gateway calls it."""
    server = LocalInferenceServer(predict, seed)
    data_dir = Path(data_dir)
    server.run_local_gateway([str(data_dir / "test.csv"), str(data_dir / "test_demographics.csv")])
    return server.answers
