"""Engines and schema migrations of the catalog: SQLite (default) or PostgreSQL, upgraded to head on open.

Alembic is configured in code (no ``alembic.ini``): ``script_location`` is the ``migrations`` folder shipped in
the package. Two processes opening one catalog at once are serialised — SQLite by an exclusive ``flock`` on a
``<database>.migrate.lock`` file beside it, PostgreSQL by a session advisory lock — and the second finds the
schema at head and does nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from riskstream.errors import ConfigurationError

MIGRATIONS = Path(__file__).with_name("migrations")
SUPPORTED_DIALECTS = ("sqlite", "postgresql")
# One key for every catalog in a database: migrations are rare and short, so serialising them all is harmless.
_PG_LOCK_KEY = zlib.crc32(b"riskstream.store.catalog.migrate")
SQLITE_BUSY_TIMEOUT_S = 30.0


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration pointing at the shipped migrations (``url`` only for offline ``--sql`` output)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the shipped migrations have a head revision"
    return head


def create_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets a busy timeout, WAL journal and enforced foreign keys."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError("catalog_url", url, f"not a SQLAlchemy URL ({exc})") from None
    if parsed.get_backend_name() not in SUPPORTED_DIALECTS:
        raise ConfigurationError(
            "catalog_url",
            parsed.render_as_string(hide_password=True),
            "the catalog runs on sqlite or postgresql",
        )
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True)
    kwargs: dict[str, Any] = {
        "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    }
    memory = parsed.database in (None, "", ":memory:")
    if memory:
        kwargs["poolclass"] = StaticPool  # one shared connection, or each would see its own empty database
    else:
        Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer across processes
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


@contextlib.contextmanager
def _migration_lock(engine: Engine, connection: Connection) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.rollback()
            connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
            connection.commit()
        return
    database = engine.url.database
    if database in (None, "", ":memory:"):
        yield  # private to this process
        return
    with open(f"{database}.migrate.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def current_revision(connection: Connection) -> str | None:
    revision = MigrationContext.configure(connection).get_current_revision()
    connection.rollback()
    return revision


def upgrade_to_head(engine: Engine) -> str:
    """Bring the catalog schema to the head revision (a no-op when it is there); returns the head revision."""
    head = head_revision()
    with engine.connect() as connection:
        if current_revision(connection) == head:
            return head
        with _migration_lock(engine, connection):
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
    return head
