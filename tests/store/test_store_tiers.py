"""Hot and cold tiers, time travel, retention and vacuum."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import duckdb
import pytest
from store_rows import count, rows

from riskstream.store import RiskStore, StoreConfig

# business days Mon 2026-11-09 .. Fri 2026-11-20
DAYS = [date(2026, 11, d) for d in (9, 10, 11, 12, 13, 16, 17, 18, 19, 20)]


def _commit(store, day, value=1.0):
    job = store.open_job("EOD", day)
    store.put_chunk(job, rows(business_date=day, value=value))
    return store.commit(job)


def test_tier_moves_old_dates_and_views_never_double_count(tmp_path):
    store = RiskStore.open(tmp_path / "s", config=StoreConfig(hot_days=3))
    for d in DAYS:
        _commit(store, d)
    assert count(store) == 180  # 10 dates × 18 rows (store_rows)
    result = store.tier(today=date(2026, 11, 20))
    # 3 business days before Fri 20th is Tue 17th: the 9th..16th (6 dates) go cold
    assert result.cutoff == date(2026, 11, 17) and result.moved == tuple(DAYS[:6]) and result.rows == 108
    assert count(store) == 180
    hot = {p["business_date"] for p in store._table("risk_results").partitions()}
    assert hot == {d.isoformat() for d in DAYS[6:]}
    assert store.tier(today=date(2026, 11, 20)).moved == ()  # idempotent
    # a re-run for a cold date moves the whole date back to hot (and drops its cold copy)
    _commit(store, DAYS[0], value=5.0)
    assert count(store) == 180
    con = duckdb.connect()
    view = store.register(con)
    assert con.execute(
        f"SELECT min(value) FROM {view} WHERE business_date = DATE '2026-11-09'"
    ).fetchall() == [(5.0,)]
    store.tier(today=date(2026, 11, 20))
    assert count(store) == 180
    assert con.execute(
        f"SELECT min(value) FROM {store.register(con)} WHERE business_date = DATE '2026-11-09'"
    ).fetchall() == [(5.0,)]
    assert store.preagg_source_version("desk_measure") == store.results_version()
    n = con.execute(f"SELECT sum(row_count) FROM {store.register(con, 'desk_measure')}").fetchall()[0][0]
    assert n == 180


def test_time_travel_by_version_and_timestamp(tmp_path):
    store = RiskStore.open(tmp_path / "s")
    first = _commit(store, DAYS[-1], value=1.0)
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    _commit(store, DAYS[-1], value=7.0)
    con = duckdb.connect()
    for kwargs in ({"version": first.version}, {"timestamp": between}):
        view = store.register(con, view="as_of", **kwargs)
        assert con.execute(f"SELECT max(value) FROM {view}").fetchall() == [(pytest.approx(1.002),)]
    assert con.execute(f"SELECT max(value) FROM {store.register(con)}").fetchall() == [
        (pytest.approx(7.002),)
    ]


def test_retention_deletes_old_partitions_and_vacuum_removes_files(tmp_path):
    store = RiskStore.open(tmp_path / "s", config=StoreConfig(retention_years=1, hot_days=100))
    old, kept = date(2025, 6, 2), date(2026, 11, 20)
    _commit(store, old)
    _commit(store, kept)
    _commit(store, kept, value=2.0)  # leaves the first run's file unreferenced
    dry = store.vacuum(today=date(2026, 11, 20), dry_run=True, retention_hours=0)
    assert dry.expired == (old,) and dry.cutoff == date(2025, 11, 20) and dry.files
    assert count(store) == 36
    done = store.vacuum(today=date(2026, 11, 20), retention_hours=0)
    assert done.expired == (old,) and len(done.files) >= len(dry.files)
    assert count(store) == 18
    con = duckdb.connect()
    got = con.execute(f"SELECT DISTINCT business_date FROM {store.register(con, 'desk_measure')}").fetchall()
    assert got == [(kept,)]
    assert any(h["operation"] == "DELETE" for h in store.history())
