"""Run a report: DSL → entitlements rewrite → SQL on DuckDB over the store's views → result.

Every path (pivot, diff, drill, as-of; pre-aggregated or raw; with or without reference data) reads the table
through :func:`~riskstream.query._entitle.secured_source`, so a principal never sees a row its filter does not
admit nor a masked value. Values are bound as parameters and identifiers quoted: nothing from a report is pasted
into SQL as text.

Routing: a report is answered from a pre-aggregation table when its dimensions, filters and the principal's row
filter columns all lie within the table's grain, every aggregation decomposes over the grain (sum, count, avg as
sum ÷ count, VaR/ES from the element-wise sum of the stored summed vectors; min/max never), no reference data is
joined, and the table was built from exactly the ``risk_results`` version being read. Otherwise the raw table is
scanned. Both give the same answer (up to floating-point summation order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from ..errors import AccessDeniedError, ConfigurationError, QueryError
from ..risk import var_es
from ._entitle import check_columns, quote, row_filter_columns, secured_source
from ._federate import REFERENCE_PREFIXES, ReferenceJoin, plan_references
from ._report import NON_DIMENSIONS, AsOf, Filter, MeasureSpec, Report
from ._result import ReportResult

__all__ = ["run_report"]

RISK_TABLE = "risk_results"
PREAGG_KEYS = ("business_date", "namespace", "measure")


@dataclass
class _Context:
    store: Any
    principal: Any
    con: duckdb.DuckDBPyConnection
    route: str
    views: dict[Any, tuple[str, dict[str, str], int | None]] = field(default_factory=dict)

    def raw(self, as_of: AsOf | None) -> tuple[str, dict[str, str], int | None]:
        """The risk_results view at ``as_of`` (registered once per connection), its schema and its version."""
        if as_of not in self.views:
            name = f"risk_results_{len(self.views)}"
            if isinstance(as_of, datetime):
                view = self.store.register(self.con, RISK_TABLE, view=name, timestamp=as_of)
                version = _version_at(self.store, as_of)
            elif isinstance(as_of, int):
                view = self.store.register(self.con, RISK_TABLE, view=name, version=as_of)
                version = as_of
            else:
                version = self.store.results_version()
                view = self.store.register(self.con, RISK_TABLE, view=name)
            self.views[as_of] = (view, _schema(self.con, view), version)
        return self.views[as_of]


@dataclass(frozen=True)
class _Frame:
    frame: pd.DataFrame
    sql: str
    route: str
    version: int | None
    business_date: date | None


def _schema(con: duckdb.DuckDBPyConnection, view: str) -> dict[str, str]:
    return {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE {quote(view)}").fetchall()}


def _version_at(store: Any, ts: datetime) -> int | None:
    """The latest risk_results version committed at or before ``ts`` (None if none was)."""
    best: int | None = None
    for entry in store.history(RISK_TABLE):
        stamp = entry.get("timestamp")
        if isinstance(stamp, int | float):
            when = datetime.fromtimestamp(stamp / 1000.0, tz=UTC)
        elif isinstance(stamp, datetime):
            when = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        else:
            continue
        if when <= ts and (best is None or entry["version"] > best):
            best = int(entry["version"])
    return best


def _validate_columns(report: Report, schema: Mapping[str, str], principal: Any) -> None:
    known = sorted(c for c in schema if c not in NON_DIMENSIONS)
    used: dict[str, str] = {}
    for where, names in (("rows", report.row_dimensions), ("columns", report.columns)):
        for name in names:
            if name.split(".", 1)[0] in REFERENCE_PREFIXES and "." in name:
                used[name.split(".", 1)[1] if not name.startswith("market.") else name] = where
                continue
            if name not in schema or name in NON_DIMENSIONS:
                raise QueryError(where, name, f"unknown dimension (known: {', '.join(known)})")
            used[name] = where
    for f in report.all_filters:
        if f.dimension not in schema or f.dimension in NON_DIMENSIONS:
            raise QueryError(
                f"filters.{f.dimension}", f.dimension, f"unknown dimension (known: {', '.join(known)})"
            )
        used[f.dimension] = f"filters.{f.dimension}"
    check_columns(principal, used)


def _filter_sql(f: Filter) -> tuple[str, list[Any]]:
    col = quote(f.dimension)
    if f.op == "in":
        return f"{col} IN ({', '.join('?' * len(f.values))})", list(f.values)
    if f.op == "not_in":  # NULL (a sparse column's missing value) is not in the list: kept
        return f"({col} IS NULL OR {col} NOT IN ({', '.join('?' * len(f.values))}))", list(f.values)
    if f.op == "ne":
        return f"{col} IS DISTINCT FROM ?", list(f.values)
    sql_op = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[f.op]
    return f"{col} {sql_op} ?", list(f.values)


def _resolve_date(
    ctx: _Context, bd: date | str, source: str, params: list[Any], namespace: str
) -> date | None:
    if isinstance(bd, date):
        return bd
    if bd == "today":
        return date.today()
    rows = ctx.con.sql(
        f"SELECT max(business_date) FROM ({source}) AS s WHERE namespace = ?", params=[*params, namespace]
    ).fetchall()
    return rows[0][0] if rows else None


def _choose_preagg(ctx: _Context, report: Report, version: int | None, refs: ReferenceJoin) -> Any | None:
    if ctx.route == "raw" or refs.active or version is None:
        return None
    if any(m.agg in ("min", "max") for m in report.measures):
        return None
    needed = set(report.dimensions) | {f.dimension for f in report.all_filters}
    needed |= row_filter_columns(ctx.principal) | set(PREAGG_KEYS)
    eligible = [
        spec
        for spec in ctx.store.preaggregations()
        if needed <= set(spec.dimensions) and ctx.store.preagg_source_version(spec.name) == version
    ]
    return min(eligible, key=lambda s: len(s.dimensions)) if eligible else None


def _agg_sql(m: MeasureSpec, preagg: bool) -> str:
    cond = 'FILTER (WHERE "measure" = ?)'
    # BIGINT on both routes: SUM over row_count would otherwise come back as a DECIMAL
    count = f"CAST(COALESCE(SUM(row_count) {cond}, 0) AS BIGINT)" if preagg else f"COUNT(*) {cond}"
    if m.agg == "sum":
        return f'SUM("value") {cond}'
    if m.agg == "count":
        return count
    if m.agg == "avg":
        return f'SUM("value") {cond} / NULLIF({count}, 0)'
    return f'{m.agg.upper()}("value") {cond}'  # min, max (raw only)


def _group_vectors(keys: pd.DataFrame, vectors: pa.ChunkedArray) -> tuple[pd.DataFrame, np.ndarray]:
    """Element-wise sums of the P&L vectors per distinct key row: (distinct keys, groups × scenarios)."""
    arr = vectors.combine_chunks() if isinstance(vectors, pa.ChunkedArray) else vectors
    if isinstance(arr, pa.LargeListArray):
        arr = arr.cast(pa.list_(pa.float64()))
    offsets = np.asarray(arr.offsets)
    lengths = np.diff(offsets)
    n = int(lengths[0]) if len(lengths) else 0
    if len(lengths) and (lengths != n).any():
        raise QueryError(
            "pnl_vector", sorted(set(lengths.tolist()))[:5], "vectors of different lengths in one cell set"
        )
    values = np.asarray(arr.values.to_numpy(zero_copy_only=False), dtype=np.float64)[offsets[0] : offsets[-1]]
    matrix = values.reshape(len(lengths), n)
    codes = keys.groupby(list(keys.columns), dropna=False, sort=False).ngroup().to_numpy()
    groups = int(codes.max()) + 1 if len(codes) else 0
    first = np.full(groups, -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    onehot = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(groups, len(codes)))
    return keys.iloc[first].reset_index(drop=True), np.asarray(onehot @ matrix)


def _risk_columns(
    ctx: _Context, report: Report, dims: Sequence[str], source: str, where: str, params: list[Any]
) -> pd.DataFrame | None:
    """VaR/ES per cell and risk measure, from the cell's summed vectors (long form: dims + labels)."""
    risk = [m for m in report.measures if m.is_risk]
    if not risk:
        return None
    names = sorted({m.measure for m in risk})
    sel = ", ".join([*(quote(d) for d in dims), '"measure"', '"pnl_vector"'])
    sql = (
        f'SELECT {sel} FROM ({source}) AS s WHERE {where} AND "measure" IN ({", ".join("?" * len(names))}) '
        "AND pnl_vector IS NOT NULL"
    )
    table = ctx.con.sql(sql, params=[*params, *names]).to_arrow_table()
    keys = table.select([*dims, "measure"]).to_pandas()
    cells, summed = _group_vectors(keys, table.column("pnl_vector"))
    out = cells[list(dims)].drop_duplicates().reset_index(drop=True)
    for m in risk:
        sel_rows = (cells["measure"] == m.measure).to_numpy()
        figures = pd.Series(np.nan, index=cells.index)
        if sel_rows.any():
            v, e = var_es(summed[sel_rows], float(m.confidence or 0.99))
            figures[sel_rows] = v if m.agg == "var" else e
        part = cells.loc[sel_rows, list(dims)].assign(**{m.label: figures[sel_rows].to_numpy()})
        out = out.merge(part, on=list(dims), how="left") if dims else part.reset_index(drop=True)
    return out


