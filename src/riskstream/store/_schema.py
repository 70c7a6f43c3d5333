"""The risk_results schema and the checks a chunk passes before it is staged.

Mandatory columns (Arrow type): ``business_date`` date32, ``namespace``, ``job_id`` (filled by the store),
``desk``, ``book``, ``trader``, ``trade_id``, ``measure``, ``currency`` strings and ``value`` float64.
Optional standard columns: ``instrument_type``, ``counterparty``, ``sector``, ``region`` strings, ``pnl_vector``
list<float64> (scenario P&L, positive = gain, in ``currency``; same length within one business date and
namespace) and ``committed_at`` timestamp[us, UTC] (set by the store). Any other column is an optional sparse
column: the table's schema grows to hold it and older rows read null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ChunkRejectedError, SchemaEvolutionError

__all__ = ["KEY_COLUMNS", "MANDATORY", "OPTIONAL", "RESULTS_PARTITION"]

MANDATORY: dict[str, pa.DataType] = {
    "business_date": pa.date32(),
    "namespace": pa.string(),
    "job_id": pa.string(),
    "desk": pa.string(),
    "book": pa.string(),
    "trader": pa.string(),
    "trade_id": pa.string(),
    "measure": pa.string(),
    "value": pa.float64(),
    "currency": pa.string(),
}
OPTIONAL: dict[str, pa.DataType] = {
    "instrument_type": pa.string(),
    "counterparty": pa.string(),
    "sector": pa.string(),
    "region": pa.string(),
    "pnl_vector": pa.list_(pa.float64()),
    "committed_at": pa.timestamp("us", tz="UTC"),
}
#: Rows with the same key replace each other when a job is re-run.
KEY_COLUMNS = ("business_date", "namespace", "trade_id", "measure")
RESULTS_PARTITION = "business_date"
#: Columns a job scope may restrict.
SCOPE_COLUMNS = ("desk", "book", "trader")


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _widen(column: str, have: pa.DataType, want: pa.DataType) -> pa.DataType:
    """The type a chunk's column is stored as when the table (or schema) says ``want``; raise if impossible."""
    if have == want:
        return want
    if _is_string(have) and _is_string(want):
        return want
    if pa.types.is_dictionary(have):
        return _widen(column, have.value_type, want)
    if pa.types.is_null(have):
        return want
    if pa.types.is_floating(want) and (pa.types.is_integer(have) or pa.types.is_floating(have)):
        if have.bit_width <= want.bit_width:
            return want
    if pa.types.is_integer(want) and pa.types.is_integer(have) and have.bit_width <= want.bit_width:
        if pa.types.is_signed_integer(want) or not pa.types.is_signed_integer(have):
            return want
    if pa.types.is_date(want) and (pa.types.is_timestamp(have) or pa.types.is_date(have)):
        return want
    if pa.types.is_timestamp(want) and pa.types.is_timestamp(have):
        return want
    if (pa.types.is_list(want) or pa.types.is_large_list(want)) and (
        pa.types.is_list(have) or pa.types.is_large_list(have)
    ):
        _widen(column, have.value_type, want.value_type)
        return want
    raise SchemaEvolutionError(column, str(want), str(have))


def storable_type(t: pa.DataType) -> pa.DataType:
    """The type a new sparse column is stored as (Delta has no unsigned, dictionary or nanosecond types)."""
    if pa.types.is_dictionary(t):
        return storable_type(t.value_type)
    if pa.types.is_null(t) or _is_string(t):
        return pa.string()
    if pa.types.is_unsigned_integer(t):
        return pa.int64()
    if pa.types.is_integer(t) and t.bit_width < 64:
        return pa.int64()
    if pa.types.is_floating(t):
        return pa.float64()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC" if t.tz else None)
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(storable_type(t.value_type))
    return t


def conform(table: pa.Table, existing: pa.Schema | None) -> pa.Table:
    """Cast ``table`` to the stored types: mandatory/standard columns, then the table's existing columns.

    Raises `SchemaEvolutionError` naming the column and both types when a column cannot be merged.
    """
    arrays = []
    fields = []
    for name in table.column_names:
        col = table.column(name)
        if name in MANDATORY:
            want = MANDATORY[name]
        elif name in OPTIONAL:
            want = OPTIONAL[name]
        elif existing is not None and name in existing.names:
            want = existing.field(name).type
        else:
            want = storable_type(col.type)
        if existing is not None and name in existing.names and existing.field(name).type != want:
            # a column the table already holds keeps its stored type; the standard one must agree with it
            want = _widen(name, want, existing.field(name).type)
        target = _widen(name, col.type, want)
        if target != col.type:
            try:
                col = col.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaEvolutionError(name, str(target), f"{col.type} ({exc})") from exc
        arrays.append(col)
        fields.append(pa.field(name, target))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _first(col: pa.ChunkedArray | pa.Array, mask: pa.ChunkedArray | pa.Array) -> Any:
    idx = pc.index(mask, True).as_py()
    return col[idx].as_py() if idx >= 0 else None


