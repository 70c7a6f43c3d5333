"""Store-facing endpoints: reports, historical risk series, risk jobs for grid engines, stress tests, back-tests.

Every read of the store goes through `riskstream.query.run_report` with the caller's user, after the caller's
principal has been provisioned (`Entitled`), so the store's row filters and column masks apply exactly as for
the CLI. Stress results and history series are given for hierarchy nodes the caller may see: a node is visible
iff the caller's principal admits every (desk, book, trader) of the portfolio under it.

Conventions: P&L is positive for a gain (stress P&L negative = loss); VaR and ES are positive losses, one-day
historical simulation over the stored scenario vectors (VaR: empirical quantile rule, ES: Acerbi–Tasche), at the
confidence named in the column label (``pv_var_99`` = 99 %). Back-tests: simple daily returns, one-day VaR, an
exception is a day whose return is below −VaR.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    InputError,
    InsufficientHistoryError,
    InvalidFieldError,
    QueryError,
    SchemaEvolutionError,
    StoreError,
)
from ..query import load_report, run_report
from ..query._report import parse_as_of, parse_business_date
from ..query._session import results_version, session
from ..store import Principal
from ._deps import Ctx, Entitled, rate_limited, require_scope
from ._entitle import NodeAccess, row_filter_key
from ._errors import NotFoundError
from ._identity import SCOPE_JOBS_WRITE, Identity
from ._routes_live import node_access

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")

T = TypeVar("T")

#: Largest chunk body accepted by ``PUT /api/v1/jobs/{job_id}/chunks/{chunk_id}`` (bytes).
MAX_CHUNK_BYTES = 512 * 1024 * 1024
#: Content types of chunk bodies.
ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
CSV = "text/csv"
CHUNK_TYPES = (ARROW_STREAM, PARQUET, CSV)
#: Hierarchy levels below the firm, as node ids name them (``FIRM/<desk>/<book>/<trader>``).
LEVELS = ("desk", "book", "trader")
#: Confidence levels of the history series' VaR and ES.
HISTORY_VAR_CONFIDENCE = 0.99
HISTORY_ES_CONFIDENCE = 0.975
#: Built-in price series of the back-test (shipped with the ``arch`` package).
BACKTEST_SERIES = ("sp500", "nasdaq", "wti", "vix")
BACKTEST_MODELS = ("hs", "parametric", "ewma", "garch", "fhs")
_WORST = re.compile(r"^worst-(\d{1,2})d$")
_WORST_MAX_DAYS = 60
_CACHE_SIZE = 64

Auth = dict[int | str, dict[str, Any]]


def _responses(*codes: int) -> Auth:
    """OpenAPI entries of the JSON error bodies an endpoint may return."""
    text = {
        400: "The body is not valid JSON.",
        401: "Missing or invalid credentials.",
        403: "Not entitled (no role, a masked column used, or a missing scope).",
        404: "Unknown report, job, node or scenario.",
        409: "The job is not in a state that allows this.",
        415: "Unsupported chunk content type.",
        422: "Invalid input: the body names the field and the value.",
        429: "Rate limit reached (see Retry-After).",
    }
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}


class ErrorBody(BaseModel):
    """Every error: its kind, a readable reason, and for invalid input the field and the value."""

    error: str
    reason: str
    field: str | None = None
    value: Any = None


# --- reports --------------------------------------------------------------------------------------------

Aggregation = Literal["sum", "count", "min", "max", "avg", "var", "es"]
FilterOp = Literal["eq", "ne", "in", "not_in", "lt", "le", "gt", "ge"]
FilterValue = Annotated[str, Field(max_length=200)] | int | float
Dimension = Annotated[str, Field(min_length=1, max_length=100)]


class MeasureModel(BaseModel):
    """One figure: ``agg`` of the rows whose ``measure`` is ``measure`` (``var``/``es`` at ``confidence``)."""

    model_config = ConfigDict(extra="forbid")
    measure: str = Field(min_length=1, max_length=100, examples=["pv"])
    agg: Aggregation = "sum"
    confidence: float | None = Field(None, gt=0.0, lt=1.0, examples=[0.99])


FilterValues = Annotated[list[FilterValue], Field(max_length=200)]


def _form(v: Any) -> str:
    return "values" if isinstance(v, list) else "ops" if isinstance(v, dict) else "value"


#: ``{dimension: value}``, ``{dimension: [values]}`` or ``{dimension: {op: value | [values]}}``.
FilterSpec = Annotated[
    Annotated[FilterValue, Tag("value")]
    | Annotated[FilterValues, Tag("values")]
    | Annotated[dict[FilterOp, FilterValue | FilterValues], Tag("ops")],
    Discriminator(_form),
]

#: A measure: a bare name (``sum``) or the full mapping; errors point into the form given.
MeasureItem = Annotated[
    Annotated[str, Field(min_length=1, max_length=100), Tag("name")] | Annotated[MeasureModel, Tag("spec")],
    Discriminator(lambda v: "name" if isinstance(v, str) else "spec"),
]


class SideModel(BaseModel):
    """One side of a diff: a business date and/or a table version or timestamp."""

    model_config = ConfigDict(extra="forbid")
    business_date: str | None = Field(None, examples=["previous", "2024-03-15"])
    as_of: Annotated[int, Field(ge=0)] | str | None = None


class ReportSpec(BaseModel):
    """A report in the DSL of docs/reports.md (validated again, semantically, by `riskstream.query.load_report`)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field("report", min_length=1, max_length=200)
    kind: Literal["pivot", "diff", "drill", "hierarchy"] = "pivot"
    rows: list[Dimension] | None = Field(None, max_length=8, examples=[["desk", "book"]])
    columns: list[Dimension] | None = Field(None, max_length=4)
    measures: list[MeasureItem] = Field(
        min_length=1, max_length=16, examples=[["pv", {"measure": "pv", "agg": "var", "confidence": 0.99}]]
    )
    filters: dict[Dimension, FilterSpec] | None = Field(
        None, max_length=16, examples=[{"desk": "RATES", "trader": {"not_in": ["intern"]}}]
    )
    business_date: str | None = Field(None, examples=["latest", "previous", "today", "2024-03-15"])
    namespace: str | None = Field(None, pattern=r"^[A-Z][A-Z0-9_]{0,63}$", examples=["EOD"])
    as_of: Annotated[int, Field(ge=0)] | str | None = None
    left: SideModel | None = None
    right: SideModel | None = None
    hierarchy: list[Dimension] | None = Field(None, max_length=6)
    path: (
        dict[Dimension, Annotated[str, Field(max_length=200)]]
        | list[Annotated[str, Field(max_length=200)]]
        | None
    ) = Field(None, max_length=6)


