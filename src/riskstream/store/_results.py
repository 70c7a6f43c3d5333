"""Reading chunk input (Arrow, pandas, Parquet, CSV) and staging chunks durably on local disk."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import InputError, InvalidFieldError
from ._schema import MANDATORY

__all__ = ["read_chunk_input"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
CHUNK_PREFIX = "chunk-"


def check_id(field: str, value: str) -> str:
    """Job and chunk ids become file names: letters, digits, ``_ . -``, at most 200 characters."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidFieldError(field, value, "use letters, digits, '_', '.', '-' (at most 200 characters)")
    return value


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def read_chunk_input(data: Any) -> pa.Table:
    """An Arrow table from a pyarrow Table/RecordBatch, a pandas DataFrame or a ``.parquet``/``.csv`` path.

    CSV columns named like mandatory string columns are read as strings (a trade id ``00123`` stays ``00123``)
    and ``business_date`` as a date; the others are inferred.
    """
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, str | Path):
        path = Path(data)
        if not path.exists():
            raise InputError(f"chunk file {str(path)!r} does not exist", field="path", value=str(path))
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path)
        if suffix in (".csv", ".txt"):
            types = {k: v for k, v in MANDATORY.items() if k != "value"}
            try:
                return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
            except pa.ArrowInvalid as exc:
                raise InputError(
                    f"chunk file {str(path)!r} cannot be read: {exc}", field="path", value=str(path)
                ) from exc
        raise InputError(
            f"chunk file {str(path)!r} has an unknown format (use .parquet or .csv)",
            field="path",
            value=str(path),
        )
    raise InputError(
        f"a chunk must be a pyarrow Table, a pandas DataFrame or a file path, not {type(data).__name__}",
        field="data",
        value=type(data).__name__,
    )


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stage(table: pa.Table, directory: Path, chunk_id: str) -> Path:
    """Write ``table`` as ``chunk-<chunk_id>.parquet``: temporary file, fsync, rename, fsync of the directory.

    The rename is atomic, so a concurrent reader (or a crash) sees the old chunk or the new one, never a part.
    """
    final = directory / f"{CHUNK_PREFIX}{chunk_id}.parquet"
    tmp = directory / f".tmp-{chunk_id}-{uuid.uuid4().hex}.parquet"
    pq.write_table(table, tmp, compression="snappy")  # staging is short-lived: fast to read back beats small
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    fsync_dir(directory)
    return final


def staged_chunks(directory: Path) -> list[Path]:
    if not directory.exists():
        return []
    return sorted(p for p in directory.glob(f"{CHUNK_PREFIX}*.parquet"))


def chunk_id_of(path: Path) -> str:
    return path.name[len(CHUNK_PREFIX) : -len(".parquet")]
