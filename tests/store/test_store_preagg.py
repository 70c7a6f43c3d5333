"""Pre-aggregations: the numpy and DuckDB builds agree with the plain-Python definition, and commits keep them
current."""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from store_rows import DAY, rows

from riskstream.store import (
    DEFAULT_PREAGGREGATIONS,
    PreaggSpec,
    RiskStore,
    preaggregate,
    preaggregate_duckdb,
    preaggregate_reference,
)


def _close(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        skip = ("value", "pnl_vector", "source_version")
        assert {k: v for k, v in g.items() if k not in skip} == {k: v for k, v in w.items() if k not in skip}
        # a partition is stamped with the version it was last rebuilt from: at most the reference's
        assert g["source_version"] <= w["source_version"]
        assert g["value"] == pytest.approx(w["value"])
        assert (g["pnl_vector"] is None) == (w["pnl_vector"] is None)
        if w["pnl_vector"] is not None:
            assert g["pnl_vector"] == pytest.approx(w["pnl_vector"])


SCHEMA = pa.schema(
    [
        ("business_date", pa.date32()),
        ("namespace", pa.string()),
        ("desk", pa.string()),
        ("book", pa.string()),
        ("sector", pa.string()),
        ("measure", pa.string()),
        ("value", pa.float64()),
        ("pnl_vector", pa.list_(pa.float64())),
    ]
)
BY_SECTOR = PreaggSpec("by_sector", ("business_date", "namespace", "desk", "sector", "measure"))


def _records(n: int, seed: int, vector_share: float = 0.5, length: int = 5) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "business_date": DAY,
            "namespace": "EOD",
            "desk": rng.choice(["RATES", "FX"]),
            "book": rng.choice(["B1", "B2", "B3"]),
            "sector": rng.choice(["BANKS", None]),
            "measure": rng.choice(["pv", "delta"]),
            "value": rng.uniform(-100, 100),
            "pnl_vector": [rng.gauss(0, 1) * 10 ** rng.randint(-3, 6) for _ in range(length)]
            if rng.random() < vector_share
            else None,
        }
        for _ in range(n)
    ]


def _key(spec: PreaggSpec):
    return lambda r: tuple("" if r[d] is None else str(r[d]) for d in spec.dimensions)


def test_duckdb_build_matches_reference_with_null_dimensions_and_partial_vectors():
    records = _records(400, 7)
    got = preaggregate_duckdb(pa.Table.from_pylist(records, schema=SCHEMA), BY_SECTOR, 9).to_pylist()
    want = preaggregate_reference(records, BY_SECTOR, 9)
    _close(sorted(got, key=_key(BY_SECTOR)), sorted(want, key=_key(BY_SECTOR)))


@pytest.mark.parametrize("vector_share", [0.0, 0.5, 1.0])
def test_numpy_build_of_one_chunk_equals_reference_bit_for_bit(vector_share):
    # sums in row order (np.bincount, CSR rows in column order) are the reference's own additions
    records = _records(600, 11, vector_share)
    table = pa.Table.from_pylist(records, schema=SCHEMA)
    got = preaggregate(table, BY_SECTOR, 9)
    assert got.schema == preaggregate_duckdb(table, BY_SECTOR, 9).schema
    want = preaggregate_reference(records, BY_SECTOR, 9)
    assert sorted(got.to_pylist(), key=_key(BY_SECTOR)) == sorted(want, key=_key(BY_SECTOR))