class RunRequest(BaseModel):
    """``report``: a DSL mapping; ``as_of``: a risk_results version (integer) or an ISO timestamp (UTC if naive)."""

    model_config = ConfigDict(extra="forbid")
    report: ReportSpec
    as_of: Annotated[int, Field(ge=0)] | str | None = None


Cell = str | int | float | bool | None


class ReportResponse(BaseModel):
    """A report's answer; ``rows`` are lists aligned with ``columns`` (NaN → null, dates ISO)."""

    name: str
    kind: str
    route: str = Field(description="'preagg:<grain>' or 'raw' (a diff: both sides joined with ' | ')")
    version: int | None = Field(description="risk_results version read (a diff: the right side's)")
    business_date: str | None
    columns: list[str]
    rows: list[list[Cell]]


class ReportInfo(BaseModel):
    name: str
    title: str
    kind: str
    description: str


class ReportDefinition(ReportInfo):
    report: dict[str, Any] = Field(description="The report in the DSL of docs/reports.md.")


@cache
def standard_reports() -> dict[str, dict[str, Any]]:
    """The standard reports shipped in ``riskstream/api/reports/*.yaml``, by name (validated on first load)."""
    out: dict[str, dict[str, Any]] = {}
    folder = resources.files("riskstream.api") / "reports"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        doc = yaml.safe_load(entry.read_text(encoding="utf-8"))
        dsl = doc["report"]
        report = load_report(dsl)  # a broken shipped report fails loudly, at the first listing
        out[report.name] = {
            "name": report.name,
            "title": str(doc.get("title", report.name)),
            "kind": report.kind,
            "description": " ".join(str(doc.get("description", "")).split()),
            "report": dsl,
        }
    return out


def _standard(name: str) -> dict[str, Any]:
    found = standard_reports().get(name)
    if found is None:
        raise NotFoundError("report", name)
    return found


def json_safe(value: Any) -> Any:
    """A cell as JSON: NaN/±inf → None, dates and times ISO, decimals as floats, lists element-wise."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return json_safe(float(value))
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return str(value)


def table_rows(table: pa.Table) -> list[list[Any]]:
    """An Arrow table's rows as JSON-safe lists (column-wise conversion, then transposed)."""
    columns = [[json_safe(v) for v in col.to_pylist()] for col in table.columns]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def _as_of(raw: int | str | None, field: str = "as_of") -> Any:
    if raw is None or raw == "":
        return None
    return parse_as_of(raw, field)


def _check_version(ctx: Any, as_of: Any, field: str) -> None:
    """A version beyond the table's latest is refused as input, not left to fail in the Delta reader."""
    if isinstance(as_of, int):
        latest = int(ctx.store.results_version())
        if as_of > latest:
            raise QueryError(field, as_of, f"the risk_results table's latest version is {latest}")


