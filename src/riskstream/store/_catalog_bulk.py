"""Fast bulk upserts of reference data into the catalog (1M trades in seconds).

SQLite: one ``executemany`` of ``INSERT ... ON CONFLICT (key) DO UPDATE`` through the DB-API cursor.
PostgreSQL: ``COPY`` into a temporary table, then one ``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE``.
The plain reference path (SQLAlchemy Core ``insert().on_conflict_do_update`` row dicts) lives beside them and a
test checks that both leave the same table.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from riskstream.errors import InputError, InvalidFieldError, MissingFieldError

_SQLITE_BATCH = 100_000


@dataclass(frozen=True)
class UpsertResult:
    """What an upsert wrote: ``rows`` inserted or updated, and each refused input row with its reason."""

    rows: int
    rejected: tuple[tuple[int, str], ...] = ()  # (position in the input, reason naming field and value)


def to_frame(data: pd.DataFrame | pa.Table | Iterable[Mapping[str, Any]], what: str) -> pd.DataFrame:
    """A DataFrame from a DataFrame, an Arrow table or an iterable of row mappings, with a 0..n-1 index."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, pa.Table):
        frame = data.to_pandas()
    elif isinstance(data, Iterable) and not isinstance(data, str | bytes):
        frame = pd.DataFrame.from_records(list(data))
    else:
        raise InputError(
            f"{what} must be a DataFrame, an Arrow table or rows; got {type(data).__name__}",
            field=what,
            value=type(data).__name__,
        )
    return frame.reset_index(drop=True)


def json_value(value: Any) -> Any:
    """``value`` as plain JSON: numpy scalars unwrapped, dates as ISO strings, NaN dropped to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | dt.date | dt.datetime):
        return value.isoformat()
    return value


def text_column(frame: pd.DataFrame, column: str) -> list[Any]:
    """Column values as Python objects with missing values as None (absent column → all None)."""
    if column not in frame.columns:
        return [None] * len(frame)
    series = frame[column]
    return series.astype(object).where(series.notna(), None).tolist()


def validate_keys(
    frame: pd.DataFrame, mandatory: Sequence[str], key: str, what: str
) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """Rows whose mandatory columns are all non-empty text; the others with a reason. Last duplicate key wins.

    A mandatory column absent from the whole input raises MissingFieldError: that is a malformed input, not
    one bad row.
    """
    for column in mandatory:
        if column not in frame.columns:
            raise MissingFieldError(column, where=what)
    bad = np.zeros(len(frame), dtype=bool)
    reasons: dict[int, str] = {}
    for column in mandatory:
        values = frame[column]
        missing = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
        for i in np.flatnonzero(missing & ~bad):
            value = values.iloc[i]
            reasons[int(i)] = (
                f"mandatory field {column!r} is missing (value {None if pd.isna(value) else value!r})"
            )
        bad |= missing
    good = frame[~bad]
    good = good.drop_duplicates(subset=[key], keep="last")
    return good, sorted(reasons.items())


def reject_non_finite(frame: pd.DataFrame, column: str, rejected: list[tuple[int, str]]) -> pd.DataFrame:
    """Drop rows whose numeric ``column`` is ±inf or not a number (NaN stays: it means unknown)."""
    if column not in frame.columns:
        return frame
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = (values.isna() & frame[column].notna()) | np.isinf(values.astype(float))
    for i in np.flatnonzero(bad.to_numpy()):
        index = int(frame.index[int(i)])
        rejected.append((index, str(InvalidFieldError(column, frame[column].iloc[i], "not a finite number"))))
    kept = frame[~bad.to_numpy()].copy()
    kept[column] = values[~bad.to_numpy()]
    return kept


def bulk_upsert(
    connection: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    key: Sequence[str],
) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into table ``table``, updating rows whose ``key`` exists.

    Keys must be unique within ``rows``. JSON columns take already-serialised text. Returns ``len(rows)``.
    """
    if not rows:
        return 0
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    keys = ", ".join(quote(c) for c in key)
    others = [c for c in columns if c not in key]
    on_conflict = (
        f"ON CONFLICT ({keys}) DO UPDATE SET "
        + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in others)
        if others
        else f"ON CONFLICT ({keys}) DO NOTHING"
    )
    target = quote(table)
    raw = connection.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        if dialect.name == "sqlite":
            sql = f"INSERT INTO {target} ({names}) VALUES ({', '.join('?' for _ in columns)}) {on_conflict}"
            for start in range(0, len(rows), _SQLITE_BATCH):
                cursor.executemany(sql, rows[start : start + _SQLITE_BATCH])
        else:
            staging = quote(f"_stage_{table}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {staging} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if others:  # leave unchanged rows alone: a daily reload rewrites (and bloats) only what moved
                # compared as text: json has no equality operator; floats print exactly (PostgreSQL >= 12)
                mine = ", ".join(f"CAST({target}.{quote(c)} AS TEXT)" for c in others)
                theirs = ", ".join(f"CAST(excluded.{quote(c)} AS TEXT)" for c in others)
                on_conflict += f" WHERE ROW({mine}) IS DISTINCT FROM ROW({theirs})"
            cursor.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {staging} {on_conflict}")
            cursor.execute(f"DROP TABLE {staging}")
    finally:
        cursor.close()
    return len(rows)


def reference_upsert(
    connection: Connection, table: sa.Table, records: Sequence[Mapping[str, Any]], key: Sequence[str]
) -> int:
    """The plain path: SQLAlchemy Core upsert of row dicts (JSON columns take Python objects)."""
    if not records:
        return 0
    insert = sqlite.insert if connection.dialect.name == "sqlite" else postgresql.insert
    statement = insert(table)
    others = [c for c in records[0] if c not in key]
    statement = statement.on_conflict_do_update(
        index_elements=list(key), set_={c: statement.excluded[c] for c in others}
    )
    connection.execute(statement, list(records))
    return len(records)


def dumps(value: Any) -> str:
    return json.dumps(value, default=json_value, sort_keys=True)
