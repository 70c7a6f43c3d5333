"""Per-store query state kept between reports: one DuckDB database, reusable cursors, cached views and tables,
principals and the audit writer.

A report's own work (one GROUP BY over a small pre-aggregation) takes a millisecond or two; opening a DuckDB
database, reading a Delta log, describing a view or writing an audit row each cost as much or more. So, per store:

* **one in-memory DuckDB database**; each report runs on a cursor taken from a pool (a cursor is a connection
  of its own, so concurrent reports never share one) and handed back afterwards;
* **views per (table, version)** registered on a cursor once, with their schema (never described twice);
* **pre-aggregations loaded into DuckDB memory per source version** (they are small: one row per grain cell),
  shared by every cursor; a new source version loads a new table and the oldest are dropped;
* the resolved ``latest`` business date per (table version, namespace, row filter);
* **principals per user for** :data:`PRINCIPAL_TTL_S` seconds (a role change reaches reports within that time);
* **audit records written by a background thread**: ``run_report`` queues its record and returns; the queue is
  written in order by the thread, by :func:`flush_audit`, by :func:`close_query_session` and at interpreter
  exit, so no record is dropped. A record the catalog refuses to store is retried and, if the catalog stays
  unavailable at exit, logged in full at ERROR level.

Nothing here changes an answer: every cache is keyed by the table version it was read from (or expires, for
principals), and the store's version is read on every report.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import duckdb

__all__ = [
    "PRINCIPAL_TTL_S",
    "AuditWriter",
    "Cursor",
    "Session",
    "close_query_session",
    "flush_audit",
    "results_version",
    "session",
]

#: Seconds a user's principal (roles, row filter, masks) is reused before the catalog is asked again.
PRINCIPAL_TTL_S = 5.0
#: Views kept registered per cursor (older table versions are unregistered first).
VIEWS_PER_CURSOR = 8
#: Pre-aggregation tables kept in memory per grain (older source versions are dropped).
PREAGG_VERSIONS_KEPT = 2

_log = logging.getLogger(__name__)
_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")


def results_version(store: Any) -> int:
    """The latest risk_results version, from a listing of the Delta log's commit files when the table is on a
    local disk (tens of microseconds, against milliseconds to load the table); else ``store.results_version()``.

    Delta commits are published atomically (written aside, then renamed to ``<version>.json``), so the highest
    such file is the table's latest version — the figure ``DeltaTable(...).version()`` reports.
    """
    root = getattr(store, "tables_root", None)
    if isinstance(root, str) and "://" not in root:
        best = -1
        try:
            with os.scandir(os.path.join(root, "risk_results", "_delta_log")) as entries:
                for entry in entries:
                    found = _COMMIT_FILE.match(entry.name)
                    if found is not None:
                        best = max(best, int(found.group(1)))
        except FileNotFoundError:
            best = -1
        if best >= 0:
            return best
    return int(store.results_version())


class AuditWriter:
    """Writes audit records to ``catalog.audit`` in order, from a background thread; never drops one."""

    def __init__(self, catalog: Any, *, linger_s: float = 0.02):
        self.catalog = catalog
        self.linger_s = linger_s
        self._pending: deque[tuple[str, str, dict[str, Any], int | None]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._write_lock = threading.Lock()  # one writer at a time keeps the records in order
        self._thread: threading.Thread | None = None
        self._closed = False
        _WRITERS.add(self)

    def submit(self, user: str, action: str, detail: Mapping[str, Any], rows: int | None) -> None:
        """Queue one record (returns at once); written within ``linger_s`` or at the next flush."""
        with self._lock:
            self._pending.append((user, action, dict(detail), rows))
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="riskstream-audit", daemon=True)
                self._thread.start()
            self._wake.notify()
        if self._closed:
            self.flush()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Write every queued record now (in the caller's thread); return how many were written.

        Raises the catalog's error if a record cannot be written (it stays queued, first in line).
        """
        written = 0
        with self._write_lock:
            while True:
                with self._lock:
                    if not self._pending:
                        return written
                    record = self._pending[0]
                self.catalog.audit(*record)
                with self._lock:
                    self._pending.popleft()
                written += 1

    def _run(self) -> None:
        backoff = 0.05
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
            time.sleep(self.linger_s)  # let a burst of reports queue up, then write them together
            try:
                self.flush()
                backoff = 0.05
            except Exception:  # the catalog is unavailable: keep the records and retry
                _log.exception("audit records could not be written yet; retrying in %.2f s", backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def close(self, attempts: int = 6) -> None:
        """Write what is queued (retrying ``attempts`` times over about 3 s) and stop the thread; later records
        are written synchronously. Raises the catalog's error, after logging each unwritten record in full."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        delay = 0.1
        for attempt in range(attempts):
            try:
                self.flush()
                return
            except Exception:
                if attempt == attempts - 1:
                    with self._lock:
                        lost = list(self._pending)
                    for record in lost:
                        _log.error("audit record not written (catalog unavailable): %r", record)
                    raise
                time.sleep(delay)
                delay *= 2


_WRITERS: weakref.WeakSet[AuditWriter] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for writer in list(_WRITERS):
        try:
            writer.close()
        except Exception:  # already logged record by record; other writers still get their turn
            pass


class Cursor:
    """One DuckDB cursor of a session's database with the views registered on it, by (table, version) key."""

    def __init__(self, con: duckdb.DuckDBPyConnection, number: int):
        self.con = con
        self.number = number
        self.views: OrderedDict[Hashable, tuple[str, dict[str, str], int | None]] = OrderedDict()
        self._serial = 0

    def view(
        self, key: Hashable, register: Callable[[duckdb.DuckDBPyConnection, str], tuple[str, int | None]]
    ) -> tuple[str, dict[str, str], int | None]:
        """The view for ``key`` (registered by ``register(con, name) -> (view, version)`` the first time)."""
        hit = self.views.get(key)
        if hit is not None:
            self.views.move_to_end(key)
            return hit
        self._serial += 1
        name, version = register(self.con, f"rr_{self.number}_{self._serial}")
        schema = describe(self.con, name)
        self.views[key] = (name, schema, version)
        while len(self.views) > VIEWS_PER_CURSOR:
            _, (old, _, _) = self.views.popitem(last=False)
            self.con.execute(f'DROP VIEW IF EXISTS "{old}"')
        return self.views[key]


def describe(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    """Column name -> DuckDB type of a view or table."""
    rows = con.execute(f'DESCRIBE "{relation}"').fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


class Session:
    """Query state of one store (see the module docstring); get it with :func:`session`."""

    def __init__(self, catalog: Any):
        # no progress bar: a long scan must not draw on the caller's terminal
        self.db = duckdb.connect()
        self.db.execute("SET enable_progress_bar = false")
        self.audit = AuditWriter(catalog)
        self._idle: list[Cursor] = []
        self._cursors = 0
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._principals: dict[str, tuple[float, Any]] = {}
        self._latest: dict[Hashable, Any] = {}
        self.preaggs: dict[tuple[str, int], tuple[str, dict[str, str]]] = {}
        self.closed = False

    @contextmanager
    def cursor(self) -> Iterator[Cursor]:
        """A cursor for one report (its own DuckDB connection to the session's database)."""
        with self._lock:
            if self.closed:
                raise RuntimeError("the query session of this store is closed")
            if self._idle:
                cur = self._idle.pop()
            else:
                self._cursors += 1
                cur = Cursor(self.db.cursor(), self._cursors)
        try:
            yield cur
        finally:
            with self._lock:
                if self.closed:
                    cur.con.close()
                else:
                    self._idle.append(cur)

    def principal(self, catalog: Any, user: str) -> Any:
        """``catalog.principal(user)``, reused for :data:`PRINCIPAL_TTL_S` seconds (refusals are not kept)."""
        now = time.monotonic()
        hit = self._principals.get(user)
        if hit is not None and now - hit[0] < PRINCIPAL_TTL_S:
            return hit[1]
        principal = catalog.principal(user)
        self._principals[user] = (now, principal)
        return principal

    def forget_principals(self) -> None:
        self._principals.clear()

    def latest(self, key: Hashable, resolve: Callable[[], Any]) -> Any:
        """The ``latest`` business date for ``key`` (table version, namespace, row filter), resolved once."""
        if key not in self._latest:
            if len(self._latest) > 1024:
                self._latest.clear()
            self._latest[key] = resolve()
        return self._latest[key]

    def preagg(
        self, name: str, version: int, load: Callable[[duckdb.DuckDBPyConnection, str], bool]
    ) -> tuple[str, dict[str, str]] | None:
        """The in-memory table of pre-aggregation ``name`` built from risk_results ``version``.

        ``load(con, table)`` creates the table from the store and returns False when the store's
        pre-aggregation is no longer (or not yet) built from ``version``; then None is returned and nothing kept.
        """
        key = (name, version)
        hit = self.preaggs.get(key)
        if hit is not None:
            return hit
        with self._load_lock:
            hit = self.preaggs.get(key)
            if hit is not None:
                return hit
            table = f"preagg_{name}_v{version}"
            con = self.db.cursor()
            try:
                if not load(con, table):
                    con.execute(f'DROP TABLE IF EXISTS "{table}"')
                    return None
                hit = (table, describe(con, table))
                self.preaggs[key] = hit
                older = sorted(v for n, v in self.preaggs if n == name and v < version)
                for v in older[: max(0, len(older) - PREAGG_VERSIONS_KEPT + 1)]:
                    old, _ = self.preaggs.pop((name, v))
                    con.execute(f'DROP TABLE IF EXISTS "{old}"')
            finally:
                con.close()
            return hit

    def close(self) -> None:
        """Flush the audit queue and close the DuckDB database."""
        try:
            self.audit.close()
        finally:
            with self._lock:
                self.closed = True
                for cur in self._idle:
                    cur.con.close()
                self._idle.clear()
            self.db.close()


_SESSIONS: weakref.WeakKeyDictionary[Any, Session] = weakref.WeakKeyDictionary()
_SESSIONS_LOCK = threading.Lock()


def session(store: Any) -> Session:
    """The query session of ``store`` (created on first use; lives as long as the store object)."""
    with _SESSIONS_LOCK:
        found = _SESSIONS.get(store)
        if found is None or found.closed:
            found = Session(store.catalog)
            _SESSIONS[store] = found
        return found


def flush_audit(store: Any) -> int:
    """Write the store's queued audit records now; return how many were written."""
    with _SESSIONS_LOCK:
        found = _SESSIONS.get(store)
    return 0 if found is None else found.audit.flush()


def close_query_session(store: Any) -> None:
    """Flush the store's audit records and release its DuckDB database and caches (before ``store.close()``)."""
    with _SESSIONS_LOCK:
        found = _SESSIONS.pop(store, None)
    if found is not None:
        found.close()