class _ResultCache:
    """Answers of reports by (report, as-of, ``risk_results`` version, the caller's entitlements, today's date).

    Users whose entitlements are the same (the traders of one desk) get the same answer for the same report over the
    same table version, so it is computed once: a commit moves the version and so retires every answer. Each
    request is still audited under its own user. Least recently used answers go first beyond ``size``.
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, tuple[bytes, str, str, int]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(ctx: Any, principal: Principal, dsl: Mapping[str, Any], as_of: Any) -> Hashable:
        return (
            json.dumps(json_safe(dsl), sort_keys=True),
            repr(as_of),
            results_version(ctx.store),
            row_filter_key(principal),
            tuple(sorted(principal.masked_columns)),
            date.today().isoformat(),
        )

    def get(self, key: Hashable) -> tuple[bytes, str, str, int] | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: Hashable, value: tuple[bytes, str, str, int]) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _cache(ctx: Any) -> _ResultCache:
    cache = ctx.extras.get("report_cache")
    if cache is None:
        cache = ctx.extras.setdefault("report_cache", _ResultCache())
    return cache


def _cached_answer(ctx: Any, principal: Principal, dsl: Mapping[str, Any], as_of: Any) -> Response | None:
    """The shared answer of this report for these entitlements over the current table version, audited under the
    caller; None when it has not been computed (cheap: safe on the event loop)."""
    started = time.perf_counter()
    hit = _cache(ctx).get(_ResultCache.key(ctx, principal, dsl, as_of))
    if hit is None:
        return None
    content, kind, name, rows = hit
    session(ctx.store).audit.submit(
        principal.user, "query", {"report": name, "kind": kind, "route": "cache"}, rows
    )
    ctx.metrics.query.labels(kind, "cache").observe(time.perf_counter() - started)
    return Response(content, media_type="application/json")


def _run(ctx: Any, principal: Principal, dsl: Mapping[str, Any], as_of: Any, route: str) -> Response:
    """Validate and run a report for the principal's user (or reuse the answer of the same report for the same
    entitlements over the same table version); record its latency; answer JSON."""
    hit = _cached_answer(ctx, principal, dsl, as_of)
    if hit is not None:
        return hit
    answers = _cache(ctx)
    key = answers.key(ctx, principal, dsl, as_of)
    report = load_report(dsl)
    _check_version(ctx, as_of if as_of is not None else report.as_of, "as_of")
    for side_name, side in (("left", report.left), ("right", report.right)):
        if side is not None and as_of is None:
            _check_version(ctx, side.as_of, f"{side_name}.as_of")
    started = time.perf_counter()
    try:
        result = run_report(ctx.store, report, principal.user, as_of=as_of)
    except (duckdb.ConversionException, duckdb.BinderException, duckdb.InvalidInputException) as exc:
        # a filter value the column's type cannot hold (e.g. business_date: "abc")
        raise QueryError(
            "filters", dsl.get("filters"), f"cannot be evaluated: {str(exc).splitlines()[0]}"
        ) from None
    except StoreError as exc:  # e.g. an as-of instant before the table existed
        raise QueryError("as_of", json_safe(as_of), str(exc)) from None
    ctx.metrics.query.labels(report.kind, route).observe(time.perf_counter() - started)
    body = {
        "name": result.report,
        "kind": result.kind,
        "route": result.route,
        "version": result.version,
        "business_date": None if result.business_date is None else result.business_date.isoformat(),
        "columns": result.table.column_names,
        "rows": table_rows(result.table),
    }
    content = bytes(JSONResponse(body).body)
    answers.put(key, (content, report.kind, report.name, result.table.num_rows))
    return Response(content, media_type="application/json")


@router.get(
    "/reports",
    tags=["reports"],
    summary="The standard reports: name, title, kind.",
    response_model=list[ReportInfo],
    responses=_responses(401, 403),
)
def list_reports(principal: Entitled) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "report"} for r in standard_reports().values()]


@router.get(
    "/reports/{name}",
    tags=["reports"],
    summary="One standard report's definition (its DSL).",
    response_model=ReportDefinition,
    responses=_responses(401, 403, 404),
)
def get_report(principal: Entitled, name: Annotated[str, Path(max_length=200)]) -> dict[str, Any]:
    return _standard(name)


@router.post(
    "/reports/run",
    tags=["reports"],
    summary="Run a report given in the DSL, with the caller's entitlements.",
    response_model=ReportResponse,
    responses=_responses(400, 401, 403, 422, 429),
)
def run_posted_report(
    ctx: Ctx,
    principal: Entitled,
    body: RunRequest,
    _limit: Annotated[Identity, Depends(rate_limited("report"))],
) -> Response:
    """Rows the caller's row filter admits only; a masked column used as a dimension or filter is refused (403)."""
    dsl = body.report.model_dump(exclude_none=True, mode="json")
    return _run(ctx, principal, dsl, _as_of(body.as_of), "/api/v1/reports/run")


