"""Pre-aggregations: sums of risk_results by a grain, rebuilt for the partitions a commit touched.

Each grain's table holds its dimensions, ``value`` (sum, float64), ``row_count`` (int64), ``pnl_vector``
(element-wise sum of the rows' scenario P&L vectors; null when no row of the group had one) and
``source_version`` (the risk_results version it was built from). The build is one DuckDB statement over the
Arrow data (vectorised); `preaggregate_reference` is the plain-Python definition it is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from ._config import PreaggSpec
from ._schema import MANDATORY, OPTIONAL

__all__ = ["preagg_schema", "preaggregate", "preaggregate_reference"]


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


def preaggregate(rows: pa.Table, spec: PreaggSpec, source_version: int) -> pa.Table:
    """Group ``rows`` (risk_results columns) by the grain: sum value, count rows, element-wise sum pnl_vector."""
    schema = preagg_schema(spec)
    missing = [d for d in spec.dimensions if d not in rows.column_names]
    for d in missing:  # an optional dimension no row has yet is null for all
        rows = rows.append_column(d, pa.nulls(rows.num_rows, schema.field(d).type))
    if "pnl_vector" not in rows.column_names:
        rows = rows.append_column("pnl_vector", pa.nulls(rows.num_rows, pa.list_(pa.float64())))
    rows = rows.select([*spec.dimensions, "value", "pnl_vector"])
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
