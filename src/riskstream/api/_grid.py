"""The ad-hoc pivot grid: a Perspective server per user, holding only what the risk store's reports give that user.

``WS /grid/ws?access_token=<JWT>`` speaks Perspective's binary protocol (perspective-python 5.5.1; the browser's
``@perspective-dev/client`` 5.5.1, ``perspective.websocket(url)``). Each user has their own
`perspective.Server` whose tables are filled from `riskstream.query.run_report` run *as that user*, so the
store's row filter and column masks are applied before any row reaches a Perspective table; no table is shared
between users and nothing is filtered in the browser.

Tables (both read at one ``risk_results`` version, so they agree):

``risk``
    The latest business date the user can see, long format: one row per (desk, book, trader, instrument_type,
    currency, counterparty, sector, region) cell and measure, ``value`` = the sum of the cell's values of that
    measure (reporting currency). The measures are additive (``pv``, ``exposure`` and the Euler contributions
    ``var_99_1d_contribution`` / ``es_975_1d_contribution``, which sum to the firm's 99 % VaR / 97.5 % ES over
    the 1-day horizon, positive = loss), so the grid's sums over any grouping are meaningful. A column the user's
    roles mask (``counterparty``, ``sector``, ``region`` for the junior prime-brokerage role) is not asked of the
    report (the report refuses masked dimensions) and is null in every row.
``diff``
    The day-over-day diff report per (desk, book, trader): for each measure ``<m>_sum_left`` (the previous
    business date the user can see), ``<m>_sum_right`` (the latest), ``<m>_sum_change`` (right − left) and
    ``<m>_sum_pct_change`` (change ÷ |left| × 100), plus ``side`` (``both``/``left``/``right``).

VaR and ES of a node are not additive, so they are not in the grid (the reports API's ``hierarchy`` kind
answers them from summed scenario vectors).

Refresh: on connect and every ``grid_refresh_s`` seconds (``ApiConfig.extra``, default 5) while a socket is
open, the user's grid is reloaded (``Table.replace``, so open views update in place) when the store's
``risk_results`` version or the user's entitlements changed; the token is checked again at the same time
(an expired token ends the socket with 4401). A user's server is dropped ``grid_idle_s`` seconds (default 600)
after their last socket closed. Every Perspective call runs on one thread of the grid
(`GridRegistry.run`), so the engine never sees two threads at once.

``GET /grid/tables`` lists the caller's tables (name, rows, columns, version, business date).
Socket close codes: 4401 (no or bad credentials), 4403 (no role in the store), 1011 (the reports failed).
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import pyarrow as pa
from fastapi import APIRouter, WebSocket
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ..errors import AccessDeniedError, AuthenticationError, RiskstreamError
from ..query import Report, run_report
from ..store import SAMPLE_MEASURES, Principal
from ._context import ApiContext, context
from ._deps import Caller, Ctx
from ._identity import Identity

__all__ = [
    "DIFF_DIMENSIONS",
    "RISK_DIMENSIONS",
    "TABLES",
    "GridRegistry",
    "GridTable",
    "grid_report",
    "registry",
    "router",
]

log = logging.getLogger("riskstream.api.grid")

T = TypeVar("T")

#: Row dimensions of the ``risk`` table (finest grain below the trade the reports give).
RISK_DIMENSIONS = (
    "desk",
    "book",
    "trader",
    "instrument_type",
    "currency",
    "counterparty",
    "sector",
    "region",
)
#: Row dimensions of the ``diff`` table (the trader grain: answered from the store's pre-aggregation).
DIFF_DIMENSIONS = ("desk", "book", "trader")
#: The grid's tables, in the order they are listed.
TABLES = ("risk", "diff")
#: WebSocket close codes of the grid socket.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_ERROR = 1011


def grid_report(
    table: str, dimensions: tuple[str, ...], measures: tuple[str, ...], as_of: int | None
) -> Report:
    """The report behind a grid table: ``dimensions`` down the side and the sum of each measure; ``risk`` on the
    latest business date, ``diff`` from the previous business date (left) to the latest (right)."""
    from ..query import load_report

    spec: dict[str, Any] = {
        "name": f"grid_{table}",
        "rows": list(dimensions),
        "measures": [{"measure": m, "agg": "sum"} for m in measures],
    }
    if table == "diff":
        spec |= {"kind": "diff", "left": {"business_date": "previous"}, "right": {"business_date": "latest"}}
    else:
        spec |= {"kind": "pivot", "business_date": "latest"}
    if as_of is not None:
        spec["as_of"] = as_of
    return load_report(spec)


def _visible(dimensions: tuple[str, ...], principal: Principal) -> tuple[str, ...]:
    return tuple(d for d in dimensions if d not in principal.masked_columns)


def _with_columns(table: pa.Table, dimensions: tuple[str, ...]) -> pa.Table:
    """``table`` with every dimension (masked ones as all-null strings) first, in ``dimensions`` order."""
    n = table.num_rows
    dims = [
        table.column(d).cast(pa.string()) if d in table.column_names else pa.nulls(n, pa.string())
        for d in dimensions
    ]
    rest = [c for c in table.column_names if c not in dimensions]
    return pa.table(dims + [table.column(c) for c in rest], names=list(dimensions) + rest)


def risk_rows(result: pa.Table, measures: tuple[str, ...]) -> pa.Table:
    """The ``risk`` pivot's wide result in long format: the dimensions, ``measure``, ``value`` (null values left
    out: a cell without rows of that measure)."""
    parts = []
    dims = list(RISK_DIMENSIONS)
    for m in measures:
        label = f"{m}_sum"
        values = result.column(label).cast(pa.float64())
        keep = values.is_valid()
        part = result.select(dims).filter(keep)
        part = part.append_column("measure", pa.array([m] * part.num_rows, pa.string()))
        parts.append(part.append_column("value", values.filter(keep)))
    if not parts:
        return _empty(risk_schema())
    return pa.concat_tables(parts)


def risk_schema() -> pa.Schema:
    return pa.schema(
        [(d, pa.string()) for d in RISK_DIMENSIONS] + [("measure", pa.string()), ("value", pa.float64())]
    )


def diff_schema(measures: tuple[str, ...]) -> pa.Schema:
    figures = [
        (f"{m}_sum_{part}", pa.float64())
        for m in measures
        for part in ("left", "right", "change", "pct_change")
    ]
    return pa.schema([(d, pa.string()) for d in DIFF_DIMENSIONS] + [("side", pa.string())] + figures)


def _empty(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns and types (missing figures as nulls)."""
    n = table.num_rows
    cols = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(n, f.type)
        for f in schema
    ]
    return pa.table(cols, schema=schema)


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _perspective_type(t: pa.DataType) -> str:
    return "float" if pa.types.is_floating(t) else "string"


