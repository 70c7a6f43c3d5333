"""Scoped re-runs of cold dates, scenario-vector length across jobs, and the job record after commit."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from alembic import command
from store_rows import rows

from riskstream.errors import ChunkRejectedError
from riskstream.store import JobState, RiskStore, StoreConfig
from riskstream.store._catalog import Catalog
from riskstream.store._catalog_migrate import alembic_config, create_engine, head_revision

# business days Mon 2026-11-09 .. Fri 2026-11-20; with hot_days=3 and today the 20th, the 9th..16th are cold
DAYS = [date(2026, 11, d) for d in (9, 10, 11, 12, 13, 16, 17, 18, 19, 20)]
COLD_DAY = DAYS[0]
TODAY = DAYS[-1]


def _commit(store: RiskStore, day: date, *, namespace: str = "EOD", scope=None, **kw) -> int:  # type: ignore[no-untyped-def]
    job = store.open_job(namespace, day, scope=scope)
    store.put_chunk(job, rows(business_date=day, namespace=namespace, **kw))
    return store.commit(job).version


def _by_desk(store: RiskStore, **register) -> dict[tuple[str, str], tuple[int, float]]:  # type: ignore[no-untyped-def]
    """(namespace, desk) -> (rows, sum of value) of the cold date, read through the registered view."""
    con = duckdb.connect()
    view = store.register(con, **register)
    got = con.execute(
        f"SELECT namespace, desk, count(*), sum(value) FROM {view} "
        f"WHERE business_date = DATE '{COLD_DAY}' GROUP BY ALL"
    ).fetchall()
    return {(ns, desk): (int(n), round(float(s), 6)) for ns, desk, n, s in got}


def _tier_dates(store: RiskStore, cold: bool) -> set[str]:
    dt = store._table("risk_results", cold=cold)
    return set() if dt is None else {p["business_date"] for p in dt.partitions()}


@pytest.fixture
def cold_store(tmp_path: Path) -> RiskStore:
    """A store whose 9th (EOD: RATES and FX; INTRADAY: RATES) sits in the cold tier only."""
    store = RiskStore.open(tmp_path / "s", config=StoreConfig(hot_days=3))
    _commit(store, COLD_DAY, desks=("RATES", "FX"), value=1.0)
    _commit(store, COLD_DAY, namespace="INTRADAY", desks=("RATES",), value=3.0)
    _commit(store, DAYS[-1])
    assert store.tier(today=TODAY).moved == (COLD_DAY,)
    assert COLD_DAY.isoformat() in _tier_dates(store, cold=True)
    assert COLD_DAY.isoformat() not in _tier_dates(store, cold=False)
    return store


# store_rows: RATES has books R1, R2 and FX has F1; 3 trades per book, measures pv and delta; value + t/1000.
# RATES at value v: 12 rows, sum 12v + 4·(0.001+0.002) = 12v + 0.012; FX: 6 rows, sum 6v + 0.006.
BEFORE = {("EOD", "RATES"): (12, 12.012), ("EOD", "FX"): (6, 6.006), ("INTRADAY", "RATES"): (12, 36.012)}
AFTER = {**BEFORE, ("EOD", "RATES"): (12, 60.012)}  # RATES re-run at value 5: 12·5 + 0.012


def test_scoped_rerun_of_a_cold_date_keeps_the_other_desks_and_namespaces(cold_store: RiskStore) -> None:
    store = cold_store
    assert _by_desk(store) == BEFORE
    before = store.results_version()
    job = store.open_job("EOD", COLD_DAY, scope={"desk": ["RATES"]})
    store.put_chunk(job, rows(business_date=COLD_DAY, desks=("RATES",), value=5.0))
    result = store.commit(job)
    assert result.rows == 12 and result.replaced == 12  # the 12 cold RATES rows of EOD
    assert _by_desk(store) == AFTER
    # the whole date moved to hot in that one commit, and the cold copy is gone
    assert COLD_DAY.isoformat() in _tier_dates(store, cold=False)
    assert COLD_DAY.isoformat() not in _tier_dates(store, cold=True)
    # time travel to the version before the re-run still sees the cold rows, whole
    assert _by_desk(store, version=before) == BEFORE
    # the pre-aggregations agree with the rows: 30 rows for the date (BEFORE), sum of AFTER's values
    con = duckdb.connect()
    got = con.execute(
        f"SELECT sum(row_count), round(sum(value), 6) FROM {store.register(con, 'desk_measure')} "
        f"WHERE business_date = DATE '{COLD_DAY}'"
    ).fetchall()
    assert got == [(30, round(60.012 + 6.006 + 36.012, 6))]
    assert store.preagg_source_version("desk_measure") == store.results_version()
    # and the date goes back to cold with the next tiering, whole
    assert store.tier(today=TODAY).moved == (COLD_DAY,)
    assert _by_desk(store) == AFTER


def test_crash_between_hot_commit_and_cold_drop_never_double_counts_and_retry_finishes(
    cold_store: RiskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = cold_store
    job = store.open_job("EOD", COLD_DAY, scope={"desk": ["FX"]})
    store.put_chunk(job, rows(business_date=COLD_DAY, desks=("FX",), value=7.0), chunk_id="a")
    seen: list[dict] = []
    drop = RiskStore._drop_cold_copy

    def crash(self: RiskStore, day: date) -> None:
        # the state a process killed right after the hot commit leaves behind: the date in both tiers
        assert COLD_DAY.isoformat() in _tier_dates(self, cold=False)
        assert COLD_DAY.isoformat() in _tier_dates(self, cold=True)
        seen.append(_by_desk(self))
        raise OSError("killed between the hot commit and the cold drop")

    monkeypatch.setattr(RiskStore, "_drop_cold_copy", crash)
    with pytest.raises(OSError, match="killed"):
        store.commit(job)
    fx_new = {**BEFORE, ("EOD", "FX"): (6, 42.006)}  # FX re-run at value 7: 6·7 + 0.006
    assert seen == [fx_new]
    assert _by_desk(store) == fx_new
    version = store.results_version()
    monkeypatch.setattr(RiskStore, "_drop_cold_copy", drop)
    retried = store.commit(job)
    assert retried.already_committed and retried.version == version == store.results_version()
    assert _by_desk(store) == fx_new
    assert COLD_DAY.isoformat() not in _tier_dates(store, cold=True)
    assert [h["job_id"] for h in store.history()].count(job) == 1
    assert store.status(job).state == JobState.COMMITTED
    assert store.commit(job).version == version  # a repeat is harmless too


def test_unscoped_rerun_of_a_cold_date_keeps_the_other_namespaces(cold_store: RiskStore) -> None:
    _commit(cold_store, COLD_DAY, desks=("FX",), value=2.0)  # replaces EOD whole: RATES rows go
    assert _by_desk(cold_store) == {("EOD", "FX"): (6, 12.006), ("INTRADAY", "RATES"): (12, 36.012)}
    assert COLD_DAY.isoformat() not in _tier_dates(cold_store, cold=True)


def test_concurrent_scoped_reruns_of_one_cold_date_keep_both(cold_store: RiskStore) -> None:
    store = cold_store
    jobs = {}
    for desk, value in (("RATES", 5.0), ("FX", 7.0)):
        jobs[desk] = store.open_job("EOD", COLD_DAY, scope={"desk": [desk]})
        store.put_chunk(jobs[desk], rows(business_date=COLD_DAY, desks=(desk,), value=value))
    with ThreadPoolExecutor(2) as pool:
        versions = sorted(r.version for r in pool.map(store.commit, jobs.values()))
    assert versions[0] != versions[1]
    # RATES at 5 (AFTER) and FX at 7: 6·7 + 0.006 (store_rows); INTRADAY untouched
    assert _by_desk(store) == {**AFTER, ("EOD", "FX"): (6, 42.006)}
    assert COLD_DAY.isoformat() not in _tier_dates(store, cold=True)


# --- pnl_vector length within one business date and namespace ---------------------------------------


def test_vector_length_checked_against_other_scopes_at_put(tmp_path: Path) -> None:
    store = RiskStore.open(tmp_path / "s")
    _commit(store, COLD_DAY, scope={"desk": ["FX"]}, desks=("FX",), vector_length=4)
    job = store.open_job("EOD", COLD_DAY, scope={"desk": ["RATES"]})
    with pytest.raises(ChunkRejectedError, match=r"length 3.*length 4") as err:
        store.put_chunk(job, rows(business_date=COLD_DAY, desks=("RATES",), vector_length=3))
    assert err.value.field == "pnl_vector" and err.value.value == 3
    assert store.status(job).state == JobState.OPEN
    store.put_chunk(job, rows(business_date=COLD_DAY, desks=("RATES",), vector_length=4))
    assert store.commit(job).rows == 12
    # a job owning the whole date and namespace replaces every vector: any length is fine
    _commit(store, COLD_DAY, desks=("RATES", "FX"), vector_length=6)
    # another namespace has its own scenario count
    _commit(store, COLD_DAY, namespace="INTRADAY", scope={"desk": ["FX"]}, desks=("FX",), vector_length=2)
    # rows without vectors are fine next to rows with them
    _commit(store, COLD_DAY, namespace="INTRADAY", scope={"desk": ["RATES"]}, desks=("RATES",))


def test_vector_length_checked_at_commit_when_another_scope_committed_after_the_put(tmp_path: Path) -> None:
    store = RiskStore.open(tmp_path / "s")
    job = store.open_job("EOD", COLD_DAY, scope={"desk": ["RATES"]})
    store.put_chunk(job, rows(business_date=COLD_DAY, desks=("RATES",), vector_length=3), chunk_id="a")
    _commit(store, COLD_DAY, scope={"desk": ["FX"]}, desks=("FX",), vector_length=5)
    version = store.results_version()
    with pytest.raises(ChunkRejectedError, match=r"length 3.*length 5") as err:
        store.commit(job)
    assert err.value.field == "pnl_vector"
    status = store.status(job)
    assert status.state == JobState.OPEN and "pnl_vector" in (status.error or "")
    assert store.results_version() == version
    store.put_chunk(job, rows(business_date=COLD_DAY, desks=("RATES",), vector_length=5), chunk_id="a")
    assert store.commit(job).rows == 12


def test_vector_length_read_at_the_first_put_is_read_again_before_a_refusal(tmp_path: Path) -> None:
    store = RiskStore.open(tmp_path / "s")
    _commit(store, COLD_DAY, scope={"desk": ["FX"]}, desks=("FX",), vector_length=4)
    job = store.open_job("EOD", COLD_DAY, scope={"desk": ["RATES"]})
    four = rows(business_date=COLD_DAY, desks=("RATES",), vector_length=4)
    store.put_chunk(job, four.slice(6), chunk_id="a")
    _commit(store, COLD_DAY, scope={"desk": ["FX"]}, desks=("FX",), vector_length=6)  # FX now has 6
    # the length read at the first put (4) is stale: a chunk of 6 is accepted, the staged 4s fail the commit
    six = rows(business_date=COLD_DAY, desks=("RATES",), vector_length=6)
    store.put_chunk(job, six.slice(0, 6), chunk_id="b")
    with pytest.raises(ChunkRejectedError, match="pnl_vector"):
        store.commit(job)
    store.put_chunk(job, six.slice(6), chunk_id="a")
    assert store.commit(job).rows == 12


def test_vector_length_of_a_cold_date_is_read_from_the_cold_tier(tmp_path: Path) -> None:
    store = RiskStore.open(tmp_path / "s", config=StoreConfig(hot_days=3))
    _commit(store, COLD_DAY, desks=("RATES", "FX"), vector_length=4)
    store.tier(today=TODAY)
    job = store.open_job("EOD", COLD_DAY, scope={"desk": ["RATES"]})
    with pytest.raises(ChunkRejectedError, match=r"length 2.*length 4"):
        store.put_chunk(job, rows(business_date=COLD_DAY, desks=("RATES",), vector_length=2))


# --- the job record after commit ---------------------------------------------------------------------


def test_status_after_commit_reports_chunks_and_rows(tmp_path: Path) -> None:
    store = RiskStore.open(tmp_path / "s")
    job = store.open_job("EOD", COLD_DAY, expected_chunks=3)
    table = rows(business_date=COLD_DAY, desks=("RATES", "FX", "EQ"))  # 5 books × 3 trades × 2 measures
    for i, piece in enumerate((table.slice(0, 10), table.slice(10, 10), table.slice(20))):
        store.put_chunk(job, piece, chunk_id=f"c{i}")
    assert (store.status(job).chunks_received, store.status(job).rows) == (3, 30)
    store.commit(job)
    status = store.status(job)
    assert (status.state, status.chunks_received, status.chunks_expected, status.rows) == (
        JobState.COMMITTED,
        3,
        3,
        30,
    )
    assert not (store.staging / job).exists()
    assert store.catalog is not None and store.catalog.job(job).chunks == 3  # type: ignore[union-attr]


PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def _pg_catalog_url() -> Iterator[str]:
    """The URL of a new PostgreSQL schema (dropped on exit); fails, never skips, without the server."""
    admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    schema = f"gaps_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def v0001_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A catalog migrated to revision 0001 only, holding one committed job."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'catalog.db'}"
        else:
            url = stack.enter_context(_pg_catalog_url())
        engine = create_engine(url)
        with engine.connect() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
            connection.execute(
                sa.text(
                    "INSERT INTO jobs (job_id, namespace, business_date, state, created_at, updated_at, rows) "
                    "VALUES ('old', 'EOD', '2026-11-20', 'COMMITTED', :t, :t, 18)"
                ),
                {"t": "2026-11-20 18:00:00"},
            )
            connection.commit()
        engine.dispose()
        yield url


def test_migration_adds_the_chunk_count_to_an_existing_catalog(v0001_url: str) -> None:
    with Catalog(v0001_url) as catalog:
        assert catalog.revision == head_revision() != "0001"
        old = catalog.job("old")
        assert old is not None and (old.rows, old.chunks) == (18, None)
        catalog.update_job("old", chunks=4)
        assert catalog.job("old").chunks == 4  # type: ignore[union-attr]


# --- tiering against concurrent commits -------------------------------------------------------------


def test_a_commit_racing_tier_is_never_deleted_with_the_hot_copy(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`tier` copies a date to cold and then deletes it from hot; a commit to that date landing in between
    would be deleted without reaching cold. Widen the window (sleep before the delete) and commit into it."""
    import threading
    import time

    store = RiskStore.open(tmp_path / "s", config=StoreConfig(hot_days=3))
    _commit(store, COLD_DAY, desks=("RATES",), value=1.0)
    copied = threading.Event()
    real_delete = store._delete

    def slow_delete(*args, **kwargs):  # type: ignore[no-untyped-def]
        copied.set()
        time.sleep(0.5)
        return real_delete(*args, **kwargs)

    monkeypatch.setattr(store, "_delete", slow_delete)
    job = store.open_job("EOD", COLD_DAY, scope={"desk": ["FX"]})
    store.put_chunk(job, rows(business_date=COLD_DAY, desks=("FX",), value=2.0))
    with ThreadPoolExecutor(1) as pool:
        tiering = pool.submit(store.tier, today=TODAY)
        assert copied.wait(30)
        store.commit(job)  # lands during tier's copy → delete window unless commits wait for it
        assert tiering.result().moved == (COLD_DAY,)
    # RATES from the first job, FX from the racing one (store_rows: 12·1 + 0.012 and 6·2 + 0.006)
    assert _by_desk(store) == {("EOD", "RATES"): (12, 12.012), ("EOD", "FX"): (6, 12.006)}
