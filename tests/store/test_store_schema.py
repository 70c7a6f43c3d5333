"""Schema evolution: new optional columns extend risk_results (older rows read null); type changes are refused."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from store_rows import DAY, rows

from riskstream.errors import ChunkRejectedError, SchemaEvolutionError
from riskstream.store import RiskStore


@pytest.fixture
def store(tmp_path):
    return RiskStore.open(tmp_path / "s")


def _commit(store, table, desk):
    job = store.open_job("EOD", DAY, scope={"desk": [desk]})
    store.put_chunk(job, table)
    return store.commit(job)


def test_three_hundred_sparse_columns_across_jobs(store):
    desks = ("RATES", "FX", "EQ")
    for j, desk in enumerate(desks):
        table = rows(desks=(desk,), measures=("pv",))
        for c in range(100):  # job j brings columns x{100j}..x{100j+99}: ints, floats and strings in turn
            name = f"x{100 * j + c:03d}"
            kind = c % 3
            values = [
                c + i if kind == 0 else (c + i) / 2 if kind == 1 else f"s{c}" for i in range(table.num_rows)
            ]
            table = table.append_column(name, pa.array(values))
        _commit(store, table, desk)
    con = duckdb.connect()
    view = store.register(con)
    columns = [r[0] for r in con.execute(f"DESCRIBE {view}").fetchall()]
    assert sum(c.startswith("x") for c in columns) == 300
    # FX rows (1 book × 3 trades) hold x100..x199 and null in the others
    got = con.execute(
        f"SELECT x000, x100, x101, x102, x200 FROM {view} WHERE desk = 'FX' ORDER BY trade_id"
    ).fetchall()
    assert got == [(None, 0 + i, (1 + i) / 2, "s2", None) for i in range(3)]
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {view})").fetchall())
    assert (types["x000"], types["x001"], types["x002"]) == ("BIGINT", "DOUBLE", "VARCHAR")


def test_an_existing_column_changing_type_is_refused_naming_both_types(store):
    table = rows(desks=("RATES",)).append_column("strategy_id", pa.array(list(range(12)), pa.int64()))
    _commit(store, table, "RATES")
    job = store.open_job("EOD", DAY, scope={"desk": ["FX"]})
    bad = rows(desks=("FX",)).append_column("strategy_id", pa.array([f"S{i}" for i in range(6)]))
    with pytest.raises(SchemaEvolutionError) as err:
        store.put_chunk(job, bad)
    assert err.value.column == "strategy_id"
    assert "int64" in str(err.value) and "string" in str(err.value)
    narrower = rows(desks=("FX",)).append_column("strategy_id", pa.array(list(range(6)), pa.int32()))
    store.put_chunk(job, narrower)  # int32 widens to the stored int64
    assert store.commit(job).rows == 6


def test_chunks_of_one_job_disagreeing_on_a_column_type(store):
    job = store.open_job("EOD", DAY)
    store.put_chunk(job, rows(desks=("RATES",)).append_column("tag", pa.array([1] * 12)), chunk_id="a")
    store.put_chunk(job, rows(desks=("FX",)).append_column("tag", pa.array(["one"] * 6)), chunk_id="b")
    with pytest.raises(SchemaEvolutionError, match="'tag'"):
        store.commit(job)
    assert store.status(job).state == "OPEN"


def test_unknown_book_is_refused_when_the_catalog_has_books(store):
    assert store.catalog is not None
    store.catalog.upsert_books([("R1", "RATES"), ("R2", "RATES")])
    job = store.open_job("EOD", DAY)
    with pytest.raises(ChunkRejectedError) as err:
        store.put_chunk(job, rows(desks=("RATES", "FX")))
    assert (err.value.field, err.value.value) == ("book", "F1")
    store.put_chunk(job, rows(desks=("RATES",)))