def validate_chunk(
    table: pa.Table,
    *,
    job_id: str,
    chunk_id: str,
    namespace: str,
    business_date: Any,
    scope: Mapping[str, Sequence[str]] | None,
    books: Mapping[str, str] | None,
) -> pa.Table:
    """Check a conformed chunk; return it with ``job_id`` filled. Raise `ChunkRejectedError` at the first problem.

    Checks: mandatory fields present and non-null, ``value`` finite, ``business_date``/``namespace`` equal to the
    job's, rows inside the job's scope, books known (when ``books`` is non-empty), (trade_id, measure) unique in the
    chunk, ``pnl_vector`` of one length and finite.
    """

    def reject(reason: str, field: str, value: Any) -> ChunkRejectedError:
        return ChunkRejectedError(job_id, chunk_id, reason, field=field, value=value)

    if table.num_rows == 0:
        raise reject("the chunk has no rows", "rows", 0)
    if "job_id" not in table.column_names:
        table = table.append_column("job_id", pa.array([job_id] * table.num_rows, pa.string()))
    for name in MANDATORY:
        if name not in table.column_names:
            raise reject(f"mandatory field {name!r} is missing", name, None)
        col = table.column(name)
        if col.null_count:
            raise reject(f"field {name!r} is null in {col.null_count} row(s)", name, None)
    value = table.column("value")
    bad = pc.invert(pc.is_finite(value))
    if pc.any(bad).as_py():
        v = _first(value, bad)
        raise reject(f"field 'value' has non-finite value {v!r}", "value", v)
    for name, want in (("business_date", business_date), ("namespace", namespace), ("job_id", job_id)):
        col = table.column(name)
        other = pc.not_equal(col, pa.scalar(want, col.type))
        if pc.any(other).as_py():
            v = _first(col, other)
            raise reject(f"field {name!r} has value {v!r}; the job is for {want!r}", name, v)
    for name, allowed in (scope or {}).items():
        col = table.column(name)
        outside = pc.invert(pc.is_in(col, value_set=pa.array(list(allowed), pa.string())))
        if pc.any(outside).as_py():
            v = _first(col, outside)
            raise reject(f"field {name!r} has value {v!r} outside the job's scope {list(allowed)}", name, v)
    if books:
        col = table.column("book")
        unknown = pc.invert(pc.is_in(col, value_set=pa.array(list(books), pa.string())))
        if pc.any(unknown).as_py():
            v = _first(col, unknown)
            raise reject(f"field 'book' has value {v!r}, a book the catalog does not know", "book", v)
    keys = table.group_by(["trade_id", "measure"]).aggregate([([], "count_all")])
    dup = pc.greater(keys.column("count_all"), 1)
    if pc.any(dup).as_py():
        i = pc.index(dup, True).as_py()
        v = (keys.column("trade_id")[i].as_py(), keys.column("measure")[i].as_py())
        raise reject(f"key (trade_id, measure) {v!r} appears more than once", "trade_id", v[0])
    if "pnl_vector" in table.column_names:
        vec = table.column("pnl_vector")
        lengths = pc.drop_null(pc.list_value_length(vec))
        if len(lengths):
            mm = pc.min_max(lengths).as_py()
            if mm["min"] != mm["max"]:
                raise reject(
                    f"field 'pnl_vector' has lengths from {mm['min']} to {mm['max']}; all must be equal",
                    "pnl_vector",
                    mm["min"],
                )
            flat = pc.list_flatten(vec)
            if len(flat) and not pc.all(pc.is_finite(flat)).as_py():
                raise reject("field 'pnl_vector' holds a non-finite value", "pnl_vector", math.nan)
    return table


def merge_schemas(column_types: Mapping[str, pa.DataType], schema: pa.Schema) -> None:
    """Check the columns of one chunk against those of the others (same column, same type)."""
    for f in schema:
        have = column_types.get(f.name)
        if have is not None and have != f.type:
            raise SchemaEvolutionError(f.name, str(have), str(f.type))
