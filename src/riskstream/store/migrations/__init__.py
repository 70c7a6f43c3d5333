"""Alembic environment and revisions of the risk store's catalog (run by :class:`riskstream.store.Catalog`)."""
