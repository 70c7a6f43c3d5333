"""The SQL catalog on SQLite (a temporary file) and on the machine's PostgreSQL (a schema private to this session).

Every test taking ``catalog`` or ``catalog_url`` runs on both databases; the PostgreSQL runs are marked
``integration`` and fail (never skip) when the server is not there.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from riskstream.errors import (
    AccessDeniedError,
    ConfigurationError,
    InvalidFieldError,
    JobStateError,
    MissingFieldError,
    StoreError,
)
from riskstream.refdata import BOOKS
from riskstream.store._catalog import (
    DEMO_USERS,
    Catalog,
    JobRecord,
    JobState,
    Webhook,
    seed_demo,
)
from riskstream.store._catalog_bulk import reference_upsert
from riskstream.store._catalog_migrate import alembic_config, head_revision
from riskstream.store._catalog_models import Base, Trade

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SAMPLE_BOOKS = {book: desk for desk, books in BOOKS.items() for book in books}


def _pg_admin() -> sa.Engine:
    engine = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_SERVER} ({exc.orig}); start it "
            "(`pg_ctlcluster <version> main start`, as .ci/run does) and create database `test`",
            pytrace=False,
        )
    return engine


def _schema_url(schema: str) -> str:
    return f"{PG_SERVER}?options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def _new_pg_schema(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL schema, dropped with what it holds on exit."""
    admin = _pg_admin()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema of this test session (each xdist worker has its own)."""
    with _new_pg_schema("catalog_test") as schema:
        yield schema


@pytest.fixture
def fresh_pg_schema() -> Iterator[str]:
    """An empty PostgreSQL schema for one test (migrations from nothing)."""
    with _new_pg_schema("catalog_fresh") as schema:
        yield schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty catalog URL: a new SQLite file, or a new schema on the machine's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        yield _schema_url(request.getfixturevalue("fresh_pg_schema"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    """A migrated, empty catalog. PostgreSQL reuses the session's schema, emptied before each test."""
    if request.param == "sqlite":
        opened = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    else:
        opened = Catalog(_schema_url(request.getfixturevalue("pg_schema")))
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with opened.engine.begin() as connection:
            connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield opened
    opened.close()


def _job(job_id: str = "J1", **kwargs: object) -> JobRecord:
    return JobRecord(job_id, "EOD", date(2024, 3, 28), **kwargs)  # type: ignore[arg-type]


# --- schema and migrations --------------------------------------------------------------------------


def test_migrated_schema_matches_the_models(catalog: Catalog) -> None:
    with catalog.engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        revision = MigrationContext.configure(connection).get_current_revision()
    assert diffs == []
    assert revision == head_revision() == catalog.revision


def test_open_twice_is_idempotent(catalog_url: str) -> None:
    with Catalog(catalog_url) as first:
        first.upsert_books([("B1", "D1")])
    with Catalog(catalog_url) as second:
        assert second.books() == {"B1": "D1"}
        with second.engine.connect() as connection:
            versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [head_revision()]


def _open_and_count(url: str, barrier: Any, queue: Any) -> None:
    barrier.wait()
    try:
        with Catalog(url) as catalog:
            queue.put(("ok", catalog.revision))
    except Exception as exc:  # reported to the parent, which fails the test with it
        queue.put(("error", repr(exc)))


def _spawn(target: object, args_per_process: list[tuple[object, ...]]) -> list[tuple[str, object]]:
    # fork: the children start with riskstream already imported (spawn re-imports it: seconds per child). They
    # open their own Catalog and never touch the parent's connections; multiprocessing ends them with os._exit.
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    barrier = context.Barrier(len(args_per_process))
    processes = [context.Process(target=target, args=(*args, barrier, queue)) for args in args_per_process]
    for p in processes:
        p.start()
    results = [queue.get(timeout=60) for _ in processes]
    for p in processes:
        p.join(timeout=60)
        assert p.exitcode == 0
    queue.close()
    queue.join_thread()
    return results


@pytest.mark.integration
def test_two_processes_migrate_one_new_catalog_at_once(catalog_url: str) -> None:
    results = _spawn(_open_and_count, [(catalog_url,), (catalog_url,)])
    assert results == [("ok", head_revision())] * 2
    with Catalog(catalog_url) as catalog, catalog.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_unsupported_or_malformed_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="catalog_url"):
        Catalog("mysql://root@localhost/x")
    with pytest.raises(ConfigurationError, match="catalog_url"):
        Catalog("not a url")


