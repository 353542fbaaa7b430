"""Every row of a CSV file has as many fields as its header, or the file is refused by line.

polars fills a short row with nulls and, parsing only the columns a feature set needs, never
sees a row's extra fields: a file cut mid-row or a corrupted row would be read as missing
sensor values and training would go on. The check reads the raw bytes in blocks and compares
each block's separator count with its row count (two vectorised counts, a fraction of the
parse time); only a block that does not add up is split into rows to find the first bad one.
A short and a long row in the same block that cancel out exactly are not seen by the totals.
Blocks holding a quote character are split into rows with :mod:`csv` (quoted commas).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from cmi_core.errors import DataError

BLOCK = 1 << 22
_COMMA, _NEWLINE = ord(","), ord("\n")


def check_rows(path: Path) -> None:
    """Raise ``DataError("<path>: line N: ...")`` for the first row with a wrong field count."""
    with open(path, "rb") as fh:
        fields = _fields(fh.readline())
        line, rest = 2, b""  # the 1-based number of the next row; the header is line 1
        while block := fh.read(BLOCK):
            data = rest + block
            end = data.rfind(b"\n") + 1
            line += _check_block(data[:end], fields, line, path)
            rest = data[end:]
    if rest.strip(b"\r\n"):  # the last row has no line end: possibly a cut file
        _check_block(rest + b"\n", fields, line, path, last=True)


def _fields(row: bytes) -> int:
    if b'"' in row:
        return len(next(csv.reader([row.decode("utf-8", "replace")]), []))
    return row.count(b",") + 1


def _check_block(data: bytes, fields: int, first: int, path: Path, last: bool = False) -> int:
    """Check the complete rows in ``data`` (row ``first`` onwards); returns how many there are."""
    buf = np.frombuffer(data, np.uint8)
    newlines = np.flatnonzero(buf == _NEWLINE)
    if b'"' not in data and np.count_nonzero(buf == _COMMA) == len(newlines) * (fields - 1):
        return len(newlines)
    bad = np.flatnonzero(_field_counts(data, buf, newlines) != fields)
    if len(bad):
        row = data[newlines[bad[0] - 1] + 1 if bad[0] else 0 : newlines[bad[0]]]
        raise DataError(f"{path}: line {first + int(bad[0])}: {_problem(row, fields, last)}")
    return len(newlines)


def _field_counts(data: bytes, buf: np.ndarray, newlines: np.ndarray) -> np.ndarray:
    if b'"' in data:
        rows = data.decode("utf-8", "replace").split("\n")[: len(newlines)]
        return np.array([len(row) for row in csv.reader(rows)], dtype=np.int64)
    commas = np.cumsum(buf == _COMMA, dtype=np.int64)[newlines]
    return np.diff(commas, prepend=0) + 1


def _problem(row: bytes, fields: int, last: bool) -> str:
    found = _fields(row)
    if not row.strip():
        return "an empty line"
    if last and found < fields:
        return f"the file ends inside this row ({found} of {fields} fields): was it cut short?"
    if found < fields:
        return f"{found} fields, expected {fields}: a short or cut row"
    return f"{found} fields, expected {fields}: an extra field"