@router.get(
    "/reports/{name}/run",
    tags=["reports"],
    summary="Run a standard report, with the caller's entitlements.",
    response_model=ReportResponse,
    responses=_responses(401, 403, 404, 422, 429),
)
async def run_standard_report(
    ctx: Ctx,
    principal: Entitled,
    name: Annotated[str, Path(max_length=200)],
    _limit: Annotated[Identity, Depends(rate_limited("report"))],
    as_of: Annotated[
        str | None,
        Query(max_length=64, description="risk_results version (integer) or ISO timestamp (UTC if naive)."),
    ] = None,
    business_date: Annotated[
        str | None,
        Query(
            max_length=10,
            description="YYYY-MM-DD, 'latest', 'previous' or 'today' instead of the report's own date "
            "(not for diffs, whose sides carry their dates).",
        ),
    ] = None,
) -> Response:
    dsl = dict(_standard(name)["report"])
    if business_date is not None:
        if dsl.get("kind") == "diff":
            raise QueryError("business_date", business_date, "a diff's dates are its left and right sides")
        parsed = parse_business_date(business_date, "business_date")
        dsl["business_date"] = parsed if isinstance(parsed, str) else parsed.isoformat()
    when = _as_of(as_of)
    if when is None:
        # a standard report at the current version: usually answered already for these entitlements
        hit = _cached_answer(ctx, principal, dsl, when)
        if hit is not None:
            return hit
    return await run_in_threadpool(_run, ctx, principal, dsl, when, "/api/v1/reports/{name}/run")


# --- hierarchy visibility -----------------------------------------------------------------------------


def visible_nodes(ctx: Any, principal: Principal, portfolio: Any) -> frozenset[str]:
    """Node ids of ``portfolio`` whose every (desk, book, trader) the principal admits (`NodeAccess`, the rule
    of the live endpoints; the service's own portfolio shares the live endpoints' instance)."""
    if portfolio is ctx.loaded.portfolio:
        return node_access(ctx).visible(principal)

    def build() -> tuple[Any, NodeAccess]:
        return portfolio, NodeAccess.of_positions(portfolio.positions)

    held, access = _cached(ctx, "node-access", id(portfolio), build)
    if held is not portfolio:  # an id reused by a new portfolio object
        held, access = build()
    return access.visible(principal)


def _cached(ctx: Any, name: str, key: Any, compute: Callable[[], T]) -> T:
    """``compute()`` memoised in ``ctx.extras[name]`` (LRU of `_CACHE_SIZE`); one computation per key at once."""
    lock = ctx.extras.setdefault(f"{name}:lock", threading.Lock())
    with lock:
        store: OrderedDict[Any, Any] = ctx.extras.setdefault(name, OrderedDict())
        slot = store.get(key)
        if slot is None:
            slot = store[key] = {"lock": threading.Lock()}
        store.move_to_end(key)
        while len(store) > _CACHE_SIZE:
            store.popitem(last=False)
    with slot["lock"]:
        if "value" not in slot:
            slot["value"] = compute()
        value: T = slot["value"]
        return value


# --- historical series --------------------------------------------------------------------------------


class HistoryResponse(BaseModel):
    """Daily figures of one node from the store, oldest first: ``value`` = sum of ``measure``; ``var``/``es`` =
    one-day historical-simulation VaR/ES (positive losses) from the element-wise sum of the node's vectors."""

    node: str
    measure: str
    namespace: str
    confidence: float
    es_confidence: float
    dates: list[str]
    value: list[float | None]
    var: list[float | None]
    es: list[float | None]


def _business_dates(ctx: Any, namespace: str) -> list[date]:
    """Business dates holding rows of ``namespace`` (either tier), newest first; cached per table version.

    The dates are candidates only: a series keeps a date when the caller's own report answers rows for it."""
    version = ctx.store.results_version()

    def compute() -> list[date]:
        if version < 0:
            return []
        con = duckdb.connect()
        try:
            view = ctx.store.register(con, "risk_results", view="dates")
            rows = con.execute(
                f'SELECT DISTINCT business_date FROM "{view}" WHERE namespace = ? ORDER BY 1 DESC',
                [namespace],
            ).fetchall()
        finally:
            con.close()
        return [r[0] for r in rows]

    return _cached(ctx, "history-dates", (version, namespace), compute)