def test_unreachable_database_is_a_store_error_naming_the_url() -> None:
    with pytest.raises(StoreError, match=re.escape("127.0.0.1:1/nowhere")):
        Catalog("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")


def test_offline_migration_script_creates_every_table() -> None:
    buffer = io.StringIO()
    config = alembic_config("postgresql+psycopg://")
    config.output_buffer = buffer
    command.upgrade(config, "head", sql=True)
    script = buffer.getvalue()
    for table in Base.metadata.tables:
        assert f"CREATE TABLE {table} " in script or f'CREATE TABLE "{table}" ' in script, table


def test_in_memory_catalog_keeps_its_data_across_calls() -> None:
    with Catalog("sqlite://") as catalog:
        catalog.upsert_books([("B", "D")])
        assert catalog.books() == {"B": "D"}


# --- hierarchy and reference data -------------------------------------------------------------------


def test_books_desks_traders(catalog: Catalog) -> None:
    catalog.upsert_books([("RATES-USD-GOVT", "RATES"), ("FX-OPTIONS", "FX")])
    catalog.upsert_books([("FX-OPTIONS", "RATES")])  # a book moves desk
    assert catalog.books() == {"FX-OPTIONS": "RATES", "RATES-USD-GOVT": "RATES"}
    assert catalog.desks() == ["FX", "RATES"]
    catalog.upsert_traders([("alice", "RATES"), ("bob", None)])
    assert catalog.traders() == {"alice": "RATES", "bob": None}
    with pytest.raises(InvalidFieldError, match="'book'"):
        catalog.upsert_books([("", "RATES")])


def test_instruments_keep_extra_columns_as_json_attributes(catalog: Catalog) -> None:
    frame = pd.DataFrame(
        {
            "instrument_id": ["AAPL", "UST10", None],
            "type": ["equity", "fixed_rate_bond", "equity"],
            "currency": ["USD", "USD", "USD"],
            "maturity": [None, date(2034, 2, 15), None],
            "coupon": [float("nan"), 0.04, 1.0],
        }
    )
    result = catalog.upsert_instruments(frame)
    assert result.rows == 2
    assert result.rejected == ((2, "mandatory field 'instrument_id' is missing (value None)"),)
    got = catalog.instruments()
    assert got["instrument_id"].tolist() == ["AAPL", "UST10"]
    assert got["attributes"].tolist() == [{}, {"coupon": 0.04, "maturity": "2034-02-15"}]
    catalog.upsert_instruments(
        [{"instrument_id": "AAPL", "type": "equity", "currency": "USD", "sector": "Tech"}]
    )
    assert catalog.instruments()["attributes"].tolist()[0] == {"sector": "Tech"}
    with pytest.raises(MissingFieldError, match="'currency'"):
        catalog.upsert_instruments([{"instrument_id": "X", "type": "equity"}])


def _trades(n: int, start: int = 0) -> pd.DataFrame:
    ids = range(start, start + n)
    return pd.DataFrame(
        {
            "trade_id": [f"T{i:07d}" for i in ids],
            "instrument_id": [f"I{i % 97}" for i in ids],
            "book": [f"B{i % 13}" for i in ids],
            "trader": [f"tr{i % 7}" for i in ids],
            "counterparty": [None if i % 5 == 0 else f"CP{i % 11}" for i in ids],
            "sector": ["Tech"] * n,
            "region": ["EMEA"] * n,
            "quantity": [float(i) - n / 2 for i in ids],
        }
    )


def test_trades_upsert_replaces_by_trade_id_and_reports_bad_rows(catalog: Catalog) -> None:
    first = catalog.upsert_trades(_trades(1000))
    assert first.rows == 1000 and first.rejected == ()
    second = _trades(500, start=800)  # 200 overlap, 300 new
    second.loc[0, "quantity"] = float("inf")
    second.loc[1, "book"] = "  "
    result = catalog.upsert_trades(second)
    assert result.rows == 498
    assert [i for i, _ in result.rejected] == [0, 1]
    assert "'quantity'" in result.rejected[0][1] and "inf" in result.rejected[0][1]
    assert "'book'" in result.rejected[1][1]
    assert (
        catalog.trade_count() == 1300
    )  # T0000000-T0001299: 1000 first, 300 new; refused T0800/T0801 keep their first rows
    got = catalog.trades().set_index("trade_id")
    assert got.loc["T0000900", "quantity"] == 900.0 - 250.0  # the second frame's value: i - n/2 with n = 500
    assert (
        got.loc["T0000800", "quantity"] == 800.0 - 500.0
    )  # refused in the second frame: the first one stays
    assert pd.isna(got.loc["T0000000", "counterparty"])
    assert len(catalog.trades(book="B0")) == len(got[got["book"] == "B0"])


