"""The risk store: Delta Lake tables written by atomic batch jobs, read through DuckDB, tiered hot/cold.

A job is opened for a (namespace, business date, scope), receives chunks from any number of processes (each
validated and staged durably before `RiskStore.put_chunk` returns) and commits in ONE Delta transaction that
replaces the earlier rows of its (business_date, namespace, scope) and adds the new ones — a re-run replaces,
never duplicates, and a reader sees the old job or the new one, never a part. The commit carries the job id in
its commit metadata and as a Delta application transaction, so a retried commit after a crash finds it and
returns the same version instead of writing again.
"""

from __future__ import annotations

import calendar
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from ..domain import RiskSnapshot
from ..errors import (
    ChunkRejectedError,
    CommitConflictError,
    ConfigurationError,
    InvalidFieldError,
    JobStateError,
    SchemaEvolutionError,
    StoreError,
)
from . import _notify
from ._catalog import Catalog, JobRecord, JobState
from ._config import PreaggSpec, StoreConfig
from ._jobs import CatalogJobBook, JobBook
from ._preagg import preagg_schema, preaggregate
from ._results import check_id, chunk_id_of, new_id, read_chunk_input, stage, staged_chunks
from ._schema import MANDATORY, OPTIONAL, RESULTS_PARTITION, SCOPE_COLUMNS, conform, validate_chunk

__all__ = ["ChunkReceipt", "CommitResult", "JobStatus", "RiskStore", "TierResult", "VacuumResult"]

RESULTS = "risk_results"
MARKET = "market_history"
LIVE = "live_snapshots"
JOB_KEY = "riskstream.job_id"
PARTS_KEY = "riskstream.partitions"
SOURCE_KEY = "riskstream.source_version"
_NAMESPACE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


@dataclass(frozen=True)
class ChunkReceipt:
    """A staged chunk: durable on disk when returned."""

    job_id: str
    chunk_id: str
    rows: int
    columns: tuple[str, ...]
    path: str


@dataclass(frozen=True)
class CommitResult:
    """A committed job: risk_results ``version``, ``rows`` written, ``replaced`` rows of the earlier run,
    ``duration_s`` of the commit call, ``already_committed`` when a retry found the commit done, notifications."""

    job_id: str
    version: int
    rows: int
    replaced: int
    duration_s: float
    already_committed: bool = False
    deliveries: tuple[_notify.Delivery, ...] = ()


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: str
    namespace: str
    business_date: date
    scope: Mapping[str, Sequence[str]] | None
    chunks_received: int
    chunks_expected: int | None
    rows: int
    version: int | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "state": self.state,
            "namespace": self.namespace,
            "business_date": self.business_date.isoformat(),
            "scope": {k: list(v) for k, v in self.scope.items()} if self.scope else None,
            "chunks_received": self.chunks_received,
            "chunks_expected": self.chunks_expected,
            "rows": self.rows,
            "version": self.version,
            "error": self.error,
        }


@dataclass(frozen=True)
class TierResult:
    """Partitions moved from the hot tier to the cold one (business dates) and the rows they held."""

    moved: tuple[date, ...]
    rows: int
    cutoff: date


@dataclass(frozen=True)
class VacuumResult:
    """Partitions deleted by the retention policy and data files removed (or that would be, with ``dry_run``)."""

    expired: tuple[date, ...]
    files: tuple[str, ...]
    dry_run: bool
    cutoff: date


def _lit(value: Any) -> str:
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def _in(column: str, values: Sequence[Any]) -> str:
    return f"{column} IN ({', '.join(_lit(v) for v in values)})"


def _is_conflict(exc: Exception) -> bool:
    if isinstance(exc, CommitFailedError):
        return True
    text = str(exc).lower()
    return "conflict" in text or "concurrent" in text or "version already exists" in text


def _vector_length(table: pa.Table) -> int | None:
    """The length of the first non-null ``pnl_vector`` of ``table`` (validated chunks have one length)."""
    if "pnl_vector" not in table.column_names:
        return None
    lengths = pc.drop_null(pc.list_value_length(table.column("pnl_vector")))
    return int(lengths[0].as_py()) if len(lengths) else None


def _years_before(d: date, years: int) -> date:
    y = d.year - years
    return date(y, d.month, min(d.day, calendar.monthrange(y, d.month)[1]))