@dataclass(frozen=True)
class GridData:
    """The user's tables as Arrow, read at one ``risk_results`` version."""

    tables: dict[str, pa.Table]
    version: int
    business_date: date | None


def build_grid_data(store: Any, user: str, principal: Principal, measures: tuple[str, ...]) -> GridData:
    """Run the grid's reports for ``user`` (their entitlements applied by `run_report`) at the store's latest
    ``risk_results`` version; empty tables before the first commit."""
    version = store.results_version()
    if version < 0:
        empty = {"risk": _empty(risk_schema()), "diff": _empty(diff_schema(measures))}
        return GridData(empty, version, None)
    risk = run_report(
        store, grid_report("risk", _visible(RISK_DIMENSIONS, principal), measures, version), user
    )
    diff = run_report(
        store, grid_report("diff", _visible(DIFF_DIMENSIONS, principal), measures, version), user
    )
    risk_long = risk_rows(_with_columns(risk.table, RISK_DIMENSIONS), measures)
    diff_table = _conform(_with_columns(diff.table, DIFF_DIMENSIONS), diff_schema(measures))
    return GridData(
        {"risk": _conform(risk_long, risk_schema()), "diff": diff_table}, version, risk.business_date
    )


def _fingerprint(principal: Principal) -> tuple[Any, ...]:
    clauses = principal.row_clauses or ()
    return (
        principal.roles,
        principal.masked_columns,
        tuple(tuple(sorted((k, tuple(sorted(map(str, v)))) for k, v in c.items())) for c in clauses),
    )


@dataclass
class UserGrid:
    """One user's Perspective server, its tables and what they were loaded from."""

    user: str
    server: Any
    client: Any
    tables: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)
    loaded: tuple[Any, ...] | None = None  # (results version, principal fingerprint)
    version: int | None = None
    business_date: date | None = None
    sockets: int = 0
    last_used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