def _pivot(ctx: _Context, report: Report, bd: date | str, as_of: AsOf | None) -> _Frame:
    view, schema, version = ctx.raw(as_of)
    _validate_columns(report, schema, ctx.principal)
    raw_source, raw_params = secured_source(view, schema, ctx.principal)
    business_date = _resolve_date(ctx, bd, raw_source, raw_params, report.namespace)
    refs = plan_references(ctx, report, schema)
    spec = _choose_preagg(ctx, report, version, refs)
    if spec is not None:
        pview = ctx.store.register(ctx.con, f"preagg/{spec.name}", view=f"preagg_{spec.name}")
        source, src_params = secured_source(pview, _schema(ctx.con, pview), ctx.principal)
        route = f"preagg:{spec.name}"
    else:
        source, src_params = refs.wrap(raw_source), [*raw_params, *refs.params]
        route = "raw"
    dims = list(report.dimensions)
    conds = ['"business_date" = ?', '"namespace" = ?']
    params: list[Any] = [*src_params, business_date, report.namespace]
    names = sorted({m.measure for m in report.measures})
    conds.append(f'"measure" IN ({", ".join("?" * len(names))})')
    params.extend(names)
    for f in report.all_filters:
        sql_f, p = _filter_sql(f)
        conds.append(sql_f)
        params.extend(p)
    where = " AND ".join(conds)
    plain = [m for m in report.measures if not m.is_risk]
    selects = [quote(d) for d in dims]
    agg_params: list[Any] = []
    for m in plain:
        selects.append(f"{_agg_sql(m, spec is not None)} AS {quote(m.label)}")
        agg_params.extend([m.measure] * (2 if m.agg == "avg" else 1))
    if not plain:
        selects.append("COUNT(*) AS __rows")
    group = f" GROUP BY {', '.join(quote(d) for d in dims)}" if dims else ""
    sql = f"SELECT {', '.join(selects)} FROM ({source}) AS s WHERE {where}{group}"
    # parameters in textual order: the SELECT's measure names come before the FROM's sub-select
    frame = ctx.con.sql(sql, params=[*agg_params, *params])
    long = frame.to_arrow_table().to_pandas()
    if not plain:
        long = long.drop(columns="__rows")
    risk = _risk_columns(ctx, report, dims, source, where, params)
    if risk is not None:
        long = long.merge(risk, on=dims, how="left") if dims else pd.concat([long, risk], axis=1)
    long = long[[*dims, *(m.label for m in report.measures)]]
    wide = _widen(long, list(report.row_dimensions), list(report.columns), [m.label for m in report.measures])
    return _Frame(wide, sql, route, version, business_date)


