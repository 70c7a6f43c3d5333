"""The store's view of job records: the catalog's jobs, books and webhooks behind one small interface."""

from __future__ import annotations

from typing import Any, Protocol

from ._catalog import Catalog, JobRecord

__all__ = ["CatalogJobBook", "JobBook"]


class JobBook(Protocol):
    """What the store needs of the catalog: job records (compare-and-set state moves), books and webhooks."""

    def create(self, job: JobRecord) -> None: ...
    def get(self, job_id: str) -> JobRecord | None: ...
    def update(self, job_id: str, **fields: Any) -> None: ...
    def books(self) -> dict[str, str]: ...
    def webhooks(self) -> list[tuple[str, tuple[str, ...]]]: ...


class CatalogJobBook:
    """Job records in the SQL catalog (`Catalog`): OPEN → COMMITTING → COMMITTED | ABORTED."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def create(self, job: JobRecord) -> None:
        self.catalog.create_job(job)

    def get(self, job_id: str) -> JobRecord | None:
        return self.catalog.job(job_id)

    def update(self, job_id: str, **fields: Any) -> None:
        self.catalog.update_job(job_id, **fields)

    def books(self) -> dict[str, str]:
        return self.catalog.books()

    def webhooks(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(w.url, tuple(w.namespaces)) for w in self.catalog.webhooks() if w.active]