class GridRegistry:
    """The per-user Perspective servers of one service (``ctx.extras["grid"]``).

    Parameters
    ----------
    ctx
        The service context: its store, authenticator and metrics.
    measures
        Measures of the grid's tables (default `riskstream.store.SAMPLE_MEASURES`, what EOD jobs write).
    idle_s
        Seconds a user's server is kept after their last socket closed.
    """

    def __init__(self, ctx: ApiContext, measures: tuple[str, ...] = SAMPLE_MEASURES, idle_s: float = 600.0):
        self.ctx = ctx
        self.measures = tuple(measures)
        self.idle_s = idle_s
        self._grids: dict[str, UserGrid] = {}
        self._lock = threading.Lock()
        # one thread for every Perspective call: the engine's callbacks re-enter Python, so no two threads call in
        self._engine = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perspective")
        self._closed = False
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_every, name="grid-sweeper", daemon=True)
        self._sweeper.start()

    def _sweep_every(self) -> None:
        period = max(1.0, self.idle_s / 4)
        while not self._stop.wait(period):
            try:
                self.sweep()
            except Exception:  # a sweep that failed leaves the servers for the next one
                log.exception("grid sweep failed")

    # -- the Perspective thread ---------------------------------------------------------------------------
    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the Perspective thread and wait for it (from any thread but that one)."""
        return self._engine.submit(fn, *args).result()

    async def arun(self, fn: Callable[..., T], *args: Any) -> T:
        """`run` for coroutines: awaits the Perspective thread without blocking the event loop."""
        return await asyncio.wrap_future(self._engine.submit(fn, *args))

    # -- grids --------------------------------------------------------------------------------------------
    def grid(self, user: str) -> UserGrid:
        """The user's grid (a new, empty Perspective server the first time)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the grid is closed")
            grid = self._grids.get(user)
            if grid is None:
                grid = self.run(self._new_grid, user)
                self._grids[user] = grid
            grid.last_used = time.monotonic()
            return grid

    def _new_grid(self, user: str) -> UserGrid:
        import perspective

        server = perspective.Server()
        client = server.new_local_client()
        grid = UserGrid(user=user, server=server, client=client)
        schemas = {"risk": risk_schema(), "diff": diff_schema(self.measures)}
        for name in TABLES:
            schema = schemas[name]
            grid.tables[name] = client.table({f.name: _perspective_type(f.type) for f in schema}, name=name)
            grid.rows[name] = 0
            grid.columns[name] = schema.names
        return grid

    def ensure_current(self, who: Identity) -> UserGrid:
        """The caller's grid, reloaded first when the store's version or the caller's entitlements changed.

        Blocking (reports run here): call from a worker thread. Raises AccessDeniedError for a user without role.
        """
        self.sweep()
        principal: Principal = self.ctx.auth.principal(who)
        grid = self.grid(who.user)
        key = (self.ctx.store.results_version(), _fingerprint(principal))
        if grid.loaded == key:
            return grid
        with grid.lock:
            if grid.loaded == key:
                return grid
            started = time.perf_counter()
            data = build_grid_data(self.ctx.store, who.user, principal, self.measures)
            self.run(self._apply, grid, data)
            grid.loaded = (data.version, key[1])
            elapsed = time.perf_counter() - started
            self.ctx.metrics.query.labels("grid", "/grid/ws").observe(elapsed)
            log.info(
                "grid of %s loaded at version %s: %s (%.0f ms)",
                who.user,
                data.version,
                ", ".join(f"{k} {v} rows" for k, v in grid.rows.items()),
                elapsed * 1000,
            )
        return grid

    def _apply(self, grid: UserGrid, data: GridData) -> None:
        for name, table in data.tables.items():
            grid.tables[name].replace(_ipc(table))
            grid.rows[name] = table.num_rows
            grid.columns[name] = table.column_names
        grid.version = data.version
        grid.business_date = data.business_date

    def attach(self, grid: UserGrid) -> None:
        with self._lock:
            grid.sockets += 1
            grid.last_used = time.monotonic()

    def detach(self, grid: UserGrid) -> None:
        with self._lock:
            grid.sockets -= 1
            grid.last_used = time.monotonic()

    def sweep(self, now: float | None = None) -> list[str]:
        """Drop the servers of users with no socket for ``idle_s`` seconds; returns their names."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [
                u
                for u, g in self._grids.items()
                if g.sockets <= 0 and now - g.last_used > self.idle_s and not g.lock.locked()
            ]
            dropped = [self._grids.pop(u) for u in idle]
        for grid in dropped:
            self._delete(grid)
        return idle

    def users(self) -> list[str]:
        with self._lock:
            return sorted(self._grids)

    def _delete(self, grid: UserGrid) -> None:
        def delete() -> None:
            for table in grid.tables.values():
                try:
                    table.delete()
                except Exception as exc:  # a table with views of a closing session: dropped with its server
                    log.debug("grid table of %s not deleted: %s", grid.user, exc)

        try:
            self.run(delete)
        except RuntimeError:  # the engine thread is already shut down
            pass

    def close(self) -> None:
        """Drop every server and stop the Perspective thread (the app's shutdown)."""
        self._stop.set()
        with self._lock:
            self._closed = True
            grids = list(self._grids.values())
            self._grids.clear()
        for grid in grids:
            self._delete(grid)
        self._engine.shutdown(wait=True)
        if self._sweeper is not threading.current_thread():
            self._sweeper.join(5)


_REGISTRY_LOCK = threading.Lock()


def registry(ctx: ApiContext) -> GridRegistry:
    """The service's `GridRegistry` (made on first use; closed with the app through ``ctx.extras["close"]``)."""
    with _REGISTRY_LOCK:
        reg = ctx.extras.get("grid")
        if reg is None:
            extra = ctx.config.extra
            reg = GridRegistry(
                ctx,
                measures=tuple(extra.get("grid_measures", SAMPLE_MEASURES)),
                idle_s=float(extra.get("grid_idle_s", 600.0)),
            )
            ctx.extras["grid"] = reg
            ctx.extras.setdefault("close", []).append(reg.close)
        assert isinstance(reg, GridRegistry)
        return reg


# -- HTTP ---------------------------------------------------------------------------------------------------

router = APIRouter(prefix="/grid", tags=["grid"])


class GridTable(BaseModel):
    """One table of the caller's grid."""

    name: str
    rows: int
    columns: list[str]
    version: int | None
    business_date: date | None


@router.get(
    "/tables",
    summary="The caller's pivot-grid tables (risk, diff) with their row counts.",
    response_model=list[GridTable],
)
def grid_tables(ctx: Ctx, who: Caller) -> list[GridTable]:
    grid = registry(ctx).ensure_current(who)
    return [
        GridTable(
            name=name,
            rows=grid.rows[name],
            columns=grid.columns[name],
            version=grid.version,
            business_date=grid.business_date,
        )
        for name in TABLES
    ]


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.encode()[:120].decode(errors="ignore")  # a close frame's reason holds at most 123 bytes


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        try:
            await websocket.close(code=code, reason=reason)
        except RuntimeError:  # already closing
            pass


@router.websocket("/ws")
async def grid_socket(websocket: WebSocket) -> None:
    """Perspective's protocol for the caller's own server (``?access_token=<JWT>``)."""
    ctx = context(websocket)
    reg = registry(ctx)
    # accept first: a close before accept becomes an HTTP 403 and the browser never sees the code or the reason
    await websocket.accept()
    try:
        who: Identity = ctx.auth.authenticate(websocket)
        grid = await run_in_threadpool(reg.ensure_current, who)
    except AuthenticationError as exc:
        await _close(websocket, CLOSE_UNAUTHENTICATED, _reason(exc))
        return
    except AccessDeniedError as exc:
        await _close(websocket, CLOSE_FORBIDDEN, _reason(exc))
        return
    except RiskstreamError as exc:
        log.warning("grid reports failed: %s", exc)
        await _close(websocket, CLOSE_ERROR, _reason(exc))
        return

    loop = asyncio.get_running_loop()
    outbox: asyncio.Queue[bytes] = asyncio.Queue()

    def deliver(message: bytes) -> None:  # called on the Perspective thread
        loop.call_soon_threadsafe(outbox.put_nowait, message)

    session = await reg.arun(grid.server.new_session, deliver)
    reg.attach(grid)
    sender = asyncio.create_task(_send(websocket, outbox))
    refresher = asyncio.create_task(_refresh(websocket, reg, who, ctx))
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            if data is not None:
                await reg.arun(session.handle_request, data)
    except WebSocketDisconnect:
        pass
    finally:
        refresher.cancel()
        sender.cancel()
        try:
            await reg.arun(session.close)
        except RuntimeError:  # the registry closed with the app
            pass
        reg.detach(grid)


async def _send(websocket: WebSocket, outbox: asyncio.Queue[bytes]) -> None:
    """Send the Perspective server's replies in the order it produced them."""
    while True:
        message = await outbox.get()
        try:
            await websocket.send_bytes(message)
        except (RuntimeError, WebSocketDisconnect):
            return


async def _refresh(websocket: WebSocket, reg: GridRegistry, who: Identity, ctx: ApiContext) -> None:
    """Every ``grid_refresh_s``: check the token again and reload the grid when the store or entitlements
    changed; close the socket when the token expired (4401) or the user lost their roles (4403)."""
    period = float(ctx.config.extra.get("grid_refresh_s", 5.0))
    while True:
        await asyncio.sleep(period)
        try:
            ctx.auth.authenticate(websocket)
            await run_in_threadpool(reg.ensure_current, who)
        except AuthenticationError as exc:
            await _close(websocket, CLOSE_UNAUTHENTICATED, _reason(exc))
            return
        except AccessDeniedError as exc:
            await _close(websocket, CLOSE_FORBIDDEN, _reason(exc))
            return
        except Exception as exc:  # a failed refresh keeps the last tables; the next period tries again
            log.warning("grid refresh of %s failed: %s", who.user, exc)
