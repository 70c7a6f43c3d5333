"""The Arrow widening of pivots equals the pandas one it replaces (``_to_arrow(_widen(...))``) table for table."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from riskstream.query._run import _to_arrow, _widen, _widen_arrow


def _long(seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = 60
    book = rng.choice(np.array(["B1", "B2", "B10", None], dtype=object), n)
    ccy = rng.choice(np.array(["USD", "EUR", None], dtype=object), n)
    day = rng.choice(np.array([date(2024, 3, 14), date(2024, 3, 15)], dtype=object), n)
    measure = rng.choice(np.array(["pv", "delta"], dtype=object), n)
    table = pa.table(
        {
            "book": pa.array(book, pa.string()),
            "currency": pa.array(ccy, pa.string()),
            "business_date": pa.array(day, pa.date32()),
            "measure": pa.array(measure, pa.string()),
            "pv_sum": pa.array(np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)), from_pandas=True),
            "pv_count": pa.array(rng.integers(0, 9, n), pa.int64()),
        }
    )
    # a GROUP BY result holds each key once
    keys = table.select(["book", "currency", "business_date", "measure"]).to_pylist()
    first = sorted({tuple(k.values()): i for i, k in reversed(list(enumerate(keys)))}.values())
    return table.take(pa.array(first))


@pytest.mark.parametrize(
    ("rows", "columns"),
    [
        (["book"], ["measure"]),
        (["book", "business_date"], ["currency", "measure"]),
        ([], ["currency"]),
        (["book", "currency", "business_date", "measure"], []),
        (["currency"], ["book"]),
    ],
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_arrow_widening_equals_the_pandas_one(rows, columns, seed):
    long = _long(seed)
    if not columns:
        long = long.select([*rows, "pv_sum", "pv_count"])
    else:
        long = long.group_by([*rows, *columns]).aggregate([("pv_sum", "sum"), ("pv_count", "sum")])
        long = long.rename_columns(
            [{"pv_sum_sum": "pv_sum", "pv_count_sum": "pv_count"}.get(c, c) for c in long.column_names]
        ).select([*rows, *columns, "pv_sum", "pv_count"])
        # DuckDB hands strings over as ``string``, the group_by used here as ``large_string``
        long = long.cast(
            pa.schema([f.with_type(pa.string()) if f.type == pa.large_string() else f for f in long.schema])
        )
    labels = ["pv_sum", "pv_count"]
    want = _to_arrow(_widen(long.to_pandas(), rows, columns, labels))
    got = _widen_arrow(long, rows, columns, labels)
    assert got.column_names == want.column_names
    assert got.equals(want), (got.to_pandas(), want.to_pandas())