@router.get(
    "/history/{node:path}",
    tags=["history"],
    summary="A node's daily figures from the store: sum of a measure, 99 % VaR and 97.5 % ES.",
    response_model=HistoryResponse,
    responses=_responses(401, 403, 404, 422, 429),
)
def history(
    ctx: Ctx,
    principal: Entitled,
    node: Annotated[
        str, Path(description="FIRM, FIRM/<desk>, FIRM/<desk>/<book> or FIRM/<desk>/<book>/<trader>")
    ],
    _limit: Annotated[Identity, Depends(rate_limited("report"))],
    measure: Annotated[str, Query(min_length=1, max_length=100)] = "pv",
    days: Annotated[int, Query(ge=1, le=250, description="Newest business dates returned.")] = 20,
    namespace: Annotated[str, Query(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")] = "EOD",
) -> HistoryResponse:
    if node not in visible_nodes(ctx, principal, ctx.loaded.portfolio):
        raise NotFoundError("node visible to you", node)
    path = dict(zip(LEVELS, node.split("/")[1:], strict=False))
    measures = [
        {"measure": measure, "agg": "sum"},
        {"measure": measure, "agg": "var", "confidence": HISTORY_VAR_CONFIDENCE},
        {"measure": measure, "agg": "es", "confidence": HISTORY_ES_CONFIDENCE},
    ]
    out: dict[str, list[Any]] = {"dates": [], "value": [], "var": [], "es": []}
    for day in reversed(_business_dates(ctx, namespace)[:days]):
        dsl = {
            "name": f"history:{node}",
            "kind": "pivot",
            "rows": ["namespace"],
            "measures": measures,
            "filters": path,
            "business_date": day.isoformat(),
            "namespace": namespace,
        }
        started = time.perf_counter()
        result = run_report(ctx.store, load_report(dsl), principal.user)
        ctx.metrics.query.labels("pivot", "/api/v1/history/{node}").observe(time.perf_counter() - started)
        if result.num_rows == 0:
            continue
        row = result.table.slice(0, 1).to_pylist()[0]
        labels = [f"{measure}_sum", f"{measure}_var_99", f"{measure}_es_975"]
        out["dates"].append(day.isoformat())
        for key, label in zip(("value", "var", "es"), labels, strict=True):
            out[key].append(json_safe(row.get(label)))
    return HistoryResponse(
        node=node,
        measure=measure,
        namespace=namespace,
        confidence=HISTORY_VAR_CONFIDENCE,
        es_confidence=HISTORY_ES_CONFIDENCE,
        **out,
    )


# --- jobs ---------------------------------------------------------------------------------------------

JobWriter = Annotated[Identity, Depends(require_scope(SCOPE_JOBS_WRITE))]
JobId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")]


class JobOpenRequest(BaseModel):
    """A job owns the rows of its (business_date, namespace, scope); its commit replaces them atomically."""

    model_config = ConfigDict(extra="forbid")
    namespace: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,63}$", examples=["EOD"])
    business_date: date
    scope: (
        dict[Literal["desk", "book", "trader"], list[Annotated[str, Field(min_length=1, max_length=200)]]]
        | None
    ) = Field(None, examples=[{"desk": ["RATES"]}])
    expected_chunks: int | None = Field(None, ge=1, le=1_000_000)
    job_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


class JobStatusResponse(BaseModel):
    job_id: str
    state: Literal["OPEN", "COMMITTING", "COMMITTED", "ABORTED"]
    namespace: str
    business_date: date
    scope: dict[str, list[str]] | None
    chunks_received: int
    chunks_expected: int | None
    rows: int
    version: int | None = Field(description="risk_results version of the commit")
    error: str | None


class ChunkResponse(BaseModel):
    job_id: str
    chunk_id: str
    rows: int
    columns: list[str]


class Delivery(BaseModel):
    target: str
    ok: bool
    error: str | None


class CommitResponse(BaseModel):
    job_id: str
    version: int
    rows: int
    replaced: int = Field(description="rows of the earlier run of the same scope that the commit replaced")
    duration_s: float
    already_committed: bool
    notifications: list[Delivery]


def _status(ctx: Any, job_id: str) -> JobStatusResponse:
    if ctx.store.jobs.get(job_id) is None:
        raise NotFoundError("job", job_id)
    st = ctx.store.status(job_id).to_dict()
    st["state"] = str(st["state"])
    return JobStatusResponse(**st)


def _audit(ctx: Any, who: Identity, action: str, detail: Mapping[str, Any], rows: int | None = None) -> None:
    ctx.store.catalog.audit(who.user, action, {**detail, "method": who.method}, rows)


def read_chunk_body(body: bytes, content_type: str) -> pa.Table:
    """An Arrow table from a request body: Arrow IPC stream, Parquet or CSV (as `riskstream job put` reads CSV:
    mandatory string columns as strings, ``business_date`` as a date)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if not body:
        raise InputError("the chunk body is empty", field="body", value=0)
    try:
        if kind == ARROW_STREAM:
            return pa.ipc.open_stream(pa.BufferReader(body)).read_all()
        if kind == PARQUET:
            return pq.read_table(pa.BufferReader(body))
        from ..store._schema import MANDATORY

        types = {k: v for k, v in MANDATORY.items() if k != "value"}
        return pacsv.read_csv(pa.BufferReader(body), convert_options=pacsv.ConvertOptions(column_types=types))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError) as exc:
        raise InputError(
            f"the chunk body is not readable as {kind}: {str(exc).splitlines()[0] if str(exc) else exc!r}",
            field="body",
            value=kind,
        ) from None


_CHUNK_BODY = {
    "requestBody": {
        "required": True,
        "description": "One chunk of risk_results rows (docs/store.md: mandatory and optional columns).",
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in CHUNK_TYPES},
    }
}


@router.post(
    "/jobs",
    tags=["jobs"],
    summary="Open a risk job (API key with the jobs:write scope).",
    status_code=201,
    response_model=JobStatusResponse,
    responses=_responses(400, 401, 403, 409, 422),
)
def open_job(ctx: Ctx, who: JobWriter, body: JobOpenRequest) -> JobStatusResponse:
    job_id = ctx.store.open_job(
        body.namespace,
        body.business_date,
        {k: list(v) for k, v in body.scope.items()} if body.scope else None,
        body.expected_chunks,
        body.job_id,
    )
    _audit(
        ctx,
        who,
        "job.open",
        {"job_id": job_id, "namespace": body.namespace, "business_date": body.business_date},
    )
    return _status(ctx, job_id)


@router.put(
    "/jobs/{job_id}/chunks/{chunk_id}",
    tags=["jobs"],
    summary="Stage one chunk (Arrow IPC stream, Parquet or CSV); a re-put of the chunk id replaces it.",
    response_model=ChunkResponse,
    responses=_responses(401, 403, 404, 409, 415, 422),
    openapi_extra=_CHUNK_BODY,
)
async def put_chunk(
    request: Request, ctx: Ctx, who: JobWriter, job_id: JobId, chunk_id: JobId
) -> ChunkResponse:
    """A bad chunk is refused with 422 naming the field and the value; the job stays open."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() not in CHUNK_TYPES:
        raise StarletteHTTPException(
            415, f"send a chunk as one of {', '.join(CHUNK_TYPES)}, not {content_type!r}"
        )
    size = int(request.headers.get("content-length") or 0)
    if size > MAX_CHUNK_BYTES:
        raise InputError(f"a chunk is at most {MAX_CHUNK_BYTES:,} bytes", field="body", value=size)
    if ctx.store.jobs.get(job_id) is None:
        raise NotFoundError("job", job_id)
    body = bytearray()
    async for part in request.stream():
        body.extend(part)
        if len(body) > MAX_CHUNK_BYTES:
            raise InputError(f"a chunk is at most {MAX_CHUNK_BYTES:,} bytes", field="body", value=len(body))

    def stage() -> ChunkResponse:
        table = read_chunk_body(bytes(body), content_type)
        try:
            receipt = ctx.store.put_chunk(job_id, table, chunk_id=chunk_id)
        except InputError as exc:
            if isinstance(exc.value, float) and not math.isfinite(exc.value):
                exc.value = repr(exc.value)  # JSON has no inf/NaN: the value is named as text
            raise
        except SchemaEvolutionError as exc:
            sent = table.schema.field(exc.column).type if exc.column in table.column_names else None
            raise InputError(str(exc), field=exc.column, value=None if sent is None else str(sent)) from None
        return ChunkResponse(
            job_id=receipt.job_id, chunk_id=receipt.chunk_id, rows=receipt.rows, columns=list(receipt.columns)
        )

    return await run_in_threadpool(stage)


@router.post(
    "/jobs/{job_id}/commit",
    tags=["jobs"],
    summary="Commit the job in one transaction (idempotent: a retry returns the same version).",
    response_model=CommitResponse,
    responses=_responses(401, 403, 404, 409, 422),
)
def commit_job(ctx: Ctx, who: JobWriter, job_id: JobId) -> CommitResponse:
    if ctx.store.jobs.get(job_id) is None:
        raise NotFoundError("job", job_id)
    try:
        r = ctx.store.commit(job_id)
    except SchemaEvolutionError as exc:
        raise InputError(str(exc), field=exc.column, value=job_id) from None
    ctx.metrics.commit.observe(r.duration_s)
    _audit(ctx, who, "job.commit", {"job_id": job_id, "version": r.version, "replaced": r.replaced}, r.rows)
    return CommitResponse(
        job_id=r.job_id,
        version=r.version,
        rows=r.rows,
        replaced=r.replaced,
        duration_s=r.duration_s,
        already_committed=r.already_committed,
        notifications=[Delivery(target=d.target, ok=d.ok, error=d.error) for d in r.deliveries],
    )


@router.get(
    "/jobs/{job_id}",
    tags=["jobs"],
    summary="A job's state, chunks received/expected, rows and committed version.",
    response_model=JobStatusResponse,
    responses=_responses(401, 403, 404, 422),
)
def job_status(ctx: Ctx, who: JobWriter, job_id: JobId) -> JobStatusResponse:
    return _status(ctx, job_id)


@router.delete(
    "/jobs/{job_id}",
    tags=["jobs"],
    summary="Abort an open job: its staged chunks are dropped.",
    response_model=JobStatusResponse,
    responses=_responses(401, 403, 404, 409, 422),
)
def abort_job(ctx: Ctx, who: JobWriter, job_id: JobId) -> JobStatusResponse:
    if ctx.store.jobs.get(job_id) is None:
        raise NotFoundError("job", job_id)
    ctx.store.abort(job_id)
    _audit(ctx, who, "job.abort", {"job_id": job_id})
    return _status(ctx, job_id)


# --- stress -------------------------------------------------------------------------------------------


class ScenarioInfo(BaseModel):
    name: str
    kind: Literal["hypothetical", "historical", "worst-window"]
    description: str
    period: str | None = None


class StressRequest(BaseModel):
    """``scenarios``: names from ``GET /api/v1/stress/scenarios`` or ``worst-<h>d`` (every built-in when
    omitted); ``top``: worst positions listed per node and scenario."""

    model_config = ConfigDict(extra="forbid")
    scenarios: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, min_length=1, max_length=20, examples=[["equity-crash", "gfc-2008", "worst-10d"]]
    )
    top: int = Field(3, ge=0, le=5)