def _column_key(values: Sequence[Any]) -> str:
    return "/".join("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values)


def _widen(long: pd.DataFrame, rows: list[str], columns: list[str], labels: list[str]) -> pd.DataFrame:
    """Pivot the column dimensions wide: one column ``label[c1/c2]`` per measure and column-dimension value."""
    if long.empty or not columns:
        out = long
    else:
        keys = [_column_key(v) for v in long[columns].itertuples(index=False, name=None)]
        order = sorted(set(keys))
        cells: dict[tuple[Any, ...], dict[str, Any]] = {}
        for key, rec in zip(keys, long[rows + labels].itertuples(index=False, name=None), strict=True):
            row = cells.setdefault(tuple(rec[: len(rows)]), {})
            for label, v in zip(labels, rec[len(rows) :], strict=True):
                row[f"{label}[{key}]"] = v
        names = [f"{label}[{k}]" for k in order for label in labels]
        out = pd.DataFrame(
            [list(k) + [vals.get(n) for n in names] for k, vals in cells.items()], columns=rows + names
        )
        for n in names:
            if out[n].dtype == object:
                out[n] = pd.to_numeric(out[n])
    if rows and not out.empty:
        out = out.sort_values(rows, na_position="last", kind="stable").reset_index(drop=True)
    return out


def _diff(ctx: _Context, report: Report, as_of: AsOf | None) -> _Frame:
    assert report.left is not None and report.right is not None
    sides = []
    for side in (report.left, report.right):
        bd = side.business_date if side.business_date is not None else report.business_date
        sides.append(_pivot(ctx, report, bd, side.as_of if side.as_of is not None else as_of))
    left, right = sides
    rows = list(report.rows)
    values = [c for c in (*left.frame.columns, *right.frame.columns) if c not in rows]
    values = list(dict.fromkeys(values))
    lf = left.frame.reindex(columns=rows + values)
    rf = right.frame.reindex(columns=rows + values)
    joined = lf.merge(rf, on=rows, how="outer", suffixes=("_left", "_right"), indicator=True)
    out = joined[rows].copy()
    out["side"] = (
        joined["_merge"].map({"both": "both", "left_only": "left", "right_only": "right"}).astype(str)
    )
    for c in values:
        lv = pd.to_numeric(joined[f"{c}_left"])
        rv = pd.to_numeric(joined[f"{c}_right"])
        change = rv - lv
        out[f"{c}_left"] = lv
        out[f"{c}_right"] = rv
        out[f"{c}_change"] = change
        out[f"{c}_pct_change"] = (change / lv.abs()).where(lv.abs() > 0) * 100.0
    out = out.sort_values(rows, na_position="last", kind="stable").reset_index(drop=True)
    return _Frame(
        out,
        f"-- left\n{left.sql};\n-- right\n{right.sql}",
        f"{left.route} | {right.route}",
        right.version,
        right.business_date,
    )


def run_report(
    store: Any, report: Report, user: str, *, as_of: AsOf | None = None, route: str = "auto"
) -> ReportResult:
    """Run ``report`` for ``user`` against ``store`` and return its result; every run is audited.

    Parameters
    ----------
    store : RiskStore
        The risk store (``register``, ``preaggregations``, ``preagg_source_version``, ``catalog``).
    report : Report
        A validated report (:func:`load_report`).
    user : str
        The user; their principal's row filter and masks are applied on every path.
    as_of : int or datetime, optional
        A ``risk_results`` version or a timestamp (naive = UTC); overrides the report's ``as_of``.
    route : {"auto", "raw"}
        ``"raw"`` never uses a pre-aggregation (to check that both routes agree).
    """
    if route not in ("auto", "raw"):
        raise ConfigurationError("route", route, "auto or raw")
    catalog = store.catalog
    detail: dict[str, Any] = {"report": report.name, "kind": report.kind}
    try:
        principal = catalog.principal(user)
        con = duckdb.connect()
        try:
            ctx = _Context(store, principal, con, route)
            when = as_of if as_of is not None else report.as_of
            frame = (
                _diff(ctx, report, when)
                if report.kind == "diff"
                else _pivot(ctx, report, report.business_date, when)
            )
        finally:
            con.close()
    except (AccessDeniedError, QueryError) as exc:
        catalog.audit(user, "query", {**detail, "error": str(exc)}, None)
        raise
    table = pa.Table.from_pandas(frame.frame, preserve_index=False)
    catalog.audit(user, "query", {**detail, "route": frame.route, "version": frame.version}, table.num_rows)
    return ReportResult(
        table=table,
        route=frame.route,
        sql=frame.sql,
        version=frame.version,
        report=report.name,
        kind=report.kind,
        business_date=frame.business_date,
    )
