"""Jobs on the risk store: chunks in every format, validation, commit replaces on re-run, abort, status."""

from __future__ import annotations

import math

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from store_rows import DAY, count, rows

from riskstream.errors import ChunkRejectedError, JobStateError, SchemaEvolutionError
from riskstream.store import JobState, RiskStore


@pytest.fixture
def store(tmp_path):
    return RiskStore.open(tmp_path / "store")


def _commit(store, table, scope=None, chunks=1):
    job = store.open_job("EOD", DAY, scope=scope)
    n = table.num_rows
    size = -(-n // chunks)
    for i in range(chunks):
        store.put_chunk(job, table.slice(i * size, size), chunk_id=f"c{i}")
    return job, store.commit(job)


def test_commit_and_rerun_replace_never_duplicate(store):
    first = rows(value=1.0)  # 3 books × 3 trades × 2 measures = 18 rows (store_rows.BOOKS)
    job1, r1 = _commit(store, first, chunks=3)
    assert (r1.version, r1.rows, r1.replaced) == (1, 18, 0)  # version 0 creates the empty table
    job2, r2 = _commit(store, rows(value=2.0), chunks=2)
    assert (r2.version, r2.rows, r2.replaced) == (2, 18, 18)
    assert count(store) == 18
    con = duckdb.connect()
    view = store.register(con)
    # 9 trades × 2 measures; values 2 + t/1000 for t in 0..2, each 6 times: 6·(2+2.001+2.002) = 36.018
    assert con.execute(f"SELECT sum(value) FROM {view}").fetchall()[0][0] == pytest.approx(36.018)
    assert con.execute(f"SELECT DISTINCT job_id FROM {view}").fetchall() == [(job2,)]
    old = store.register(con, view="old", version=1)
    assert con.execute(f"SELECT sum(value), count(*) FROM {old}").fetchall()[0] == (pytest.approx(18.018), 18)
    hist = store.history()
    assert [(h["version"], h["job_id"]) for h in hist] == [
        (2, job2),
        (1, job1),
        (0, None),
    ]  # one commit a job


def test_scoped_rerun_replaces_only_its_scope(store):
    _commit(store, rows(value=1.0))
    _, r = _commit(store, rows(desks=("RATES",), value=5.0, trades_per_book=1), scope={"desk": ["RATES"]})
    assert r.replaced == 12  # RATES: 2 books × 3 trades × 2 measures
    assert count(store, desk="RATES") == 4  # 2 books × 1 trade × 2 measures
    assert count(store, desk="FX") == 6


def test_chunk_formats_pandas_parquet_csv(store, tmp_path):
    table = rows()
    job = store.open_job("EOD", DAY, expected_chunks=3)
    store.put_chunk(job, table.slice(0, 6).to_pandas())
    pq.write_table(table.slice(6, 6), tmp_path / "b.parquet")
    store.put_chunk(job, tmp_path / "b.parquet")
    table.slice(12).to_pandas().to_csv(tmp_path / "c.csv", index=False)
    receipt = store.put_chunk(job, str(tmp_path / "c.csv"))
    assert receipt.rows == 6
    st = store.status(job)
    assert (st.state, st.chunks_received, st.chunks_expected, st.rows) == (JobState.OPEN, 3, 3, 18)
    r = store.commit(job)
    assert r.rows == 18 and count(store) == 18
    st = store.status(job)
    assert (st.state, st.version, st.rows) == (JobState.COMMITTED, 1, 18)


def _bad(table: pa.Table, column: str, value) -> pa.Table:
    i = table.column_names.index(column)
    col = table.column(column).to_pylist()
    col[1] = value
    return table.set_column(i, column, pa.array(col, table.schema.field(column).type))


@pytest.mark.parametrize(
    ("mutate", "field", "value"),
    [
        (lambda t: t.drop_columns(["trader"]), "trader", None),
        (lambda t: _bad(t, "value", math.inf), "value", math.inf),
        (lambda t: _bad(t, "namespace", "INTRADAY"), "namespace", "INTRADAY"),
        (lambda t: _bad(t, "desk", "EQ"), "desk", "EQ"),
        (lambda t: _bad(t, "trade_id", None), "trade_id", None),
        (lambda t: _bad(t, "trade_id", "T-R1-0"), "trade_id", "T-R1-0"),  # duplicate of row 0's key
    ],
    ids=["missing-field", "infinite-value", "other-namespace", "outside-scope", "null-key", "duplicate-key"],
)
def test_bad_chunk_is_rejected_naming_field_and_value_and_job_stays_open(store, mutate, field, value):
    table = rows(desks=("RATES",), measures=("pv",))
    job = store.open_job("EOD", DAY, scope={"desk": ["RATES"]})
    with pytest.raises(ChunkRejectedError) as err:
        store.put_chunk(job, mutate(table), chunk_id="bad")
    assert err.value.field == field
    assert err.value.value == value
    assert store.status(job).state == JobState.OPEN and store.status(job).chunks_received == 0
    store.put_chunk(job, table, chunk_id="bad")
    assert store.commit(job).rows == 6


def test_other_business_date_is_rejected(store):
    job = store.open_job("EOD", DAY)
    other = rows(business_date=DAY.replace(day=19))
    with pytest.raises(ChunkRejectedError, match="business_date") as err:
        store.put_chunk(job, other)
    assert err.value.value == DAY.replace(day=19)


def test_value_as_string_is_a_schema_evolution_error(store):
    job = store.open_job("EOD", DAY)
    table = rows()
    table = table.set_column(table.column_names.index("value"), "value", pc.cast(table["value"], pa.string()))
    with pytest.raises(SchemaEvolutionError, match=r"'value' is double.*string"):
        store.put_chunk(job, table)


def test_reput_of_a_chunk_replaces_it(store):
    job = store.open_job("EOD", DAY)
    store.put_chunk(job, rows(value=1.0), chunk_id="only")
    store.put_chunk(job, rows(value=3.0), chunk_id="only")
    assert store.status(job).chunks_received == 1
    store.commit(job)
    con = duckdb.connect()
    # 18 rows, values 3 + t/1000: 6·(3+3.001+3.002) = 54.018
    assert con.execute(f"SELECT sum(value) FROM {store.register(con)}").fetchall()[0][0] == pytest.approx(
        54.018
    )


def test_abort_and_state_errors(store):
    job = store.open_job("EOD", DAY, expected_chunks=2)
    store.put_chunk(job, rows())
    with pytest.raises(JobStateError, match="1 of 2 chunks"):
        store.commit(job)
    assert store.status(job).state == JobState.OPEN
    store.abort(job)
    assert store.status(job).state == JobState.ABORTED and store.status(job).chunks_received == 0
    with pytest.raises(JobStateError, match="ABORTED"):
        store.commit(job)
    with pytest.raises(JobStateError, match="ABORTED"):
        store.put_chunk(job, rows())
    done, _ = _commit(store, rows())
    with pytest.raises(JobStateError, match="COMMITTED"):
        store.put_chunk(done, rows())


def test_keys_repeated_across_chunks_are_refused_at_commit(store):
    job = store.open_job("EOD", DAY)
    store.put_chunk(job, rows(), chunk_id="a")
    store.put_chunk(job, rows(desks=("RATES",)), chunk_id="b")
    with pytest.raises(ChunkRejectedError, match="several chunks"):
        store.commit(job)
    assert store.status(job).state == JobState.OPEN
    assert store.results_version() <= 0  # nothing committed (at most the empty table created)


def test_readers_never_see_a_partial_job(store):
    """Every version of the table holds whole jobs: 18 rows per committed run of `rows()`, never a part."""
    for v in range(4):
        _commit(store, rows(value=float(v)), chunks=3)
    con = duckdb.connect()
    for version in range(1, 5):
        view = store.register(con, view=f"v{version}", version=version)
        n, jobs, total = con.execute(
            f"SELECT count(*), count(DISTINCT job_id), sum(value) FROM {view}"
        ).fetchall()[0]
        assert (n, jobs) == (18, 1)
        assert total == pytest.approx(18 * (version - 1) + 0.018)  # run v-1: 18 rows of v-1 + 6·(0.001+0.002)
