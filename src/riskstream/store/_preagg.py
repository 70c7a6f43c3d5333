"""Pre-aggregations: sums of risk_results by a grain, rebuilt for the partitions a commit touched.

Each grain's table holds its dimensions, ``value`` (sum, float64), ``row_count`` (int64), ``pnl_vector``
(element-wise sum of the rows' scenario P&L vectors; null when no row of the group had one) and
``source_version`` (the risk_results version it was built from).

The build works on the Arrow columns with numpy: every row gets the code of its grain cell (the dictionary codes
of the dimensions combined), ``value`` and ``row_count`` are ``np.bincount`` sums, and the vectors — whose flat
values are viewed as a rows × scenarios matrix without a copy, one Arrow chunk at a time — are summed per cell by
a sparse cells × rows indicator matrix. Sums run in row order, so a single-chunk build equals
`preaggregate_reference` (the plain-Python definition) bit for bit; across chunks the partial sums of each chunk
are added, within a few ulps of it. Rows whose vectors differ in length (never within one partition of the
store) are summed by the DuckDB statement `preaggregate_duckdb`, kept as the general fallback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from ._config import PreaggSpec
from ._schema import MANDATORY, OPTIONAL

__all__ = ["preagg_schema", "preaggregate", "preaggregate_duckdb", "preaggregate_reference"]


def preagg_schema(spec: PreaggSpec) -> pa.Schema:
    dims = [pa.field(d, MANDATORY.get(d) or OPTIONAL.get(d) or pa.string()) for d in spec.dimensions]
    return pa.schema(
        [
            *dims,
            pa.field("value", pa.float64()),
            pa.field("row_count", pa.int64()),
            pa.field("pnl_vector", pa.list_(pa.float64())),
            pa.field("source_version", pa.int64()),
        ]
    )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _prepare(rows: pa.Table, spec: PreaggSpec) -> pa.Table:
    """``rows`` reduced to the grain's dimensions, value and pnl_vector (missing ones as nulls)."""
    schema = preagg_schema(spec)
    for d in spec.dimensions:  # an optional dimension no row has yet is null for all
        if d not in rows.column_names:
            rows = rows.append_column(d, pa.nulls(rows.num_rows, schema.field(d).type))
    if "pnl_vector" not in rows.column_names:
        rows = rows.append_column("pnl_vector", pa.nulls(rows.num_rows, pa.list_(pa.float64())))
    return rows.select([*spec.dimensions, "value", "pnl_vector"])


def _dense_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """0-based codes of a column's distinct values (NULL is a value of its own) and their number."""
    if column.num_chunks == 0:
        return np.zeros(0, np.int64), 0
    encoded = pc.dictionary_encode(column, null_encoding="encode").unify_dictionaries()
    codes = np.concatenate([np.asarray(c.indices, dtype=np.int64) for c in encoded.chunks])
    return codes, len(encoded.chunk(0).dictionary)


def _cell_codes(rows: pa.Table, dims: Sequence[str]) -> tuple[np.ndarray, int]:
    """The grain cell of every row (0-based, first-seen order) and the number of cells."""
    cell = np.zeros(rows.num_rows, dtype=np.int64)
    cells = 1 if rows.num_rows else 0
    for d in dims:
        step, distinct = _dense_codes(rows.column(d))
        if distinct <= 1:  # business_date and namespace are constant within a partition
            continue
        combined = cell * distinct + step
        codes, uniques = pd.factorize(combined)
        cell, cells = np.asarray(codes, dtype=np.int64), len(uniques)
    return cell, cells


def _uniform_length(vectors: pa.ChunkedArray) -> int | None:
    """The one length of the non-null vectors (0 when there are none); None when lengths differ."""
    lengths = pc.drop_null(pc.list_value_length(vectors))
    if len(lengths) == 0:
        return 0
    mm = pc.min_max(lengths).as_py()
    return int(mm["min"]) if mm["min"] == mm["max"] else None


def _chunk_matrix(chunk: pa.Array, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows with a vector, rows × length matrix of their vectors) of one list<float64> chunk, uncopied when
    the chunk's values are contiguous and free of nulls (as the store writes them)."""
    if isinstance(chunk, pa.LargeListArray):
        chunk = chunk.cast(pa.list_(pa.float64()))
    valid = np.flatnonzero(np.asarray(chunk.is_valid(), dtype=bool))
    offsets = np.asarray(chunk.offsets, dtype=np.int64)
    starts = offsets[:-1][valid]
    flat = np.asarray(chunk.values.to_numpy(zero_copy_only=False), dtype=np.float64)
    if len(valid) and (np.diff(starts) == length).all():
        first = int(starts[0])
        return valid, flat[first : first + len(valid) * length].reshape(len(valid), length)
    index = starts[:, None] + np.arange(length)[None, :]
    return valid, flat[index]