class PositionPnl(BaseModel):
    position: str
    pnl: float


class StressNodeResult(BaseModel):
    node: str
    level: str
    parent: str | None
    pnl: dict[str, float] = Field(description="scenario → stress P&L of the node, negative = loss")
    top_losers: dict[str, list[PositionPnl]] = Field(
        description="scenario → the worst positions under the node (P&L negative = loss)"
    )


class StressRun(BaseModel):
    name: str
    description: str
    period: str | None


class StressResponse(BaseModel):
    """Full revaluation under each scenario; P&L in the reporting currency, positive = gain."""

    as_of: str
    reporting_currency: str
    market: Literal["live", "snapshot"]
    scenarios: list[StressRun]
    nodes: list[StressNodeResult]
    rejected: int = Field(description="positions or instruments the valuation refused")


def _library() -> dict[str, Any]:
    from ..scenarios import stress_library

    return stress_library()


@router.get(
    "/stress/scenarios",
    tags=["stress"],
    summary="The built-in stress scenarios (hypothetical and historical) and the worst-window scan.",
    response_model=list[ScenarioInfo],
    responses=_responses(401, 403),
)
def stress_scenarios(principal: Entitled) -> list[ScenarioInfo]:
    from ..scenarios import HistoricalStress

    out = []
    for name, s in _library().items():
        historical = isinstance(s, HistoricalStress)
        out.append(
            ScenarioInfo(
                name=name,
                kind="historical" if historical else "hypothetical",
                description=s.description,
                period=f"{s.start}→{s.end}" if historical else None,
            )
        )
    out.append(
        ScenarioInfo(
            name="worst-10d",
            kind="worst-window",
            description=f"the worst overlapping h-day move of the history for this portfolio "
            f"(worst-<h>d, h = 1…{_WORST_MAX_DAYS})",
        )
    )
    return out


