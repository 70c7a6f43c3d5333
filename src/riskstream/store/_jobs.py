"""Job records and where they are kept while a job moves OPEN → COMMITTING → COMMITTED (or ABORTED).

The store talks to job records through `JobBook` only (``create``, ``get``, ``update``, ``books``, ``webhooks``),
so the catalog backs them whatever its database. `FileJobBook` keeps them as one JSON file per job under
``<root>/jobs/`` (written to a temporary file, fsynced and renamed, so a crash leaves the old or the new record).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from ..errors import StoreError

__all__ = ["JobBook", "JobRecord", "JobState"]


class JobState:
    """The states of a job. A retried commit of a COMMITTING job finishes it; COMMITTED and ABORTED are final."""

    OPEN = "OPEN"
    COMMITTING = "COMMITTING"
    COMMITTED = "COMMITTED"
    ABORTED = "ABORTED"


@dataclass(frozen=True)
class JobRecord:
    """One batch job: what it writes (namespace, business date, scope) and how far it got.

    ``scope`` maps a column (desk, book, trader) to the values the job covers; ``None`` = the whole
    (business_date, namespace). ``committed_version`` is the risk_results Delta version of its commit.
    """

    job_id: str
    namespace: str
    business_date: date
    scope: Mapping[str, Sequence[str]] | None = None
    expected_chunks: int | None = None
    state: str = JobState.OPEN
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    committed_version: int | None = None
    rows: int | None = None
    error: str | None = None


class JobBook(Protocol):
    def create(self, job: JobRecord) -> None: ...
    def get(self, job_id: str) -> JobRecord | None: ...
    def update(self, job_id: str, **fields: Any) -> None: ...
    def books(self) -> dict[str, str]: ...
    def webhooks(self) -> list[tuple[str, tuple[str, ...]]]: ...


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class FileJobBook:
    """Job records as JSON files (``<root>/jobs/<job_id>.json``); no books, no webhooks."""

    def __init__(self, root: Path):
        self.dir = root / "jobs"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, job_id: str) -> Path:
        return self.dir / f"{job_id}.json"

    def create(self, job: JobRecord) -> None:
        path = self._path(job.job_id)
        if path.exists():
            raise StoreError(f"job {job.job_id!r} already exists")
        self._write(job)

    def _write(self, job: JobRecord) -> None:
        data = asdict(job)
        data["business_date"] = job.business_date.isoformat()
        data["created_at"] = job.created_at.isoformat()
        data["updated_at"] = job.updated_at.isoformat()
        data["scope"] = {k: list(v) for k, v in job.scope.items()} if job.scope else None
        _write_atomic(self._path(job.job_id), json.dumps(data))

    def get(self, job_id: str) -> JobRecord | None:
        try:
            data = json.loads(self._path(job_id).read_text())
        except FileNotFoundError:
            return None
        data["business_date"] = date.fromisoformat(data["business_date"])
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        data["updated_at"] = datetime.fromisoformat(data["updated_at"])
        return JobRecord(**data)

    def update(self, job_id: str, **fields: Any) -> None:
        job = self.get(job_id)
        if job is None:
            raise StoreError(f"job {job_id!r} is unknown")
        self._write(replace(job, updated_at=datetime.now(UTC), **fields))

    def books(self) -> dict[str, str]:
        return {}

    def webhooks(self) -> list[tuple[str, tuple[str, ...]]]:
        return []