def test_trades_accept_arrow_tables_and_keep_the_last_duplicate(catalog: Catalog) -> None:
    import pyarrow as pa

    table = pa.table(
        {"trade_id": ["A", "A"], "instrument_id": ["I", "I"], "book": ["B", "B"], "quantity": [1.0, 2.0]}
    )
    assert catalog.upsert_trades(table).rows == 1
    assert catalog.trades()["quantity"].tolist() == [2.0]
    catalog.upsert_trades(
        [{"trade_id": "A", "instrument_id": "I", "book": "B", "counterparty": "CP", "quantity": 2.0}]
    )
    assert catalog.trades()["counterparty"].tolist() == ["CP"]  # a change from NULL is a change
    catalog.upsert_trades([{"trade_id": "A", "instrument_id": "I", "book": "B", "quantity": 2.0}])
    assert catalog.trades()["counterparty"].tolist() == [None]  # and back to NULL


def test_bulk_path_matches_the_plain_core_path(catalog: Catalog) -> None:
    frame = _trades(300)
    catalog.upsert_trades(frame)
    fast = catalog.trades()
    with catalog.engine.begin() as connection:
        connection.execute(sa.delete(Trade))
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        reference_upsert(connection, Trade.__table__, records, ["trade_id"])  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(catalog.trades(), fast)


# --- jobs -----------------------------------------------------------------------------------------


def test_job_round_trip_and_listing(catalog: Catalog) -> None:
    catalog.create_job(_job("J1", scope={"desk": ["RATES"]}, expected_chunks=3))
    catalog.create_job(JobRecord("J2", "INTRADAY", date(2024, 3, 29)))
    job = catalog.job("J1")
    assert job is not None
    assert job.scope == {"desk": ("RATES",)} and job.expected_chunks == 3 and job.state is JobState.OPEN
    assert job.created_at is not None and job.created_at.tzinfo is not None
    assert abs((datetime.now(UTC) - job.created_at).total_seconds()) < 60
    assert catalog.job("nope") is None
    assert [j.job_id for j in catalog.jobs()] == ["J1", "J2"]
    assert [j.job_id for j in catalog.jobs(namespace="INTRADAY")] == ["J2"]
    assert [j.job_id for j in catalog.jobs(business_date=date(2024, 3, 28))] == ["J1"]
    with pytest.raises(JobStateError, match="'J1' is OPEN: cannot create it again"):
        catalog.create_job(_job("J1"))


def test_job_life_cycle_and_illegal_moves(catalog: Catalog) -> None:
    catalog.create_job(_job("J"))
    catalog.update_job("J", state="COMMITTING")
    catalog.update_job("J", state=JobState.OPEN, error="conflict, retry")  # a failed commit reopens the job
    catalog.update_job("J", expected_state="OPEN", state="COMMITTING", error=None)
    catalog.update_job("J", state="COMMITTED", committed_version=4, rows=1200)
    job = catalog.jobs(state="COMMITTED")[0]
    assert (job.committed_version, job.rows, job.error) == (4, 1200, None)
    assert job.updated_at is not None and job.created_at is not None and job.updated_at >= job.created_at
    with pytest.raises(JobStateError, match="'J' is COMMITTED: cannot move it to OPEN"):
        catalog.update_job("J", state="OPEN")
    catalog.create_job(_job("K"))
    with pytest.raises(JobStateError, match="'K' is OPEN: cannot move it to COMMITTED"):
        catalog.update_job("K", state="COMMITTED")
    catalog.update_job("K", state="ABORTED")
    catalog.update_job("K", state="ABORTED")  # no move: aborting twice is harmless
    with pytest.raises(JobStateError, match="'K' is ABORTED"):
        catalog.update_job("K", expected_state="OPEN", state="COMMITTING")
    with pytest.raises(StoreError, match="'missing'"):
        catalog.update_job("missing", state="ABORTED")
    with pytest.raises(InvalidFieldError, match="'colour'"):
        catalog.update_job("K", colour="red")
    with pytest.raises(InvalidFieldError, match="'rows'"):
        catalog.update_job("K", rows=-1)
    with pytest.raises(InvalidFieldError, match="'state'"):
        catalog.update_job("K", state="DONE")