def _vector_sums(
    vectors: pa.ChunkedArray, cell: np.ndarray, cells: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """(cells × length sums of the vectors, whether each cell had any vector), chunk by chunk."""
    sums = np.zeros((cells, length), dtype=np.float64)
    has = np.zeros(cells, dtype=bool)
    start = 0
    for chunk in vectors.chunks:
        n = len(chunk)
        if chunk.null_count < n:
            valid, matrix = _chunk_matrix(chunk, length)
            target = cell[start : start + n][valid]
            has[target] = True
            # cells × rows indicator (CSR keeps each cell's rows in row order: sums in the reference's order)
            onehot = sp.csr_matrix(
                (np.ones(len(valid)), (target, np.arange(len(valid)))), shape=(cells, len(valid))
            )
            sums += np.asarray(onehot @ matrix)
        start += n
    return sums, has


def preaggregate(rows: pa.Table, spec: PreaggSpec, source_version: int) -> pa.Table:
    """Group ``rows`` (risk_results columns) by the grain: sum value, count rows, element-wise sum pnl_vector.

    Returns one row per distinct combination of the grain's dimensions (NULL is a value), sorted by them (NULL
    last), with the columns of `preagg_schema`.
    """
    schema = preagg_schema(spec)
    rows = _prepare(rows, spec)
    vectors = rows.column("pnl_vector")
    length = _uniform_length(vectors)
    if length is None:
        return preaggregate_duckdb(rows, spec, source_version)
    cell, cells = _cell_codes(rows, spec.dimensions)
    values = np.asarray(rows.column("value").to_numpy(), dtype=np.float64)
    value = np.bincount(cell, weights=values, minlength=cells)
    count = np.bincount(cell, minlength=cells).astype(np.int64)
    first = np.full(cells, rows.num_rows, dtype=np.int64)
    np.minimum.at(first, cell, np.arange(rows.num_rows, dtype=np.int64))
    if vectors.null_count < len(vectors):
        sums, has = _vector_sums(vectors, cell, cells, length)
        column = pa.ListArray.from_arrays(
            pa.array(np.arange(cells + 1, dtype=np.int32) * length),
            pa.array(sums.ravel()),
            mask=pa.array(~has),
        )
    else:
        column = pa.nulls(cells, pa.list_(pa.float64()))
    keys = rows.select(list(spec.dimensions)).take(pa.array(first))
    out = pa.table(
        {
            **{d: keys.column(d) for d in spec.dimensions},
            "value": pa.array(value),
            "row_count": pa.array(count),
            "pnl_vector": column,
            "source_version": pa.array(np.full(cells, source_version, dtype=np.int64)),
        }
    )
    if cells > 1:
        out = out.take(pc.sort_indices(out, sort_keys=[(d, "ascending") for d in spec.dimensions]))
    return out.cast(schema)


def preaggregate_duckdb(rows: pa.Table, spec: PreaggSpec, source_version: int) -> pa.Table:
    """`preaggregate` as one DuckDB statement (``unnest`` of every vector): any vector lengths, much slower."""
    schema = preagg_schema(spec)
    rows = _prepare(rows, spec)
    dims = ", ".join(_q(d) for d in spec.dimensions)
    on = " AND ".join(f"a.{_q(d)} IS NOT DISTINCT FROM v.{_q(d)}" for d in spec.dimensions)
    sql = f"""
        WITH agg AS (
            SELECT {dims}, sum(value) AS value, count(*) AS row_count FROM src GROUP BY {dims}
        ), elems AS (
            SELECT {dims}, unnest(pnl_vector) AS x, generate_subscripts(pnl_vector, 1) AS i
            FROM src WHERE pnl_vector IS NOT NULL
        ), vec AS (
            SELECT {dims}, list(s ORDER BY i) AS pnl_vector
            FROM (SELECT {dims}, i, sum(x) AS s FROM elems GROUP BY {dims}, i) GROUP BY {dims}
        )
        SELECT a.*, v.pnl_vector, {int(source_version)}::BIGINT AS source_version
        FROM agg a LEFT JOIN vec v ON {on}
        ORDER BY {", ".join(f"a.{_q(d)}" for d in spec.dimensions)}
    """
    con = duckdb.connect()
    try:
        con.register("src", rows)
        out: pa.Table = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    return out.select(schema.names).cast(schema)


def preaggregate_reference(
    rows: Sequence[dict[str, Any]], spec: PreaggSpec, source_version: int
) -> list[dict]:
    """Plain-Python definition of `preaggregate` (one dict per group), for tests."""
    groups: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = tuple(r.get(d) for d in spec.dimensions)
        g = groups.setdefault(
            key,
            {
                **dict(zip(spec.dimensions, key, strict=True)),
                "value": 0.0,
                "row_count": 0,
                "pnl_vector": None,
            },
        )
        g["value"] += r["value"]
        g["row_count"] += 1
        vec = r.get("pnl_vector")
        if vec is not None:
            if g["pnl_vector"] is None:
                g["pnl_vector"] = [0.0] * len(vec)
            g["pnl_vector"] = [a + b for a, b in zip(g["pnl_vector"], vec, strict=True)]
    out = []
    for key in sorted(groups, key=lambda k: tuple("" if v is None else str(v) for v in k)):
        out.append({**groups[key], "source_version": source_version})
    return out