def _check_scenarios(names: Sequence[str]) -> list[str]:
    library = _library()
    for name in names:
        m = _WORST.match(name)
        if name in library or (m is not None and 1 <= int(m.group(1)) <= _WORST_MAX_DAYS):
            continue
        raise NotFoundError("stress scenario", name)
    return list(dict.fromkeys(names))


def _market(ctx: Any) -> tuple[str, Any, Any]:
    """(``live`` | ``snapshot``, portfolio, market snapshot) the stress runs on."""
    live = ctx.live
    if live is not None and hasattr(live, "current_market") and hasattr(live, "current_portfolio"):
        market = live.current_market()
        portfolio = live.current_portfolio()
        if market is not None and portfolio is not None:
            return "live", portfolio, market
    return "snapshot", ctx.loaded.portfolio, ctx.loaded.snapshot


def _minute(as_of: Any) -> str:
    text = as_of.isoformat() if hasattr(as_of, "isoformat") else str(as_of)
    return text[:16]


@router.post(
    "/stress",
    tags=["stress"],
    summary="Stress P&L of every node the caller may see, per scenario (full revaluation).",
    response_model=StressResponse,
    responses=_responses(400, 401, 403, 404, 422, 429),
)
def stress(
    ctx: Ctx,
    principal: Entitled,
    _limit: Annotated[Identity, Depends(rate_limited("stress"))],
    body: StressRequest | None = None,
) -> StressResponse:
    """Runs on the live market when the service runs the pipeline, else on the portfolio's snapshot; results are
    cached per scenario and market minute. Nodes: those whose every (desk, book, trader) the caller may see."""
    from ..engine import run_stress

    request = body or StressRequest.model_validate({})
    names = _check_scenarios(request.scenarios or [*_library(), "worst-10d"])
    source, portfolio, market = _market(ctx)
    minute = _minute(market.as_of)
    reports = []
    for name in names:

        def compute(name: str = name) -> tuple[Any, Any]:
            return portfolio, run_stress(portfolio, market, ctx.loaded.history, name, LEVELS, 5)

        held, report = _cached(ctx, "stress", (name, source, minute, id(portfolio)), compute)
        if held is not portfolio:  # an id reused by a new portfolio object
            held, report = compute()
        reports.append(report)
    visible = visible_nodes(ctx, principal, portfolio)
    first = reports[0]
    nodes = []
    for i, n in enumerate(first.nodes):
        if n.node not in visible:
            continue
        per = [r.nodes[i] for r in reports]
        nodes.append(
            StressNodeResult(
                node=n.node,
                level=n.level,
                parent=n.parent if n.parent in visible else None,
                pnl={name: p.pnl for name, p in zip(names, per, strict=True)},
                top_losers={
                    name: [PositionPnl(position=pid, pnl=v) for pid, v in p.top_losers[: request.top]]
                    for name, p in zip(names, per, strict=True)
                },
            )
        )
    return StressResponse(
        as_of=first.as_of,
        reporting_currency=first.reporting_currency,
        market=source,  # type: ignore[arg-type]
        scenarios=[StressRun(name=r.scenario, description=r.description, period=r.period) for r in reports],
        nodes=nodes,
        rejected=len(first.rejected),
    )