class RiskStore:
    """The front-office risk store rooted at ``root`` (see docs/store.md for the folder layout)."""

    def __init__(
        self, root: Path, config: StoreConfig, jobs: JobBook, catalog: Catalog | None = None, bus: Any = None
    ):
        self.root = root
        self.config = config
        self.jobs = jobs
        self.catalog = catalog
        self.bus = bus
        tables = config.tables_root or str(root / "tables")
        self.tables_root = tables.rstrip("/")
        cold = config.cold_root
        if "://" in cold or Path(cold).is_absolute():
            self.cold_root = cold.rstrip("/")
        else:
            self.cold_root = str(root / cold)
        self.staging = root / "staging"
        # job id -> pnl_vector length of the rows outside its scope, read once at the job's first put
        self._vector_lengths: dict[str, int | None] = {}

    # --- opening --------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        root: str | Path = ".riskstream/store",
        *,
        catalog_url: str | None = None,
        bus: Any = None,
        config: StoreConfig | None = None,
    ) -> RiskStore:
        """Open (creating if needed) the store at ``root``; ``store.yaml`` is written with defaults on first open.

        ``bus``: a `riskstream.bus` bus; when given, every commit publishes a StoreEvent on ``store.events``.
        The catalog is ``catalog_url``, else env ``RISKSTREAM_CATALOG_URL``, else ``catalog_url`` of store.yaml,
        else ``sqlite:///<root>/catalog.db``.
        """
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        if config is None:
            config = StoreConfig.load_or_create(root)
        else:
            config.save(root)
        if catalog_url is not None:
            config = replace(config, catalog_url=catalog_url)
        (root / "staging").mkdir(exist_ok=True)
        url = (
            catalog_url
            or os.environ.get("RISKSTREAM_CATALOG_URL")
            or config.catalog_url
            or f"sqlite:///{(root / 'catalog.db').resolve()}"
        )
        catalog = Catalog(url)
        return cls(root, config, CatalogJobBook(catalog), catalog, bus)

    def close(self) -> None:
        """Release the catalog's database connections."""
        if self.catalog is not None:
            self.catalog.close()

    def __enter__(self) -> RiskStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- table locations ------------------------------------------------------------------------------

    def _uri(self, name: str, cold: bool = False) -> str:
        base = self.cold_root + "/tables" if cold else self.tables_root
        return f"{base}/{name}"

    def _table(self, name: str, cold: bool = False, version: int | None = None) -> DeltaTable | None:
        uri = self._uri(name, cold)
        opts = dict(self.config.storage_options) or None
        if not DeltaTable.is_deltatable(uri, storage_options=opts):
            return None
        return DeltaTable(uri, version=version, storage_options=opts)

    def _write(self, target: str | DeltaTable, data: pa.Table, **kwargs: Any) -> None:
        opts = dict(self.config.storage_options) or None
        if isinstance(target, DeltaTable):
            write_deltalake(target, data, **kwargs)
        else:
            write_deltalake(target, data, storage_options=opts, **kwargs)

    def results_version(self) -> int:
        """The latest version of the (hot) risk_results table; -1 before the first commit."""
        dt = self._table(RESULTS)
        return -1 if dt is None else dt.version()

    # --- jobs -----------------------------------------------------------------------------------------

    def _job(self, job_id: str) -> JobRecord:
        job = self.jobs.get(job_id)
        if job is None:
            raise StoreError(f"job {job_id!r} is unknown")
        return job

    def open_job(
        self,
        namespace: str,
        business_date: date,
        scope: Mapping[str, Sequence[str]] | None = None,
        expected_chunks: int | None = None,
        job_id: str | None = None,
    ) -> str:
        """Open a job for ``namespace`` (``EOD``, ``intraday``, …) and ``business_date``; return its id.

        ``scope`` restricts the rows the job owns, e.g. ``{"desk": ["RATES"]}`` (columns desk, book, trader);
        a commit replaces exactly the earlier rows inside that scope. ``None`` = the whole date and namespace.
        """
        if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
            raise InvalidFieldError(
                "namespace", namespace, "must be an upper-case word such as EOD or INTRADAY"
            )
        if isinstance(business_date, datetime) or not isinstance(business_date, date):
            raise InvalidFieldError("business_date", business_date, "must be a date")
        clean: dict[str, tuple[str, ...]] | None = None
        if scope:
            clean = {}
            for column, values in scope.items():
                if column not in SCOPE_COLUMNS:
                    raise InvalidFieldError("scope", column, f"scope columns are {', '.join(SCOPE_COLUMNS)}")
                vals = (values,) if isinstance(values, str) else tuple(values)
                if not vals or not all(isinstance(v, str) and v for v in vals):
                    raise InvalidFieldError(
                        f"scope.{column}", list(vals), "needs one or more non-empty names"
                    )
                clean[column] = tuple(sorted(set(vals)))
        if expected_chunks is not None and (not isinstance(expected_chunks, int) or expected_chunks < 1):
            raise InvalidFieldError("expected_chunks", expected_chunks, "must be a positive integer")
        job_id = check_id("job_id", job_id or f"{namespace}-{business_date:%Y%m%d}-{new_id()}")
        self.jobs.create(
            JobRecord(job_id, namespace, business_date, clean, expected_chunks, state=JobState.OPEN)
        )
        (self.staging / job_id).mkdir(parents=True, exist_ok=True)
        return job_id

    def _results_schema(self) -> pa.Schema | None:
        dt = self._table(RESULTS)
        return None if dt is None else pa.schema(dt.schema().to_arrow())

    def put_chunk(
        self, job_id: str, data: pa.Table | pd.DataFrame | str | Path, chunk_id: str | None = None
    ) -> ChunkReceipt:
        """Validate a chunk and stage it durably; a re-put of the same ``chunk_id`` replaces that chunk.

        Raises `ChunkRejectedError` (naming field and value) or `SchemaEvolutionError` for a bad chunk; the job
        stays OPEN. Safe to call from many processes at once for the same job (one file per chunk).
        """
        job = self._job(job_id)
        if job.state != JobState.OPEN:
            raise JobStateError(job_id, job.state, "accept chunks")
        chunk_id = check_id("chunk_id", chunk_id or new_id())
        table = read_chunk_input(data)
        for name in ("business_date", "namespace", "value"):
            if name not in table.column_names:
                raise ChunkRejectedError(job_id, chunk_id, f"mandatory field {name!r} is missing", field=name)
        table = conform(table, self._results_schema())
        table = validate_chunk(
            table,
            job_id=job_id,
            chunk_id=chunk_id,
            namespace=job.namespace,
            business_date=job.business_date,
            scope=job.scope,
            books=self.jobs.books(),
        )
        if (n := _vector_length(table)) is not None:
            stored = self._vector_lengths.get(job_id)
            if job_id not in self._vector_lengths or (stored is not None and stored != n):
                # read once per job; a mismatch is read again (another job may have re-run that scope)
                stored = self._stored_vector_length(job, self._table(RESULTS))
                self._vector_lengths[job_id] = stored
            self._check_vector_length(job, chunk_id, n, stored)
        if "committed_at" in table.column_names:
            table = table.drop_columns(["committed_at"])
        path = stage(table, self.staging / job_id, chunk_id)
        return ChunkReceipt(job_id, chunk_id, table.num_rows, tuple(table.column_names), str(path))

    def status(self, job_id: str) -> JobStatus:
        """State, chunks received / expected, rows (staged, or committed) and the committed version.

        After a commit the staged chunks are gone: chunks and rows are those the catalog recorded at commit.
        """
        job = self._job(job_id)
        chunks = staged_chunks(self.staging / job_id)
        rows = job.rows if job.rows is not None else sum(pq.read_metadata(p).num_rows for p in chunks)
        received = job.chunks if job.state == JobState.COMMITTED and job.chunks is not None else len(chunks)
        return JobStatus(
            job_id,
            job.state,
            job.namespace,
            job.business_date,
            job.scope,
            received,
            job.expected_chunks,
            int(rows),
            job.committed_version,
            job.error,
        )

    def abort(self, job_id: str) -> None:
        """Drop the staged chunks of an OPEN job and mark it ABORTED."""
        job = self._job(job_id)
        if job.state not in (JobState.OPEN, JobState.ABORTED):
            raise JobStateError(job_id, job.state, "abort")
        self.jobs.update(job_id, state=JobState.ABORTED)
        self._vector_lengths.pop(job_id, None)
        shutil.rmtree(self.staging / job_id, ignore_errors=True)

    def _predicate(self, job: JobRecord) -> str:
        parts = [f"business_date = {_lit(job.business_date)}", f"namespace = {_lit(job.namespace)}"]
        for column, values in (job.scope or {}).items():
            parts.append(_in(column, list(values)))
        return " AND ".join(parts)

    def _assemble(self, job: JobRecord) -> pa.Table:
        chunks = staged_chunks(self.staging / job.job_id)
        if not chunks:
            raise JobStateError(job.job_id, "empty", "commit without chunks")
        if job.expected_chunks is not None and len(chunks) != job.expected_chunks:
            raise JobStateError(
                job.job_id, f"holding {len(chunks)} of {job.expected_chunks} chunks", "commit"
            )
        tables = [pq.read_table(p) for p in chunks]
        types: dict[str, pa.DataType] = {}
        for p, t in zip(chunks, tables, strict=True):
            for f in t.schema:
                have = types.setdefault(f.name, f.type)
                if have != f.type:
                    raise SchemaEvolutionError(f.name, str(have), f"{f.type} (chunk {chunk_id_of(p)!r})")
        table = pa.concat_tables(tables, promote_options="default")
        keys = (
            table.select(["trade_id", "measure"])
            .group_by(["trade_id", "measure"])
            .aggregate([([], "count_all")])
        )
        if keys.num_rows != table.num_rows:
            dup = pc.index(pc.greater(keys.column("count_all"), 1), True).as_py()
            tid = keys.column("trade_id")[dup].as_py()
            raise ChunkRejectedError(
                job.job_id,
                "*",
                f"key (trade_id, measure) = {(tid, keys.column('measure')[dup].as_py())!r} is in several chunks",
                field="trade_id",
                value=tid,
            )
        if "pnl_vector" in table.column_names:
            lengths = pc.drop_null(pc.list_value_length(table.column("pnl_vector")))
            if len(lengths):
                mm = pc.min_max(lengths).as_py()
                if mm["min"] != mm["max"]:
                    raise ChunkRejectedError(
                        job.job_id,
                        "*",
                        "pnl_vector lengths differ between chunks",
                        field="pnl_vector",
                        value=mm,
                    )
        now = np.full(table.num_rows, np.datetime64(datetime.now(UTC).replace(tzinfo=None), "us"))
        table = table.append_column("committed_at", pa.array(now).cast(pa.timestamp("us", tz="UTC")))
        return table

    def _find_commit(self, job_id: str) -> int | None:
        """The risk_results version whose commit carries ``job_id``, if the log has one."""
        dt = self._table(RESULTS)
        if dt is None or dt.transaction_version(f"riskstream:{job_id}") is None:
            return None
        limit = 8
        while True:
            entries = dt.history(limit)
            for h in entries:
                if h.get(JOB_KEY) == job_id:
                    return int(h["version"])
            if len(entries) < limit:
                return None
            limit *= 4

    def commit(self, job_id: str) -> CommitResult:
        """Replace the job's (business_date, namespace, scope) rows with its staged chunks in one transaction.

        Then rebuild the pre-aggregations of the touched partitions, publish the StoreEvent and call the
        webhooks. Idempotent: a retry after a crash (or of a committed job) returns the same version.
        """
        started = time.perf_counter()
        job = self._job(job_id)
        if job.state == JobState.COMMITTED:
            assert job.committed_version is not None
            return CommitResult(
                job_id, job.committed_version, job.rows or 0, 0, time.perf_counter() - started, True
            )
        if job.state not in (JobState.OPEN, JobState.COMMITTING):
            raise JobStateError(job_id, job.state, "commit")
        self.jobs.update(job_id, state=JobState.COMMITTING, error=None)
        version = self._find_commit(job_id)
        already = version is not None
        replaced = 0
        known: dict[tuple[str, str | None], tuple[int, pa.Table]] = {}
        measures: tuple[str, ...] = ()
        chunks = len(staged_chunks(self.staging / job_id))
        try:
            if version is None:
                table = self._assemble(job)
                conform(table, self._results_schema())  # a concurrent job may have changed a column's type
                measures = tuple(sorted(set(table.column("measure").to_pylist())))
                version, replaced = self._replace(job, table)
                rows = table.num_rows
                if job.scope is None:  # the job's rows are the whole partition at its version
                    known = {(job.business_date.isoformat(), job.namespace): (version, table)}
            else:
                rows = self._committed_rows(version)
        except (ChunkRejectedError, SchemaEvolutionError, JobStateError) as exc:
            self.jobs.update(job_id, state=JobState.OPEN, error=str(exc))
            raise
        self._drop_cold_copy(job.business_date)
        self.refresh_preaggregations(known)
        self.jobs.update(
            job_id, state=JobState.COMMITTED, committed_version=version, rows=rows, chunks=chunks
        )
        self._vector_lengths.pop(job_id, None)
        shutil.rmtree(self.staging / job_id, ignore_errors=True)
        deliveries = self._notify(job, version, rows, measures)
        return CommitResult(
            job_id, version, rows, replaced, time.perf_counter() - started, already, tuple(deliveries)
        )

    def _committed_rows(self, version: int) -> int:
        dt = self._table(RESULTS)
        assert dt is not None
        for h in dt.history(max(1, dt.version() - version + 1)):
            if int(h["version"]) == version:
                return int(h.get("operationMetrics", {}).get("num_added_rows", 0))
        return 0

    def _cold_carry(self, job: JobRecord, hot: DeltaTable) -> tuple[pa.Table, int] | None:
        """For a job whose business date is in the cold tier only (not in the ``hot`` snapshot): the cold rows
        of that date outside the job's (namespace, scope), which its commit carries into hot so that hot holds
        the whole date, and the number of cold rows inside the scope (those the job replaces). None otherwise.
        """
        day = job.business_date
        if day in self._dates(hot):
            return None
        cold = self._table(RESULTS, cold=True)
        if cold is None or day not in self._dates(cold):
            return None
        rows = cold.to_pyarrow_dataset(
            file_pruning_predicate=[("business_date", "=", day.isoformat())]
        ).to_table()
        inside = self._scope_filter(job)
        return rows.filter(~inside), rows.filter(inside).num_rows

    def _replace(self, job: JobRecord, table: pa.Table) -> tuple[int, int]:
        """One Delta transaction: delete the scope's rows (replace-where) and add ``table``; retried on conflict.

        When the business date is in the cold tier only, the transaction replaces the whole date in hot instead
        (it holds nothing there) with ``table`` plus the cold rows of the date outside the job's scope; the cold
        copy is dropped afterwards (`_drop_cold_copy`). Refuses the job (`ChunkRejectedError`) when its scenario
        vectors differ in length from the stored rows of its date and namespace outside its scope.
        """
        iso = job.business_date.isoformat()
        delay = 0.02
        last: Exception | None = None
        predicate = self._predicate(job)
        for _attempt in range(self.config.commit_retries):
            # shared tier lock from reading the snapshot to the write: commits run concurrently with each
            # other but never inside `tier`'s copy → delete of a date (a commit landing in hot there would be
            # deleted without reaching cold), and never decide hot/cold carrying on a snapshot tier then changes
            with self._lock("tier", shared=True):
                failure, replaced, predicate = self._replace_once(job, table, iso)
            if failure is None:
                version = self._find_commit(job.job_id)
                assert version is not None
                return version, replaced
            found = self._find_commit(job.job_id)
            if found is not None:  # an earlier attempt did commit
                return found, replaced
            if not _is_conflict(failure):
                raise StoreError(f"commit of job {job.job_id!r} failed: {failure}") from failure
            last = failure
            time.sleep(delay * (1 + np.random.default_rng().random()))
            delay = min(delay * 2, 1.0)
        raise CommitConflictError(
            f"job {job.job_id!r}: scope {predicate!r} kept conflicting with concurrent commits after "
            f"{self.config.commit_retries} attempts: {last}"
        )

    def _replace_once(self, job: JobRecord, table: pa.Table, iso: str) -> tuple[Exception | None, int, str]:
        """One attempt of `_replace` on the latest snapshot: (the conflict or failure if any, rows replaced,
        predicate). Runs under the shared tier lock."""
        dt = self._results_table()
        replaced = 0
        if job.scope:  # a job without scope replaces every vector of its date and namespace
            stored = self._stored_vector_length(job, dt)
            self._check_vector_length(job, "*", _vector_length(table), stored)
        carry = self._cold_carry(job, dt)
        if carry is None:
            predicate, data, parts = self._predicate(job), table, [f"{iso}/{job.namespace}"]
        else:
            # hot has nothing of the date: replacing the whole date conflicts with any concurrent commit
            # that puts rows there, which then retries on the new snapshot
            predicate, parts = f"business_date = {_lit(job.business_date)}", [f"{iso}/*"]
            data = pa.concat_tables([table, carry[0]], promote_options="default")
        props = CommitProperties(
            custom_metadata={JOB_KEY: job.job_id, PARTS_KEY: json.dumps(parts)},
            app_transactions=[Transaction(f"riskstream:{job.job_id}", 1)],
        )
        try:
            if carry is None:
                replaced = dt.to_pyarrow_dataset(
                    file_pruning_predicate=[("business_date", "=", iso)]
                ).count_rows(filter=self._scope_filter(job))
            else:
                replaced = carry[1]
            self._write(
                dt,
                data,
                mode="overwrite",
                predicate=predicate,
                partition_by=[RESULTS_PARTITION],
                schema_mode="merge",
                commit_properties=props,
            )
        except (CommitFailedError, DeltaError, OSError) as exc:
            return exc, replaced, predicate
        return None, replaced, predicate

    def _drop_cold_copy(self, day: date) -> None:
        """Delete ``day`` from the cold tier if the hot tier holds it (readers take such a date from hot only).

        Runs after a commit that carried a cold date into hot; a crash before it leaves the date in both tiers,
        which reads the same, and the retried commit drops it. The tier lock keeps `tier` from moving the date
        back to cold between the check and the delete.
        """
        with self._lock("tier"):
            hot = self._table(RESULTS)
            cold = self._table(RESULTS, cold=True)
            if hot is None or cold is None or day not in self._dates(cold) or day not in self._dates(hot):
                return
            props = CommitProperties(
                custom_metadata={
                    "riskstream.operation": "drop-cold-copy",
                    PARTS_KEY: json.dumps([f"{day}/*"]),
                }
            )
            self._delete(RESULTS, f"business_date = {_lit(day)}", props, cold=True)

    def _results_table(self) -> DeltaTable:
        """The hot risk_results table, created empty (standard columns) the first time.

        Creating it apart from the first job's commit makes every job commit the same way, a replace-where
        that conflicts with a concurrent one on the same scope, rather than racing appends to a new table.
        """
        dt = self._table(RESULTS)
        if dt is not None:
            return dt
        try:
            self._write(
                self._uri(RESULTS),
                self._empty(RESULTS),
                mode="append",
                partition_by=[RESULTS_PARTITION],
                commit_properties=CommitProperties(custom_metadata={"riskstream.operation": "create"}),
            )
        except (CommitFailedError, DeltaError, OSError):
            pass  # created by a concurrent writer
        dt = self._table(RESULTS)
        if dt is None:
            raise StoreError(f"table {self._uri(RESULTS)!r} could not be created")
        return dt

    @staticmethod
    def _scope_filter(job: JobRecord, *, inside: bool = True) -> pc.Expression:
        """Rows of the job's namespace inside its scope (``inside=False``: the namespace's rows outside it)."""
        scope: pc.Expression | None = None
        for column, values in (job.scope or {}).items():
            term = pc.field(column).isin(list(values))
            scope = term if scope is None else scope & term
        expr = pc.field("namespace") == job.namespace
        if inside:
            return expr if scope is None else expr & scope
        return expr & ~scope if scope is not None else expr & pc.scalar(False)

    def _date_source(self, day: date, hot: DeltaTable | None) -> DeltaTable | None:
        """The tier a reader takes ``day`` from: hot when the date is there (``hot``: that snapshot), else cold."""
        if hot is not None and day in self._dates(hot):
            return hot
        cold = self._table(RESULTS, cold=True)
        return cold if cold is not None and day in self._dates(cold) else None

    def _stored_vector_length(self, job: JobRecord, hot: DeltaTable | None) -> int | None:
        """The ``pnl_vector`` length of the job's (business_date, namespace) rows outside its scope, or None.

        None when the job owns the whole partition (no scope) or no such row has a vector. The stored rows all
        have one length (each commit was checked), so one row tells it.
        """
        if not job.scope:
            return None
        source = self._date_source(job.business_date, hot)
        if source is None or "pnl_vector" not in pa.schema(source.schema().to_arrow()).names:
            return None
        dataset = source.to_pyarrow_dataset(
            file_pruning_predicate=[("business_date", "=", job.business_date.isoformat())]
        )
        flt = self._scope_filter(job, inside=False) & pc.field("pnl_vector").is_valid()
        head = dataset.head(1, columns=["pnl_vector"], filter=flt)
        return int(pc.list_value_length(head.column(0))[0].as_py()) if head.num_rows else None

    @staticmethod
    def _check_vector_length(job: JobRecord, chunk_id: str, n: int | None, stored: int | None) -> None:
        """Refuse vectors of length ``n`` when the stored ones of the date and namespace have length ``stored``."""
        if n is not None and stored is not None and n != stored:
            raise ChunkRejectedError(
                job.job_id,
                chunk_id,
                f"field 'pnl_vector' has length {n}; the rows of {job.namespace} {job.business_date} outside "
                f"the job's scope have length {stored} (one scenario count per business date and namespace)",
                field="pnl_vector",
                value=n,
            )

    def _notify(
        self, job: JobRecord, version: int, rows: int, measures: tuple[str, ...]
    ) -> list[_notify.Delivery]:
        event = _notify.StoreEventPayload(
            job.job_id,
            job.namespace,
            job.business_date.isoformat(),
            job.scope,
            measures,
            RESULTS,
            version,
            rows,
            time.time_ns() // 1000,
        )
        deliveries = []
        if self.bus is not None:
            deliveries.append(_notify.publish(self.bus, event))
        urls = list(self.config.webhooks)
        for url, namespaces in self.jobs.webhooks():
            if (not namespaces or job.namespace in namespaces) and url not in urls:
                urls.append(url)
        deliveries.extend(_notify.post_webhook(u, event) for u in urls)
        _notify.record(self.root, event, deliveries)
        return deliveries

    # --- pre-aggregations -----------------------------------------------------------------------------

    def preaggregations(self) -> list[PreaggSpec]:
        return list(self.config.preaggregations)

    def _spec(self, name: str) -> PreaggSpec:
        for p in self.config.preaggregations:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.config.preaggregations)
        raise ConfigurationError("preaggregation", name, f"unknown (configured: {known})")

    def preagg_source_version(self, name: str) -> int | None:
        """The risk_results version the pre-aggregation ``name`` reflects in full (``None``: never built).

        The pre-aggregation is current when this equals `results_version`.
        """
        self._spec(name)
        dt = self._table(f"preagg/{name}")
        if dt is None:
            return None
        for h in dt.history(1):
            if SOURCE_KEY in h:
                return int(h[SOURCE_KEY])
        return None

    @contextmanager
    def _lock(self, name: str, *, shared: bool = False) -> Iterator[None]:
        """A file lock ``<root>/.<name>.lock`` seen by every process using this root: exclusive, or shared
        (many holders at once, none while an exclusive holder has it)."""
        with open(self.root / f".{name}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _touched_since(self, dt: DeltaTable, since: int | None) -> set[tuple[str, str | None]]:
        """(business date, namespace or None = all) partitions changed by risk_results commits after ``since``."""
        latest = dt.version()
        n = latest + 1 if since is None else latest - since
        touched: set[tuple[str, str | None]] = set()
        if n <= 0:
            return touched
        for h in dt.history(n):
            if since is not None and int(h["version"]) <= since:
                continue
            for part in json.loads(h.get(PARTS_KEY, "[]")):
                d, ns = part.split("/", 1)
                touched.add((d, None if ns == "*" else ns))
        return touched

    def refresh_preaggregations(
        self, known: Mapping[tuple[str, str | None], tuple[int, pa.Table]] | None = None
    ) -> dict[str, int]:
        """Bring every pre-aggregation up to the latest risk_results version; return name → source version.

        Rebuilds, from hot ∪ cold at that version, the partitions that commits since the last rebuild touched,
        replacing them in one transaction per pre-aggregation table. ``known`` gives the content of a partition
        as of a version (a job that just wrote it whole), used instead of reading it back when still current.
        """
        out: dict[str, int] = {}
        if not self.config.preaggregations:
            return out
        # one rebuilder at a time, so source versions stamped on the pre-aggregations only grow
        with self._lock("preagg"):
            hot = self._table(RESULTS)
            if hot is None:
                return out
            latest = hot.version()
            cold = self._table(RESULTS, cold=True)
            hot_dates = self._dates(hot)
            cache: dict[tuple[str, str | None], pa.Table] = {}
            columns = {"value", "pnl_vector"}.union(*(p.dimensions for p in self.config.preaggregations))
            for part, (version, content) in (known or {}).items():
                if version == latest:
                    cache[part] = content.select([c for c in content.column_names if c in columns])
            for spec in self.config.preaggregations:
                since = self.preagg_source_version(spec.name)
                if since is not None and since >= latest:
                    out[spec.name] = since
                    continue
                touched = self._touched_since(hot, since)
                pieces = []
                for part in sorted(touched, key=lambda p: (p[0], p[1] or "")):
                    if part not in cache:
                        cache[part] = self._partition_rows(hot, cold, hot_dates, part, columns)
                    pieces.append(preaggregate(cache[part], spec, latest))
                data = pa.concat_tables(pieces) if pieces else preagg_schema(spec).empty_table()
                predicate = " OR ".join(
                    f"(business_date = '{d}'" + (f" AND namespace = {_lit(ns)})" if ns else ")")
                    for d, ns in sorted(touched, key=lambda p: (p[0], p[1] or ""))
                )
                props = CommitProperties(custom_metadata={SOURCE_KEY: str(latest)})
                target = self._table(f"preagg/{spec.name}")
                if target is None:
                    self._write(
                        self._uri(f"preagg/{spec.name}"),
                        data,
                        mode="append",
                        partition_by=["business_date"],
                        commit_properties=props,
                    )
                else:
                    self._write(
                        target,
                        data,
                        mode="overwrite",
                        predicate=predicate or "false",
                        partition_by=["business_date"],
                        schema_mode="merge",
                        commit_properties=props,
                    )
                out[spec.name] = latest
        return out

    def _partition_rows(
        self,
        hot: DeltaTable,
        cold: DeltaTable | None,
        hot_dates: set[date],
        part: tuple[str, str | None],
        columns: set[str],
    ) -> pa.Table:
        d, ns = part
        day = date.fromisoformat(d)
        source = hot if day in hot_dates or cold is None else cold
        dataset = source.to_pyarrow_dataset(file_pruning_predicate=[("business_date", "=", d)])
        flt = pc.field("namespace") == ns if ns else None
        return dataset.to_table(columns=[c for c in dataset.schema.names if c in columns], filter=flt)

    # --- reading --------------------------------------------------------------------------------------

    @staticmethod
    def _dates(dt: DeltaTable) -> set[date]:
        return {date.fromisoformat(p["business_date"]) for p in dt.partitions()}

    def _resolve(self, table: str) -> tuple[str, bool]:
        if table in (RESULTS, MARKET, LIVE):
            return table, table == RESULTS
        name = (
            table.split(":", 1)[-1].split("/", 1)[-1] if table.startswith(("preagg:", "preagg/")) else table
        )
        self._spec(name)
        return f"preagg/{name}", False

    def _as_of(
        self, name: str, cold: bool, version: int | None, timestamp: datetime | None
    ) -> DeltaTable | None:
        dt = self._table(name, cold)
        if dt is None:
            return None
        try:
            if timestamp is not None:
                dt.load_as_version(timestamp)
            elif version is not None:
                dt.load_as_version(version)
        except (DeltaError, ValueError, OSError) as exc:
            if cold or (timestamp is not None and "earliest" in str(exc).lower()):
                return None
            raise StoreError(
                f"table {name!r} has no version {version if version is not None else timestamp}: {exc}"
            ) from exc
        return dt

    def _version_time(self, version: int) -> datetime:
        dt = self._table(RESULTS)
        assert dt is not None
        for h in dt.history(max(1, dt.version() - version + 1)):
            if int(h["version"]) == version:
                return datetime.fromtimestamp(h["timestamp"] / 1000, UTC)
        raise StoreError(f"table 'risk_results' has no version {version}")

    def register(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str = RESULTS,
        *,
        view: str | None = None,
        version: int | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        """Register a DuckDB view over ``table`` (hot ∪ cold for risk_results), time-travelled if asked.

        ``version`` is a risk_results (hot) version; the cold tier is read as of that version's commit time.
        ``timestamp`` reads every tier as of that instant. A business date present in both tiers (a crash in the
        middle of `tier`) is read from the hot tier only. Preaggregations: ``table="preagg:<name>"`` or the name.
        Returns the view's name.
        """
        name, tiered = self._resolve(table)
        view = view or name.split("/")[-1]
        if version is not None and timestamp is not None:
            raise ConfigurationError("version", version, "give a version or a timestamp, not both")
        hot = self._as_of(name, False, version, timestamp)
        parts: list[str] = []
        tag = re.sub(r"\W", "_", view)
        if hot is not None:
            con.register(f"__rs_{tag}_hot", hot.to_pyarrow_dataset())
            parts.append(f'SELECT * FROM "__rs_{tag}_hot"')
        if tiered:
            when = timestamp
            if version is not None:
                when = self._version_time(version) + timedelta(milliseconds=1)
            cold = self._as_of(name, True, None, when) if when is not None else self._table(name, True)
            if cold is not None:
                con.register(f"__rs_{tag}_cold", cold.to_pyarrow_dataset())
                dates = sorted(self._dates(hot)) if hot is not None else []
                where = (
                    " WHERE business_date NOT IN (" + ", ".join(f"DATE '{d}'" for d in dates) + ")"
                    if dates
                    else ""
                )
                parts.append(f'SELECT * FROM "__rs_{tag}_cold"{where}')
        if not parts:
            con.register(f"__rs_{tag}_empty", self._empty(name))
            parts.append(f'SELECT * FROM "__rs_{tag}_empty"')
        con.execute(f'CREATE OR REPLACE TEMP VIEW "{view}" AS ' + " UNION ALL BY NAME ".join(parts))
        return view

    def _empty(self, name: str) -> pa.Table:
        if name == RESULTS:
            return pa.schema([*MANDATORY.items(), *OPTIONAL.items()]).empty_table()
        if name == MARKET:
            return _MARKET_SCHEMA.empty_table()
        if name == LIVE:
            return _LIVE_SCHEMA.empty_table()
        return preagg_schema(self._spec(name.split("/", 1)[1])).empty_table()

    def history(self, table: str = RESULTS, *, cold: bool = False, limit: int | None = None) -> list[dict]:
        """Versions of ``table``, newest first: version, timestamp (UTC), operation, job id, rows added."""
        name, _ = self._resolve(table)
        dt = self._table(name, cold)
        if dt is None:
            return []
        out = []
        for h in dt.history(limit):
            metrics = h.get("operationMetrics", {})
            out.append(
                {
                    "version": int(h["version"]),
                    "timestamp": datetime.fromtimestamp(h["timestamp"] / 1000, UTC),
                    "operation": h.get("operation"),
                    "job_id": h.get(JOB_KEY),
                    "rows_added": metrics.get("num_added_rows"),
                    "predicate": h.get("operationParameters", {}).get("predicate"),
                }
            )
        return out

    # --- tiers and retention --------------------------------------------------------------------------

    def tier(self, today: date | None = None) -> TierResult:
        """Move risk_results partitions older than ``hot_days`` business days before ``today`` to the cold tier.

        Per date: copy to cold (replace-where of that date, so a repeat is harmless), then delete from hot. A
        crash in between leaves the date in both tiers; readers prefer hot, and the next run finishes the move.
        """
        today = today or date.today()
        cutoff = np.busday_offset(np.datetime64(today, "D"), -self.config.hot_days, roll="backward")
        cutoff_date = cutoff.astype(object)
        # the lock: a commit that carried a cold date into hot drops the cold copy only while the date is hot
        with self._lock("tier"):
            moved, rows = self._tier_dates(cutoff_date)
        if moved:
            self.refresh_preaggregations()
        return TierResult(tuple(moved), rows, cutoff_date)

    def _tier_dates(self, cutoff: date) -> tuple[list[date], int]:
        """Copy each hot date before ``cutoff`` to cold, then delete it from hot; the dates moved and rows."""
        hot = self._table(RESULTS)
        if hot is None:
            return [], 0
        moved = sorted(d for d in self._dates(hot) if d < cutoff)
        rows = 0
        for d in moved:
            data = hot.to_pyarrow_dataset(
                file_pruning_predicate=[("business_date", "=", d.isoformat())]
            ).to_table()
            rows += data.num_rows
            props = CommitProperties(
                custom_metadata={"riskstream.operation": "tier", PARTS_KEY: json.dumps([f"{d}/*"])}
            )
            cold = self._table(RESULTS, cold=True)
            if cold is None:
                self._write(
                    self._uri(RESULTS, cold=True),
                    data,
                    mode="append",
                    partition_by=[RESULTS_PARTITION],
                    schema_mode="merge",
                    commit_properties=props,
                )
            else:
                self._write(
                    cold,
                    data,
                    mode="overwrite",
                    predicate=f"business_date = '{d}'",
                    partition_by=[RESULTS_PARTITION],
                    schema_mode="merge",
                    commit_properties=props,
                )
            self._delete(RESULTS, f"business_date = '{d}'", props)
        return moved, rows

    def _delete(self, name: str, predicate: str, props: CommitProperties, cold: bool = False) -> None:
        for _ in range(self.config.commit_retries):
            dt = self._table(name, cold)
            if dt is None:
                return
            try:
                dt.delete(predicate, commit_properties=props)
                return
            except (CommitFailedError, DeltaError) as exc:
                if not _is_conflict(exc):
                    raise StoreError(f"delete {predicate!r} from {name!r} failed: {exc}") from exc
                time.sleep(0.05)
        raise CommitConflictError(f"delete {predicate!r} from {name!r} kept conflicting")

    def vacuum(
        self, today: date | None = None, *, dry_run: bool = False, retention_hours: int | None = None
    ) -> VacuumResult:
        """Apply the retention policy: delete partitions older than ``retention_years`` (both tiers), then remove
        data files no longer referenced for ``retention_hours`` (default ``vacuum_retention_hours``)."""
        today = today or date.today()
        cutoff = _years_before(today, self.config.retention_years)
        expired: set[date] = set()
        for cold in (False, True):
            dt = self._table(RESULTS, cold)
            if dt is None:
                continue
            old = sorted(d for d in self._dates(dt) if d < cutoff)
            expired.update(old)
            if old and not dry_run:
                props = CommitProperties(
                    custom_metadata={
                        "riskstream.operation": "retention",
                        PARTS_KEY: json.dumps([f"{d}/*" for d in old]),
                    }
                )
                self._delete(RESULTS, f"business_date < '{cutoff}'", props, cold)
        if expired and not dry_run:
            self.refresh_preaggregations()
        hours = self.config.vacuum_retention_hours if retention_hours is None else retention_hours
        files: list[str] = []
        names = [RESULTS, MARKET, LIVE, *(f"preagg/{p.name}" for p in self.config.preaggregations)]
        for name in names:
            for cold in (False, True) if name == RESULTS else (False,):
                dt = self._table(name, cold)
                if dt is not None:
                    files += dt.vacuum(
                        retention_hours=hours, dry_run=dry_run, enforce_retention_duration=False
                    )
        return VacuumResult(tuple(sorted(expired)), tuple(files), dry_run, cutoff)

    # --- market history and live snapshots ------------------------------------------------------------

    def write_market_history(self, frame: pd.DataFrame) -> int:
        """Store daily factor levels (index: dates, columns: factor ids) as rows (date, factor_id, value).

        Rows for a (date, factor_id) already stored are replaced (merge); NaN levels are left out.
        Returns the number of rows written.
        """
        if frame.empty:
            return 0
        stacked: pd.Series = frame.rename_axis(index="date", columns="factor_id").stack(future_stack=True)  # type: ignore[assignment]
        long = stacked.rename("value").dropna().reset_index()
        long["date"] = pd.to_datetime(long["date"]).dt.date
        table = pa.Table.from_pandas(long, schema=_MARKET_SCHEMA, preserve_index=False)
        dt = self._table(MARKET)
        if dt is None:
            self._write(self._uri(MARKET), table, mode="append")
        else:
            (
                dt.merge(
                    table, "t.date = s.date AND t.factor_id = s.factor_id", source_alias="s", target_alias="t"
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
        return table.num_rows

    def append_live_snapshots(self, snapshots: Sequence[RiskSnapshot]) -> int:
        """Append one row per (snapshot, measure): business_date (UTC date of as_of), as_of, node, measure, value,
        method, sequence. Returns the number of rows appended."""
        rows: dict[str, list[Any]] = {k: [] for k in _LIVE_SCHEMA.names}
        for s in snapshots:
            at = datetime.fromtimestamp(s.as_of_us / 1e6, UTC)
            for measure, value in s.measures.items():
                rows["business_date"].append(at.date())
                rows["as_of"].append(s.as_of_us)
                rows["node"].append(s.node)
                rows["measure"].append(measure)
                rows["value"].append(float(value))
                rows["method"].append(s.method)
                rows["sequence"].append(s.sequence)
        if not rows["node"]:
            return 0
        arrays = [pa.array(rows[f.name], f.type if f.name != "as_of" else pa.int64()) for f in _LIVE_SCHEMA]
        arrays[1] = arrays[1].cast(pa.timestamp("us", tz="UTC"))
        table = pa.Table.from_arrays(arrays, schema=_LIVE_SCHEMA)
        self._write(
            self._uri(LIVE), table, mode="append", partition_by=["business_date"], schema_mode="merge"
        )
        return table.num_rows

    def read_market_history(self, start: date | None = None, end: date | None = None) -> pd.DataFrame:
        """Daily factor levels stored by `write_market_history`, as a frame (index: dates, columns: factor ids),
        from ``start`` to ``end`` inclusive (None = unbounded) — the scenario source and what a replay feeds."""
        dt = self._table(MARKET)
        if dt is None:
            return pd.DataFrame()
        filters: list[tuple[str, str, Any]] = []
        if start is not None:
            filters.append(("date", ">=", start))
        if end is not None:
            filters.append(("date", "<=", end))
        expr = None
        for column, op, value in filters:
            term = ds.field(column) >= value if op == ">=" else ds.field(column) <= value
            expr = term if expr is None else expr & term
        long = dt.to_pyarrow_dataset().to_table(filter=expr).to_pandas()
        if long.empty:
            return pd.DataFrame()
        frame = long.pivot(index="date", columns="factor_id", values="value").sort_index()
        frame.index = pd.DatetimeIndex(frame.index).as_unit("us")  # as portfolio files load it
        frame.columns.name = None
        frame.index.name = None
        return frame

    def scan(self, table: str = RESULTS) -> ds.Dataset:
        """The latest hot data of ``table`` as a pyarrow dataset (for polars, pandas or Arrow readers)."""
        name, _ = self._resolve(table)
        dt = self._table(name)
        return dt.to_pyarrow_dataset() if dt is not None else ds.dataset(self._empty(name))


_MARKET_SCHEMA = pa.schema([("date", pa.date32()), ("factor_id", pa.string()), ("value", pa.float64())])
_LIVE_SCHEMA = pa.schema(
    [
        ("business_date", pa.date32()),
        ("as_of", pa.timestamp("us", tz="UTC")),
        ("node", pa.string()),
        ("measure", pa.string()),
        ("value", pa.float64()),
        ("method", pa.string()),
        ("sequence", pa.int64()),
    ]
)
