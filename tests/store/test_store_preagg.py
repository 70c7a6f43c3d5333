"""Pre-aggregations: the DuckDB build agrees with the plain-Python definition, and commits keep them current."""

from __future__ import annotations

import random

import duckdb
import pyarrow as pa
import pytest
from store_rows import DAY, rows

from riskstream.store import PreaggSpec, RiskStore, preaggregate, preaggregate_reference


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


def test_duckdb_build_matches_reference_with_null_dimensions_and_partial_vectors():
    rng = random.Random(7)
    records = []
    for _ in range(400):
        records.append(
            {
                "business_date": DAY,
                "namespace": "EOD",
                "desk": rng.choice(["RATES", "FX"]),
                "book": rng.choice(["B1", "B2", "B3"]),
                "sector": rng.choice(["BANKS", None]),
                "measure": rng.choice(["pv", "delta"]),
                "value": rng.uniform(-100, 100),
                "pnl_vector": [rng.gauss(0, 1) for _ in range(5)] if rng.random() < 0.5 else None,
            }
        )
    table = pa.Table.from_pylist(
        records,
        schema=pa.schema(
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
        ),
    )
    spec = PreaggSpec("by_sector", ("business_date", "namespace", "desk", "sector", "measure"))
    got = preaggregate(table, spec, 9).to_pylist()
    want = preaggregate_reference(records, spec, 9)
    key = lambda r: tuple("" if r[d] is None else str(r[d]) for d in spec.dimensions)  # noqa: E731
    _close(sorted(got, key=key), sorted(want, key=key))


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
