"""SQL schema of the risk store's catalog: reference data, entitlements, jobs, audit log and webhooks.

Typed SQLAlchemy 2 declarative models. The same metadata drives the Alembic migrations shipped in
``riskstream/store/migrations`` (hand-written; a test checks they agree) and the catalog's Core statements.

Portable across SQLite and PostgreSQL: JSON columns are ``sa.JSON``; timestamps are timezone-aware UTC
(:class:`UTCDateTime` stores UTC and returns aware datetimes on both databases, where SQLite alone would
drop the zone).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC; naive datetimes are refused rather than guessed."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value!r} has no time zone: catalog timestamps are UTC-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite keeps no zone: what was written is UTC, so attach it back.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every catalog table; ``Base.metadata`` is what the migrations create."""


# --- hierarchy and reference data -------------------------------------------------------------------


class Desk(Base):
    __tablename__ = "desks"
    desk: Mapped[str] = mapped_column(sa.String(200), primary_key=True)


class Book(Base):
    __tablename__ = "books"
    book: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    desk: Mapped[str] = mapped_column(sa.String(200), sa.ForeignKey("desks.desk"), index=True)


class Trader(Base):
    __tablename__ = "traders"
    trader: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    desk: Mapped[str | None] = mapped_column(sa.String(200), sa.ForeignKey("desks.desk"))


class Instrument(Base):
    __tablename__ = "instruments"
    instrument_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    currency: Mapped[str] = mapped_column(sa.String(3))
    attributes: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class Trade(Base):
    # No foreign keys to books/instruments: trades load in bulk (1M rows) from systems whose
    # reference data may arrive later; the query layer joins what is there.
    __tablename__ = "trades"
    trade_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    instrument_id: Mapped[str] = mapped_column(sa.String(200))
    book: Mapped[str] = mapped_column(sa.String(200), index=True)
    trader: Mapped[str | None] = mapped_column(sa.String(200))
    counterparty: Mapped[str | None] = mapped_column(sa.String(200))
    sector: Mapped[str | None] = mapped_column(sa.String(200))
    region: Mapped[str | None] = mapped_column(sa.String(200))
    quantity: Mapped[float | None] = mapped_column(sa.Float)


# --- users, groups, roles, entitlements ---------------------------------------------------------------


class User(Base):
    __tablename__ = "users"
    user: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Group(Base):
    __tablename__ = "groups"
    group: Mapped[str] = mapped_column(sa.String(200), primary_key=True)


class UserGroup(Base):
    __tablename__ = "user_groups"
    user: Mapped[str] = mapped_column(
        sa.String(200), sa.ForeignKey("users.user", ondelete="CASCADE"), primary_key=True
    )
    group: Mapped[str] = mapped_column(sa.String(200), sa.ForeignKey("groups.group"), primary_key=True)


class Role(Base):
    __tablename__ = "roles"
    role: Mapped[str] = mapped_column(sa.String(200), primary_key=True)


class GroupRole(Base):
    __tablename__ = "group_roles"
    group: Mapped[str] = mapped_column(sa.String(200), sa.ForeignKey("groups.group"), primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(200), sa.ForeignKey("roles.role"), primary_key=True)


class RoleRowFilter(Base):
    """One allowed value of one column for one role; a role without rows here admits every row."""

    __tablename__ = "role_row_filters"
    role: Mapped[str] = mapped_column(
        sa.String(200), sa.ForeignKey("roles.role", ondelete="CASCADE"), primary_key=True
    )
    column: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(200), primary_key=True)


class RoleMask(Base):
    __tablename__ = "role_masks"
    role: Mapped[str] = mapped_column(
        sa.String(200), sa.ForeignKey("roles.role", ondelete="CASCADE"), primary_key=True
    )
    column: Mapped[str] = mapped_column(sa.String(200), primary_key=True)


# --- jobs, audit, webhooks ----------------------------------------------------------------------------


class Job(Base):
    __tablename__ = "jobs"
    job_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    namespace: Mapped[str] = mapped_column(sa.String(100))
    business_date: Mapped[date] = mapped_column(sa.Date)
    scope: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    expected_chunks: Mapped[int | None] = mapped_column(sa.Integer)
    state: Mapped[str] = mapped_column(sa.String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    committed_version: Mapped[int | None] = mapped_column(sa.BigInteger)
    rows: Mapped[int | None] = mapped_column(sa.BigInteger)
    error: Mapped[str | None] = mapped_column(sa.Text)
    chunks: Mapped[int | None] = mapped_column(sa.Integer)  # revision 0002


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    user: Mapped[str] = mapped_column(sa.String(200), index=True)
    action: Mapped[str] = mapped_column(sa.String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    rows: Mapped[int | None] = mapped_column(sa.BigInteger)


class WebhookRow(Base):
    __tablename__ = "webhooks"
    url: Mapped[str] = mapped_column(sa.String(2000), primary_key=True)
    namespaces: Mapped[list[str]] = mapped_column(sa.JSON)
    active: Mapped[bool] = mapped_column(sa.Boolean)


class ApiKeyRow(Base):
    """An API key of a catalog user (revision 0003): only the SHA-256 of the key is kept."""

    __tablename__ = "api_keys"
    key_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    user: Mapped[str] = mapped_column(
        sa.String(200), sa.ForeignKey("users.user", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    key_hash: Mapped[str] = mapped_column(sa.String(64))
    scopes: Mapped[list[str]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