def test_numpy_build_over_chunks_sliced_vectors_and_missing_columns_matches_reference():
    records = _records(900, 13, 0.7, length=8)
    table = pa.Table.from_pylist(records, schema=SCHEMA)
    # many chunks, one of them a slice (non-zero offsets into the values), and no ``sector`` column
    chunked = pa.concat_tables([table.slice(0, 250), table.slice(250, 1), table.slice(251, 649)])
    spec = PreaggSpec("by_book", ("business_date", "namespace", "desk", "book", "region", "measure"))
    got = preaggregate(chunked.drop_columns(["sector"]), spec, 3).to_pylist()
    want = preaggregate_reference(records, spec, 3)
    assert [r["region"] for r in got] == [None] * len(want)
    assert len(got) == len(want) == 12  # 2 desks × 3 books × 2 measures (_records' choices)
    for g, w in zip(sorted(got, key=_key(spec)), sorted(want, key=_key(spec)), strict=True):
        assert {k: g[k] for k in spec.dimensions} == {k: w[k] for k in spec.dimensions}
        assert g["row_count"] == w["row_count"] and g["value"] == w["value"]
        assert (g["pnl_vector"] is None) == (w["pnl_vector"] is None)
        if w["pnl_vector"] is not None:  # per-chunk partial sums: a different order of additions
            np.testing.assert_allclose(g["pnl_vector"], w["pnl_vector"], rtol=1e-12, atol=1e-9)


def test_vectors_of_several_lengths_fall_back_to_duckdb():
    records = _records(100, 5, 1.0, length=4) + _records(50, 6, 1.0, length=4)
    records[3]["pnl_vector"] = [1.0, 2.0]
    spec = PreaggSpec("by_desk", ("business_date", "namespace", "desk", "measure"))
    got = preaggregate(pa.Table.from_pylist(records, schema=SCHEMA), spec, 1).to_pylist()
    # DuckDB sums element i over the vectors that have one: the short vector adds to the first two only
    want = preaggregate_duckdb(pa.Table.from_pylist(records, schema=SCHEMA), spec, 1).to_pylist()
    assert got == want


def test_default_grains_hold_the_trader_level():
    assert DEFAULT_PREAGGREGATIONS[0].dimensions == (
        "business_date",
        "namespace",
        "desk",
        "book",
        "trader",
        "measure",
    )


def test_commits_keep_preaggregations_current_and_equal_to_a_rebuild(tmp_path):
    store = RiskStore.open(tmp_path / "s")
    for value, desks in ((1.0, ("RATES", "FX", "EQ")), (2.0, ("RATES",))):
        job = store.open_job("EOD", DAY, scope={"desk": list(desks)})
        store.put_chunk(job, rows(desks=desks, value=value, vector_length=4))
        store.commit(job)
    other = store.open_job("EOD", DAY.replace(day=19))
    store.put_chunk(other, rows(business_date=DAY.replace(day=19), vector_length=4))
    store.commit(other)
    con = duckdb.connect()
    raw = con.sql(f"SELECT * FROM {store.register(con)}").to_arrow_table().to_pylist()
    for spec in store.preaggregations():
        assert store.preagg_source_version(spec.name) == store.results_version()
        view = store.register(con, spec.name)
        got = con.sql(f"SELECT * FROM {view} ORDER BY ALL").to_arrow_table().to_pylist()
        want = preaggregate_reference(raw, spec, store.results_version())
        key = lambda r, s=spec: tuple(str(r[d]) for d in s.dimensions)  # noqa: E731
        _close(sorted(got, key=key), sorted(want, key=key))
    stamps = con.execute(
        "SELECT DISTINCT business_date, source_version FROM desk_measure ORDER BY 1"
    ).fetchall()
    assert stamps == [(DAY.replace(day=19), store.results_version()), (DAY, store.results_version() - 1)]
    # RATES pv on the 20th after the re-run: 2 books × 3 trades, value 2 + t/1000 → 12.006 (store_rows)
    rates = con.execute(
        "SELECT value, row_count, pnl_vector FROM desk_measure "
        "WHERE desk = 'RATES' AND measure = 'pv' AND business_date = DATE '2026-11-20'"
    ).fetchall()
    # vectors: value·(t+1)·(i+1) summed over t = 0..2 and 2 books: 2·2·6·(i+1) = 24·(i+1)
    assert rates == [(pytest.approx(12.006), 6, [24.0, 48.0, 72.0, 96.0])]
