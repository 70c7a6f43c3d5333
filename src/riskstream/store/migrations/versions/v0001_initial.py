"""Initial catalog: hierarchy, reference data, users/groups/roles/entitlements, jobs, audit log, webhooks.

Revision ID: 0001
Revises:
Create Date: 2026-05-09
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from riskstream.store._catalog_models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_NAME = 200  # length of every name column (desk, book, user, role, ...)


def _name(column: str, *args: Any, nullable: bool = False, primary_key: bool = False) -> sa.Column:
    return sa.Column(column, sa.String(_NAME), *args, nullable=nullable, primary_key=primary_key)


def upgrade() -> None:
    op.create_table("desks", _name("desk", primary_key=True))
    op.create_table("books", _name("book", primary_key=True), _name("desk", sa.ForeignKey("desks.desk")))
    op.create_index(op.f("ix_books_desk"), "books", ["desk"])
    op.create_table(
        "traders",
        _name("trader", primary_key=True),
        _name("desk", sa.ForeignKey("desks.desk"), nullable=True),
    )
    op.create_table(
        "instruments",
        _name("instrument_id", primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
    )
    op.create_table(
        "trades",
        _name("trade_id", primary_key=True),
        _name("instrument_id"),
        _name("book"),
        _name("trader", nullable=True),
        _name("counterparty", nullable=True),
        _name("sector", nullable=True),
        _name("region", nullable=True),
        sa.Column("quantity", sa.Float(), nullable=True),
    )
    op.create_index(op.f("ix_trades_book"), "trades", ["book"])

    op.create_table(
        "users", _name("user", primary_key=True), sa.Column("created_at", UTCDateTime(), nullable=False)
    )
    op.create_table("groups", _name("group", primary_key=True))
    op.create_table(
        "user_groups",
        _name("user", sa.ForeignKey("users.user", ondelete="CASCADE"), primary_key=True),
        _name("group", sa.ForeignKey("groups.group"), primary_key=True),
    )
    op.create_table("roles", _name("role", primary_key=True))
    op.create_table(
        "group_roles",
        _name("group", sa.ForeignKey("groups.group"), primary_key=True),
        _name("role", sa.ForeignKey("roles.role"), primary_key=True),
    )
    op.create_table(
        "role_row_filters",
        _name("role", sa.ForeignKey("roles.role", ondelete="CASCADE"), primary_key=True),
        _name("column", primary_key=True),
        _name("value", primary_key=True),
    )
    op.create_table(
        "role_masks",
        _name("role", sa.ForeignKey("roles.role", ondelete="CASCADE"), primary_key=True),
        _name("column", primary_key=True),
    )

    op.create_table(
        "jobs",
        _name("job_id", primary_key=True),
        sa.Column("namespace", sa.String(100), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=True),
        sa.Column("expected_chunks", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("committed_version", sa.BigInteger(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index(op.f("ix_jobs_state"), "jobs", ["state"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        _name("user"),
        _name("action"),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
    )
    op.create_index(op.f("ix_audit_log_user"), "audit_log", ["user"])
    op.create_table(
        "webhooks",
        sa.Column("url", sa.String(2000), primary_key=True),
        sa.Column("namespaces", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    for index, table in [
        ("ix_audit_log_user", "audit_log"),
        ("ix_jobs_state", "jobs"),
        ("ix_trades_book", "trades"),
        ("ix_books_desk", "books"),
    ]:
        op.drop_index(op.f(index), table_name=table)
    for table in [
        "webhooks",
        "audit_log",
        "jobs",
        "role_masks",
        "role_row_filters",
        "group_roles",
        "roles",
        "user_groups",
        "groups",
        "users",
        "trades",
        "instruments",
        "traders",
        "books",
        "desks",
    ]:
        op.drop_table(table)
