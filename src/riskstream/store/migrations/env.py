"""Alembic environment of the catalog.

Configured in code by :func:`riskstream.store._catalog_migrate.upgrade` (no ``alembic.ini``): the caller
passes an open connection in ``config.attributes["connection"]`` and holds the migration lock around it.
Offline (``--sql``) generation works from the URL in ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context

from riskstream.store._catalog_models import Base

config = context.config


def _run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        context.configure(
            url=config.get_main_option("sqlalchemy.url"), target_metadata=Base.metadata, literal_binds=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_run()
