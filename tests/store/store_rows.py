"""Small risk_results chunks for store tests: one row per (trade, measure), values chosen by the caller."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pyarrow as pa

DAY = date(2026, 11, 20)
BOOKS = {"RATES": ("R1", "R2"), "FX": ("F1",), "EQ": ("E1", "E2")}


def rows(
    business_date: date = DAY,
    *,
    desks: Sequence[str] = ("RATES", "FX"),
    trades_per_book: int = 3,
    measures: Sequence[str] = ("pv", "delta"),
    value: float = 1.0,
    namespace: str = "EOD",
    vector_length: int | None = None,
    prefix: str = "T",
) -> pa.Table:
    """Every (trade, measure) of the desks' books with ``value`` (+ trade index / 1000 to tell rows apart)."""
    cols: dict[str, list] = {
        k: []
        for k in (
            "business_date",
            "namespace",
            "desk",
            "book",
            "trader",
            "trade_id",
            "measure",
            "value",
            "currency",
        )
    }
    vectors: list[list[float] | None] = []
    for desk in desks:
        for book in BOOKS[desk]:
            for t in range(trades_per_book):
                for m in measures:
                    cols["business_date"].append(business_date)
                    cols["namespace"].append(namespace)
                    cols["desk"].append(desk)
                    cols["book"].append(book)
                    cols["trader"].append(f"{desk.lower()}_trader")
                    cols["trade_id"].append(f"{prefix}-{book}-{t}")
                    cols["measure"].append(m)
                    cols["value"].append(value + t / 1000)
                    cols["currency"].append("USD")
                    if vector_length is not None:
                        vectors.append(
                            [value * (t + 1) * (i + 1) for i in range(vector_length)] if m == "pv" else None
                        )
    table = pa.table(cols).cast(
        pa.schema(
            [
                ("business_date", pa.date32()),
                ("namespace", pa.string()),
                ("desk", pa.string()),
                ("book", pa.string()),
                ("trader", pa.string()),
                ("trade_id", pa.string()),
                ("measure", pa.string()),
                ("value", pa.float64()),
                ("currency", pa.string()),
            ]
        )
    )
    if vector_length is not None:
        table = table.append_column("pnl_vector", pa.array(vectors, pa.list_(pa.float64())))
    return table


def count(store, **where) -> int:  # type: ignore[no-untyped-def]
    import duckdb

    con = duckdb.connect()
    view = store.register(con)
    clause = " AND ".join(f"{k} = '{v}'" for k, v in where.items()) or "TRUE"
    return int(con.execute(f"SELECT count(*) FROM {view} WHERE {clause}").fetchall()[0][0])