def test_job_record_validation() -> None:
    with pytest.raises(InvalidFieldError, match="'namespace'"):
        JobRecord("J", "eod", date(2024, 1, 2))
    with pytest.raises(InvalidFieldError, match="'business_date'"):
        JobRecord("J", "EOD", datetime(2024, 1, 2, tzinfo=UTC))
    with pytest.raises(InvalidFieldError, match="'expected_chunks'"):
        JobRecord("J", "EOD", date(2024, 1, 2), expected_chunks=0)
    with pytest.raises(InvalidFieldError, match="'created_at'"):
        JobRecord("J", "EOD", date(2024, 1, 2), created_at=datetime(2024, 1, 2))


def test_two_threads_racing_on_one_job_exactly_one_wins(catalog: Catalog) -> None:
    rounds = 15
    for r in range(rounds):
        catalog.create_job(_job(f"R{r}"))
    barrier = threading.Barrier(2)
    wins: list[tuple[int, str]] = []
    losses: list[tuple[int, str]] = []

    def race(name: str) -> None:
        for r in range(rounds):
            barrier.wait()
            try:
                catalog.update_job(f"R{r}", expected_state="OPEN", state="COMMITTING", error=name)
                wins.append((r, name))
            except JobStateError as exc:
                assert "COMMITTING" in str(exc)
                losses.append((r, name))

    threads = [threading.Thread(target=race, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r for r, _ in wins) == list(range(rounds))
    assert sorted(r for r, _ in losses) == list(range(rounds))
    for r, name in wins:
        job = catalog.job(f"R{r}")
        assert job is not None and job.state is JobState.COMMITTING and job.error == name


def _race_commit(url: str, rounds: int, barrier: Any, queue: Any) -> None:
    won = []
    with Catalog(url) as catalog:
        for r in range(rounds):
            barrier.wait()
            try:
                catalog.update_job(f"P{r}", expected_state="OPEN", state="COMMITTING", error=str(os.getpid()))
                won.append(r)
            except JobStateError:
                pass
    queue.put((os.getpid(), won))


@pytest.mark.integration
def test_two_processes_racing_on_one_job_exactly_one_wins(catalog: Catalog) -> None:
    rounds = 10
    for r in range(rounds):
        catalog.create_job(_job(f"P{r}"))
    url = catalog.engine.url.render_as_string(hide_password=False)
    catalog.engine.dispose()  # no pooled connection for the forked children to inherit
    results = _spawn(_race_commit, [(url, rounds), (url, rounds)])
    won = sorted(r for _, rs in results for r in rs)
    assert won == list(range(rounds))
    winners = {r: str(pid) for pid, rs in results for r in rs}
    for r in range(rounds):
        job = catalog.job(f"P{r}")
        assert job is not None and job.state is JobState.COMMITTING and job.error == winners[r]


# --- entitlements ----------------------------------------------------------------------------------


def test_demo_entitlement_matrix(catalog: Catalog) -> None:
    users = seed_demo(catalog, SAMPLE_BOOKS)
    assert users == dict(DEMO_USERS)  # the sample bank's desks give the constant's users
    rows = [
        {"desk": desk, "book": book, "counterparty": "CP", "sector": "Tech", "region": "EMEA"}
        for book, desk in SAMPLE_BOOKS.items()
    ]
    # user -> (roles, desks whose rows they see, masked columns)
    expected = {
        "trader_rates": ({"trader:RATES"}, {"RATES"}, set()),
        "trader_eq_cash": ({"trader:EQ-CASH"}, {"EQ-CASH"}, set()),
        "trader_prime": ({"trader:PRIME"}, {"PRIME"}, set()),
        "head_trading": ({"head_of_trading"}, set(BOOKS), set()),
        "middle_office": ({"middle_office"}, set(BOOKS), set()),
        "pb_junior": ({"pb_junior_risk"}, {"PRIME"}, {"counterparty", "sector", "region"}),
    }
    for user, (roles, desks, masked) in expected.items():
        principal = catalog.principal(user)
        assert principal.roles == roles, user
        assert {r["desk"] for r in rows if principal.admits(r)} == desks, user
        assert principal.masked_columns == masked, user
        assert principal.row_filter_is_exact
    assert catalog.principal("head_trading").row_filter is None
    assert catalog.principal("head_trading").row_predicate() == [{}]
    assert catalog.principal("trader_fx").row_predicate() == [{"desk": frozenset({"FX"})}]
    assert catalog.group_roles()["grp-pb_junior_risk"] == ("pb_junior_risk",)
    assert catalog.users()["pb_junior"] == ("grp-pb_junior_risk",)
    with pytest.raises(AccessDeniedError, match="'nobody'"):
        catalog.principal("nobody")


def test_roles_combine_as_union_of_rows_and_intersection_of_masks(catalog: Catalog) -> None:
    catalog.define_role(
        "prime_eu",
        row_filter={"desk": ["PRIME"], "region": ["EMEA"]},
        masked_columns=["counterparty", "sector"],
    )
    catalog.define_role("rates", row_filter={"desk": "RATES"}, masked_columns=["counterparty"])
    catalog.define_role("auditor", row_filter=None, masked_columns=["sector"])
    for role in ("prime_eu", "rates", "auditor"):
        catalog.map_group(f"grp-{role}", role)
    catalog.add_user("u1", ["grp-prime_eu", "grp-rates"])
    u1 = catalog.principal("u1")
    assert u1.masked_columns == {"counterparty"}  # masked by both roles; sector only by one
    assert u1.row_predicate() == [
        {"desk": frozenset({"PRIME"}), "region": frozenset({"EMEA"})},
        {"desk": frozenset({"RATES"})},
    ]
    assert not u1.row_filter_is_exact
    assert u1.admits({"desk": "RATES", "region": "APAC"})
    assert u1.admits({"desk": "PRIME", "region": "EMEA"})
    assert not u1.admits({"desk": "PRIME", "region": "APAC"})
    catalog.add_user("u1", ["grp-prime_eu", "grp-auditor"])  # groups are replaced
    u1 = catalog.principal("u1")
    assert u1.row_filter is None and u1.masked_columns == {"sector"}
    catalog.define_role("rates", row_filter={"desk": ["RATES", "FX"]})  # redefined: masks dropped
    assert catalog.roles()["rates"].masked_columns == frozenset()
    assert catalog.roles()["rates"].row_filter == {"desk": frozenset({"RATES", "FX"})}
    catalog.add_user("lonely", ["grp-unmapped"])
    with pytest.raises(AccessDeniedError, match=r"'lonely'.*no role"):
        catalog.principal("lonely")
    with pytest.raises(InvalidFieldError, match=r"'role'.*'ghost'"):
        catalog.map_group("grp-ghost", "ghost")
    with pytest.raises(InvalidFieldError, match="allows no value"):
        catalog.define_role("empty", row_filter={"desk": []})


# --- audit and webhooks ----------------------------------------------------------------------------


def test_audit_log_is_newest_first(catalog: Catalog) -> None:
    catalog.audit("alice", "query", {"report": "desk_var", "as_of": date(2024, 3, 28)}, rows=12)
    catalog.audit("bob", "commit", {"job_id": "J1"})
    catalog.audit("alice", "export", {"format": "csv"}, rows=3)
    log = catalog.audit_log()
    assert [(e["user"], e["action"]) for e in log] == [
        ("alice", "export"),
        ("bob", "commit"),
        ("alice", "query"),
    ]
    assert log[2]["detail"] == {"report": "desk_var", "as_of": "2024-03-28"} and log[2]["rows"] == 12
    assert log[1]["rows"] is None and log[0]["at"].tzinfo is not None
    assert [e["action"] for e in catalog.audit_log(limit=1)] == ["export"]
    assert [e["action"] for e in catalog.audit_log(user="alice")] == ["export", "query"]


def test_webhooks(catalog: Catalog) -> None:
    catalog.add_webhook("https://hooks.example/eod", ["EOD"])
    catalog.add_webhook("http://all.example/")
    assert catalog.webhooks() == [
        Webhook("http://all.example/", (), True),
        Webhook("https://hooks.example/eod", ("EOD",), True),
    ]
    hooks = {h.url: h for h in catalog.webhooks()}
    assert hooks["https://hooks.example/eod"].wants("EOD") and not hooks["https://hooks.example/eod"].wants(
        "INTRADAY"
    )
    assert hooks["http://all.example/"].wants("INTRADAY")
    catalog.remove_webhook("http://all.example/")
    assert [h.url for h in catalog.webhooks()] == ["https://hooks.example/eod"]
    assert len(catalog.webhooks(include_inactive=True)) == 2
    catalog.add_webhook("http://all.example/", ["INTRADAY"])  # re-activated with new namespaces
    assert Webhook("http://all.example/", ("INTRADAY",), True) in catalog.webhooks()
    with pytest.raises(InvalidFieldError, match="'url'"):
        catalog.add_webhook("ftp://x")