# --- back-tests ---------------------------------------------------------------------------------------


class LikelihoodRatioModel(BaseModel):
    lr: float
    pvalue: float


class TrafficLightModel(BaseModel):
    """Basel zone of the exceptions in the last (up to) 250 forecast days (BCBS 1996, Table 2 at 99 %)."""

    zone: Literal["green", "yellow", "red"]
    exceptions: int
    observations: int
    expected: float = Field(description="(1 − confidence) × observations")
    plus_factor: float


class BacktestResponse(BaseModel):
    """Daily one-day VaR/ES forecasts (positive losses, fractions of the price) against the realised simple
    returns (gain positive); an exception is a day whose return is below −VaR."""

    series: str
    model: str
    window: int
    confidence: float
    observations: int
    expected_exceptions: float
    exception_rate: float
    dates: list[str]
    returns: list[float]
    var: list[float]
    es: list[float | None]
    exceptions: list[str]
    kupiec: LikelihoodRatioModel
    christoffersen: LikelihoodRatioModel
    conditional_coverage: LikelihoodRatioModel
    traffic_light: TrafficLightModel
    options: dict[str, Any]
    model_failures: int


def _backtest(
    series: str, model: str, window: int, confidence: float, start: date | None, end: date | None
) -> BacktestResponse:
    import numpy as np
    import pandas as pd

    from ..marketdata import load_price_series, simple_returns
    from ..risk._forecast import run_backtest

    prices = load_price_series(series)
    days = pd.DatetimeIndex(prices.index).date
    keep = np.ones(len(prices), dtype=bool)
    if start is not None:
        keep &= days >= start
    if end is not None:
        keep &= days <= end
    prices = prices[keep]
    if len(prices) < window + 3:
        raise InvalidFieldError(
            "window", window, f"{series} has {len(prices)} prices in the range; a back-test needs window + 3"
        )
    returns = simple_returns(prices)
    try:
        r = run_backtest(returns, model, window, confidence)
    except InsufficientHistoryError as exc:
        raise InvalidFieldError("window", window, str(exc)) from None
    d = r.to_dict(include_series=True)
    return BacktestResponse(
        series=series,
        model=model,
        window=window,
        confidence=confidence,
        observations=d["observations"],
        expected_exceptions=d["expected_exceptions"],
        exception_rate=d["exception_rate"],
        dates=d["dates"],
        returns=d["returns"],
        var=d["var"],
        es=d["es"],
        exceptions=[day for day, hit in zip(d["dates"], d["exception_flags"], strict=True) if hit],
        kupiec=LikelihoodRatioModel(lr=d["kupiec_lr"], pvalue=d["kupiec_pvalue"]),
        christoffersen=LikelihoodRatioModel(lr=d["christoffersen_lr"], pvalue=d["christoffersen_pvalue"]),
        conditional_coverage=LikelihoodRatioModel(
            lr=d["conditional_coverage_lr"], pvalue=d["conditional_coverage_pvalue"]
        ),
        traffic_light=TrafficLightModel(
            zone=d["traffic_light"],
            exceptions=d["exceptions_last_250"],
            observations=d["traffic_light_observations"],
            expected=(1.0 - confidence) * d["traffic_light_observations"],
            plus_factor=d["plus_factor"],
        ),
        options=json_safe(d["options"]),
        model_failures=d["model_failures"],
    )


@router.get(
    "/backtest",
    tags=["backtest"],
    summary="Back-test a one-day VaR model on a built-in daily price history (Kupiec, Christoffersen, Basel).",
    response_model=BacktestResponse,
    responses=_responses(401, 403, 422, 429),
)
def backtest(
    ctx: Ctx,
    principal: Entitled,
    _limit: Annotated[Identity, Depends(rate_limited("backtest"))],
    series: Annotated[Literal["sp500", "nasdaq", "wti", "vix"], Query()] = "sp500",
    model: Annotated[Literal["hs", "parametric", "ewma", "garch", "fhs"], Query()] = "hs",
    window: Annotated[
        int, Query(ge=50, le=2500, description="Past returns each forecast uses (days).")
    ] = 500,
    confidence: Annotated[float, Query(ge=0.5, le=0.9999)] = 0.99,
    start: Annotated[date | None, Query(description="First price date used.")] = None,
    end: Annotated[date | None, Query(description="Last price date used.")] = None,
) -> BacktestResponse:
    """Simple daily returns of the series; VaR for day t uses only the ``window`` returns before t. Results are
    cached (the histories are fixed). ``garch``/``fhs`` refit every 20 days and take seconds."""
    if start is not None and end is not None and end <= start:
        raise InvalidFieldError("end", end.isoformat(), f"must be after start {start.isoformat()}")
    key = (series, model, window, round(confidence, 6), start, end)
    return _cached(ctx, "backtest", key, lambda: _backtest(series, model, window, confidence, start, end))
