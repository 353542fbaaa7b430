"""Cut, short, long and duplicated rows of a train.csv: one line naming the file and row."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmi_core.config import FeatureConfig
from cmi_core.data import csv_rows, reader, schema
from cmi_core.errors import DataError

FIELDS = len(schema.TRAIN_COLUMNS)


def lines_of(directory: Path) -> list[bytes]:
    return (directory / "train.csv").read_bytes().splitlines(keepends=True)


def write_lines(directory: Path, lines: list[bytes]) -> Path:
    path = directory / "train.csv"
    path.write_bytes(b"".join(lines))
    return path


def load_error(directory: Path) -> str:
    with pytest.raises(DataError) as info:
        reader.load_train(directory, FeatureConfig())
    return str(info.value)


@pytest.fixture(params=[csv_rows.BLOCK, 1000], ids=["one-block", "many-blocks"])
def block(request, monkeypatch) -> int:
    """Each case in one block and in small blocks whose borders fall inside rows."""
    monkeypatch.setattr(csv_rows, "BLOCK", request.param)
    return request.param


@pytest.mark.parametrize("column", ["acc_y", "tof_3_v10"], ids=["in-IMU", "in-ToF"])
def test_a_file_cut_inside_a_row(mini_dir: Path, block: int, column: str) -> None:
    lines = lines_of(mini_dir)
    kept = schema.TRAIN_COLUMNS.index(column) + 1  # the cut falls inside this field
    cut = b",".join([*lines[-1].split(b",")[: kept - 1], b"12"])
    path = write_lines(mini_dir, [*lines[:-1], cut])
    assert load_error(mini_dir) == (
        f"{path}: line {len(lines)}: the file ends inside this row ({kept} of {FIELDS} fields): "
        "was it cut short?"
    )


def test_a_short_row_in_the_middle(mini_dir: Path, block: int) -> None:
    lines = lines_of(mini_dir)
    lines[40] = b",".join(lines[40].split(b",")[:-10]) + b"\n"
    path = write_lines(mini_dir, lines)
    assert load_error(mini_dir) == (
        f"{path}: line 41: {FIELDS - 10} fields, expected {FIELDS}: a short or cut row"
    )


def test_a_row_with_an_extra_field_in_the_middle(mini_dir: Path, block: int) -> None:
    lines = lines_of(mini_dir)
    fields = lines[70].split(b",")
    lines[70] = b",".join([*fields[:20], b"0.5", *fields[20:]])
    path = write_lines(mini_dir, lines)
    assert load_error(mini_dir) == (
        f"{path}: line 71: {FIELDS + 1} fields, expected {FIELDS}: an extra field"
    )


def test_a_duplicated_row(mini_dir: Path) -> None:
    lines = lines_of(mini_dir)
    sequence, counter = lines[9].split(b",")[2:4]
    path = write_lines(mini_dir, [*lines[:10], lines[9], *lines[10:]])
    assert load_error(mini_dir) == (
        f"{path}: sequence {sequence.decode()!r}: two rows with sequence_counter "
        f"{counter.decode()} (a duplicated row)"
    )


def test_line_ends_and_quotes_are_fine(mini_dir: Path, block: int) -> None:
    expected = reader.load_train(mini_dir, FeatureConfig())
    lines = [line.rstrip(b"\n") + b"\r\n" for line in lines_of(mini_dir)]
    fields = lines[5].split(b",")
    lines[5] = b",".join([*fields[:4], b'"' + fields[4] + b'"', *fields[5:]])
    write_lines(mini_dir, [*lines[:-1], lines[-1].rstrip(b"\r\n")])
    again = reader.load_train(mini_dir, FeatureConfig())
    assert list(again.sequence_ids) == list(expected.sequence_ids)


def test_an_empty_line(mini_dir: Path, block: int) -> None:
    path = write_lines(mini_dir, [*lines_of(mini_dir), b"\n"])
    assert load_error(mini_dir) == f"{path}: line {len(lines_of(mini_dir))}: an empty line"


def test_the_command_line_names_file_and_line(mini_dir: Path, tmp_path: Path, capsys) -> None:
    from cmi_core.cli import main

    lines = lines_of(mini_dir)
    path = write_lines(mini_dir, [*lines[:-1], lines[-1][:100]])
    config = tmp_path / "kaggle.toml"
    config.write_text(f'[data]\nsource = "kaggle"\ndir = "{mini_dir}"\n')
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {path}: line {len(lines)}: the file ends inside this row")
