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

import os
from collections.abc import Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from ..errors import AccessDeniedError, ConfigurationError, QueryError
from ..risk import var_es
from ._entitle import check_columns, quote, row_clauses, row_filter_columns, secured_source
from ._federate import REFERENCE_PREFIXES, ReferenceJoin, plan_references
from ._report import NON_DIMENSIONS, AsOf, Filter, MeasureSpec, Report
from ._result import ReportResult
from ._session import Cursor, Session, results_version, session

__all__ = ["run_report"]

RISK_TABLE = "risk_results"
PREAGG_KEYS = ("business_date", "namespace", "measure")


@dataclass
class _Context:
    store: Any
    principal: Any
    session: Session
    cursor: Cursor
    route: str
    latest_version: int | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self.cursor.con

    def current_version(self) -> int:
        """The latest risk_results version, read once per report (every side of a diff sees the same one)."""
        if self.latest_version is None:
            self.latest_version = results_version(self.store)
        return self.latest_version

    def raw(self, as_of: AsOf | None) -> tuple[str, dict[str, str], int | None, tuple[Any, ...]]:
        """The risk_results view at ``as_of``, its schema, its version and its cache key."""
        key: tuple[Any, ...]
        pinned: int | None = None
        if isinstance(as_of, datetime):
            key = ("at", as_of)
        elif isinstance(as_of, int):
            key, pinned = ("version", as_of), as_of
        else:
            current = self.current_version()
            key, pinned = (("version", current), current) if current >= 0 else (("empty",), None)

        def register(con: duckdb.DuckDBPyConnection, name: str) -> tuple[str, int | None]:
            if isinstance(as_of, datetime):
                return self.store.register(con, RISK_TABLE, view=name, timestamp=as_of), _version_at(
                    self.store, as_of
                )
            if pinned is None:
                return self.store.register(con, RISK_TABLE, view=name), None
            return self.store.register(con, RISK_TABLE, view=name, version=pinned), pinned

        view, schema, version = self.cursor.view(key, register)
        return view, schema, version, key


@dataclass(frozen=True)
class _Frame:
    frame: pd.DataFrame | pa.Table
    sql: str
    route: str
    version: int | None
    business_date: date | None


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> pa.Table:
    """Run ``sql`` with bound ``params`` and fetch the result as Arrow."""
    table = con.sql(sql, params=list(params)).to_arrow_table()
    assert table is not None
    return table


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


def _clause_key(principal: Any) -> Hashable:
    clauses = row_clauses(principal)
    if clauses is None:
        return None
    return tuple(sorted(tuple(sorted((c, tuple(sorted(v))) for c, v in term.items())) for term in clauses))


def _resolve_date(ctx: _Context, bd: date | str, src: _Source, namespace: str) -> date | None:
    """A fixed date as is; ``today``; ``latest``: the newest date with rows the principal may see; ``previous``:
    the newest such date before ``latest`` (a day-over-day diff's left side). Cached per table version,
    namespace and row filter — both routes give the same date."""
    if isinstance(bd, date):
        return bd
    if bd == "today":
        return date.today()

    def newest(before: date | None) -> date | None:
        cond, extra = ("AND business_date < ?", [before]) if before is not None else ("", [])
        rows = ctx.con.execute(
            f"SELECT max(business_date) FROM ({src.sql}) AS s WHERE namespace = ? {cond}",
            [*src.params, namespace, *extra],
        ).fetchall()
        return rows[0][0] if rows else None

    def resolve() -> date | None:
        latest = newest(None)
        return latest if bd == "latest" or latest is None else newest(latest)

    if src.view_key[0] == "at":  # a timestamp: the version it maps to is in the view's cache entry
        return resolve()
    return ctx.session.latest((src.view_key, namespace, _clause_key(ctx.principal), bd), resolve)


def _preagg_table(ctx: _Context, name: str, version: int) -> tuple[str, dict[str, str]] | None:
    """The pre-aggregation ``name`` as built from risk_results ``version``, loaded into DuckDB memory once."""
    store = ctx.store

    def load(con: duckdb.DuckDBPyConnection, table: str) -> bool:
        if store.preagg_source_version(name) != version:
            return False
        view = store.register(con, f"preagg/{name}", view=f"load_{table}")
        con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT * FROM {quote(view)}")
        con.execute(f"DROP VIEW IF EXISTS {quote(view)}")
        # source versions only grow: unchanged after the copy means the copy was built from ``version``
        return bool(store.preagg_source_version(name) == version)

    return ctx.session.preagg(name, version, load)


def _choose_preagg(
    ctx: _Context, report: Report, version: int | None, refs: ReferenceJoin
) -> tuple[Any, str, dict[str, str]] | None:
    """The smallest eligible pre-aggregation built from ``version``: (spec, in-memory table, its schema)."""
    if ctx.route == "raw" or refs.active or version is None:
        return None
    if any(m.agg in ("min", "max") for m in report.measures):
        return None
    needed = set(report.dimensions) | {f.dimension for f in report.all_filters}
    needed |= row_filter_columns(ctx.principal) | set(PREAGG_KEYS)
    eligible = [spec for spec in ctx.store.preaggregations() if needed <= set(spec.dimensions)]
    for spec in sorted(eligible, key=lambda s: len(s.dimensions)):
        loaded = _preagg_table(ctx, spec.name, version)
        if loaded is not None:
            return spec, loaded[0], loaded[1]
    return None


@dataclass(frozen=True)
class _Source:
    """The secured rows a report reads: SQL text, its parameters, the route, and the raw view's cache key."""

    sql: str
    params: list[Any]
    route: str
    preagg: bool
    version: int | None
    view_key: tuple[Any, ...]


def _source(ctx: _Context, report: Report, as_of: AsOf | None) -> _Source:
    """Validate the report's columns and pick its secured source: a pre-aggregation, or the raw view."""
    view, schema, version, key = ctx.raw(as_of)
    _validate_columns(report, schema, ctx.principal)
    refs = plan_references(ctx, report, schema)
    chosen = _choose_preagg(ctx, report, version, refs)
    if chosen is not None:
        spec, table, pschema = chosen
        sql, params = secured_source(table, pschema, ctx.principal)
        return _Source(sql, params, f"preagg:{spec.name}", True, version, key)
    raw_sql, raw_params = secured_source(view, schema, ctx.principal)
    return _Source(refs.wrap(raw_sql), [*raw_params, *refs.params], "raw", False, version, key)


def _where(report: Report, business_date: date | None, names: Sequence[str]) -> tuple[str, list[Any]]:
    conds = ['"business_date" = ?', '"namespace" = ?', f'"measure" IN ({", ".join("?" * len(names))})']
    params: list[Any] = [business_date, report.namespace, *names]
    for f in report.all_filters:
        sql_f, p = _filter_sql(f)
        conds.append(sql_f)
        params.extend(p)
    return " AND ".join(conds), params


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
    matrix = _vector_matrix(vectors)
    codes = keys.groupby(list(keys.columns), dropna=False, sort=False).ngroup().to_numpy()
    groups = int(codes.max()) + 1 if len(codes) else 0
    first = _first_rows(codes, groups)
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
    table = _arrow(ctx.con, sql, [*params, *names])
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


def _pivot(
    ctx: _Context, report: Report, bd: date | str, as_of: AsOf | None, *, arrow: bool = False
) -> _Frame:
    """A pivot's result: as an Arrow table widened in Arrow/numpy when ``arrow`` and it has no risk figures
    (the table the pandas path would give, without its cost), else as a pandas frame."""
    src = _source(ctx, report, as_of)
    business_date = _resolve_date(ctx, bd, src, report.namespace)
    dims = list(report.dimensions)
    names = sorted({m.measure for m in report.measures})
    where, params = _where(report, business_date, names)
    plain = [m for m in report.measures if not m.is_risk]
    selects = [quote(d) for d in dims]
    agg_params: list[Any] = []
    for m in plain:
        selects.append(f"{_agg_sql(m, src.preagg)} AS {quote(m.label)}")
        agg_params.extend([m.measure] * (2 if m.agg == "avg" else 1))
    if not plain:
        selects.append("COUNT(*) AS __rows")
    group = f" GROUP BY {', '.join(quote(d) for d in dims)}" if dims else ""
    sql = f"SELECT {', '.join(selects)} FROM ({src.sql}) AS s WHERE {where}{group}"
    # parameters in textual order: the SELECT's measure names come before the FROM's sub-select
    fetched = _arrow(ctx.con, sql, [*agg_params, *src.params, *params])
    if arrow and len(plain) == len(report.measures) and fetched.num_rows:
        wide_arrow = _widen_arrow(
            fetched, list(report.row_dimensions), list(report.columns), [m.label for m in report.measures]
        )
        return _Frame(wide_arrow, sql, src.route, src.version, business_date)
    long = fetched.to_pandas()
    if not plain:
        long = long.drop(columns="__rows")
    risk = _risk_columns(ctx, report, dims, src.sql, where, [*src.params, *params])
    if risk is not None:
        long = long.merge(risk, on=dims, how="left") if dims else pd.concat([long, risk], axis=1)
    long = long[[*dims, *(m.label for m in report.measures)]]
    wide = _widen(long, list(report.row_dimensions), list(report.columns), [m.label for m in report.measures])
    return _Frame(wide, sql, src.route, src.version, business_date)


def _dense_codes(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """0-based codes of a column's distinct values (NULL is a value of its own)."""
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.unify_dictionaries()
        return np.concatenate(
            [np.asarray(c.indices, dtype=np.int64) for c in encoded.chunks] or [np.zeros(0, np.int64)]
        )
    return np.asarray(encoded.indices, dtype=np.int64)


def _depth_codes(keys: pa.Table, levels: Sequence[str]) -> list[np.ndarray]:
    """Node codes per depth for each key row: depth 0 is the root (all 0), depth d groups by levels[:d]."""
    current = np.zeros(keys.num_rows, dtype=np.int64)
    codes = [current]
    for level in levels:
        step = _dense_codes(keys.column(level))
        current, _ = pd.factorize(current * (int(step.max(initial=0)) + 1) + step)
        current = np.asarray(current, dtype=np.int64)
        codes.append(current)
    return codes


def _first_rows(codes: np.ndarray, n: int) -> np.ndarray:
    """Index of the first key row of each of the ``n`` nodes."""
    first = np.full(n, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes), dtype=np.int64))
    return first


def _vector_matrix(vectors: pa.ChunkedArray) -> np.ndarray:
    """Rows × scenarios view of a list<float64> column (zero-copy over the Arrow values when possible)."""
    arr = vectors.combine_chunks() if isinstance(vectors, pa.ChunkedArray) else vectors
    if isinstance(arr, pa.LargeListArray):
        arr = arr.cast(pa.list_(pa.float64()))
    offsets = np.asarray(arr.offsets)
    lengths = np.diff(offsets)
    n = int(lengths[0]) if len(lengths) else 0
    if len(lengths) and (lengths != n).any():
        raise QueryError(
            "pnl_vector", sorted(set(lengths.tolist()))[:5], "vectors of different lengths in one report"
        )
    flat = arr.values.to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float64)[offsets[0] : offsets[-1]].reshape(len(lengths), n)


def _rollup_vectors(
    matrix: np.ndarray, codes: list[np.ndarray], sizes: list[int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Element-wise sums of the rows' vectors at every depth, each depth summed from the one below it.

    Returns per depth ``(sums, node)``: row ``i`` of ``sums`` is the summed vector of node ``node[i]``. When every
    leaf node holds one row (a hierarchy down to trades), the deepest level is ``matrix`` itself, uncopied.
    """
    deepest = len(codes) - 1
    out: list[tuple[np.ndarray, np.ndarray]] = [(np.empty((0, 0)), np.empty(0, np.int64))] * len(codes)
    if len(codes[deepest]) == sizes[deepest]:
        out[deepest] = (matrix, codes[deepest])
    else:
        onehot = sp.csr_matrix(
            (np.ones(len(codes[deepest])), (codes[deepest], np.arange(len(codes[deepest])))),
            shape=(sizes[deepest], len(codes[deepest])),
        )
        out[deepest] = (np.asarray(onehot @ matrix), np.arange(sizes[deepest], dtype=np.int64))
    for depth in range(deepest - 1, -1, -1):
        below, below_node = out[depth + 1]
        first = _first_rows(codes[depth + 1], sizes[depth + 1])
        parent = codes[depth][first[below_node]]
        onehot = sp.csr_matrix(
            (np.ones(len(parent)), (parent, np.arange(len(parent)))), shape=(sizes[depth], len(parent))
        )
        out[depth] = (np.asarray(onehot @ below), np.arange(sizes[depth], dtype=np.int64))
    return out


_VAR_CHUNK = 4096


def _row_var_es(matrix: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """`var_es` of every row, in blocks of rows spread over threads (numpy's partition releases the GIL, and a
    block of a few thousand vectors stays in cache): the same figures as one call, several times faster."""
    if len(matrix) <= _VAR_CHUNK:
        return var_es(matrix, confidence)
    blocks = [matrix[i : i + _VAR_CHUNK] for i in range(0, len(matrix), _VAR_CHUNK)]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        parts = list(pool.map(lambda block: var_es(block, confidence), blocks))
    return np.concatenate([v for v, _ in parts]), np.concatenate([e for _, e in parts])


def _hierarchy(ctx: _Context, report: Report, bd: date | str, as_of: AsOf | None) -> _Frame:
    """Every node of the hierarchy below the report's path (the path's node itself first, then depth-first):
    plain figures rolled up from the leaf cells, VaR/ES from each node's element-wise summed vectors."""
    src = _source(ctx, report, as_of)
    business_date = _resolve_date(ctx, bd, src, report.namespace)
    levels = list(report.row_dimensions)
    names = sorted({m.measure for m in report.measures})
    where, params = _where(report, business_date, names)
    lv = ", ".join(quote(level) for level in levels)
    count = "SUM(row_count)" if src.preagg else "COUNT(*)"
    extremes = (
        "CAST(NULL AS DOUBLE) AS mn, CAST(NULL AS DOUBLE) AS mx"
        if src.preagg
        else 'MIN("value") AS mn, MAX("value") AS mx'
    )
    sql = (
        f'SELECT {lv}, "measure", SUM("value") AS sm, CAST({count} AS BIGINT) AS n, {extremes} '
        f'FROM ({src.sql}) AS s WHERE {where} GROUP BY {lv}, "measure"'
    )
    leaf = _arrow(ctx.con, sql, [*src.params, *params])
    risk = [m for m in report.measures if m.is_risk]
    vec = None
    if risk:
        risk_names = sorted({m.measure for m in risk})
        vec = _arrow(
            ctx.con,
            f'SELECT {lv}, "measure", "pnl_vector" FROM ({src.sql}) AS s WHERE {where} '
            f'AND "measure" IN ({", ".join("?" * len(risk_names))}) AND "pnl_vector" IS NOT NULL',
            [*src.params, *params, *risk_names],
        )
    keys = leaf.select(levels)
    if vec is not None:
        keys = pa.concat_tables([keys, vec.select(levels).cast(keys.schema)])
    codes = _depth_codes(keys, levels)
    sizes = [int(c.max(initial=-1)) + 1 if len(c) else 0 for c in codes]
    sizes[0] = 1 if keys.num_rows else 0
    n_leaf = leaf.num_rows
    figures: dict[str, list[np.ndarray]] = {}
    measure_col = np.asarray(leaf.column("measure").to_numpy(zero_copy_only=False))
    sm = np.asarray(leaf.column("sm").to_numpy(zero_copy_only=False), dtype=np.float64)
    n = np.asarray(leaf.column("n").to_numpy(zero_copy_only=False), dtype=np.float64)
    for m in report.measures:
        if m.is_risk:
            continue
        mask = measure_col == m.measure
        per_depth = []
        for depth, c in enumerate(codes):
            rows = c[:n_leaf][mask]
            cnt = np.bincount(rows, weights=n[mask], minlength=sizes[depth])
            total = np.bincount(rows, weights=sm[mask], minlength=sizes[depth])
            if m.agg == "count":
                out = cnt
            elif m.agg in ("min", "max"):
                col = "mn" if m.agg == "min" else "mx"
                vals = np.asarray(leaf.column(col).to_numpy(zero_copy_only=False), dtype=np.float64)[mask]
                out = np.full(sizes[depth], np.inf if m.agg == "min" else -np.inf)
                (np.minimum if m.agg == "min" else np.maximum).at(out, rows, vals)
                out[cnt == 0] = np.nan
            else:
                with np.errstate(invalid="ignore", divide="ignore"):
                    out = np.where(cnt > 0, total / cnt if m.agg == "avg" else total, np.nan)
            per_depth.append(out)
        figures[m.label] = per_depth
    if vec is not None:
        vec_measure = np.asarray(vec.column("measure").to_numpy(zero_copy_only=False))
        for name in sorted({m.measure for m in risk}):
            mask = vec_measure == name
            wanted = [m for m in risk if m.measure == name]
            if not mask.any():
                for m in wanted:
                    figures[m.label] = [np.full(size, np.nan) for size in sizes]
                continue
            rows = np.flatnonzero(mask)
            vectors = vec.column("pnl_vector")
            matrix = _vector_matrix(vectors if len(rows) == len(mask) else vectors.take(pa.array(rows)))
            sub = [c[n_leaf:][rows] for c in codes]
            # node numbering per depth is shared with the plain figures; nodes without vectors stay NaN
            sub_codes, sub_sizes, back = [], [], []
            for c in sub:
                local, uniques = pd.factorize(c)
                sub_codes.append(np.asarray(local, dtype=np.int64))
                sub_sizes.append(len(uniques))
                back.append(np.asarray(uniques, dtype=np.int64))
            sums = _rollup_vectors(matrix, sub_codes, sub_sizes)
            for conf in sorted({float(m.confidence or 0.99) for m in wanted}):
                per_depth_var, per_depth_es = [], []
                for depth, (summed, node) in enumerate(sums):
                    v = np.full(sizes[depth], np.nan)
                    e = np.full(sizes[depth], np.nan)
                    if len(summed):
                        var_d, es_d = _row_var_es(summed, conf)
                        v[back[depth][node]] = var_d
                        e[back[depth][node]] = es_d
                    per_depth_var.append(v)
                    per_depth_es.append(e)
                for m in wanted:
                    if float(m.confidence or 0.99) == conf:
                        figures[m.label] = per_depth_var if m.agg == "var" else per_depth_es
    # the output: one row per node, its level, the hierarchy's columns (NULL below the node), its figures
    path = dict(report.path)
    root = report.path[-1][0] if report.path else "total"
    parts: dict[str, list[pa.Array]] = {name: [] for name in ["level", *report.hierarchy]}
    for depth, c in enumerate(codes):
        count_d = sizes[depth]
        if count_d == 0:
            continue
        first = _first_rows(c, count_d)
        parts["level"].append(pa.array([root if depth == 0 else levels[depth - 1]] * count_d, pa.string()))
        for name in report.hierarchy:
            typ = keys.schema.field(name).type if name in levels else pa.string()
            if name in path:
                parts[name].append(pa.array([path[name]] * count_d, typ))
            elif levels.index(name) < depth:
                parts[name].append(keys.column(name).take(pa.array(first)).combine_chunks())
            else:
                parts[name].append(pa.nulls(count_d, typ))
    columns: dict[str, pa.Array] = {}
    for name, pieces in parts.items():
        columns[name] = pa.concat_arrays(pieces) if pieces else pa.array([], pa.string())
    for m in report.measures:
        label = m.label
        values = [figures[label][d] for d in range(len(codes)) if sizes[d]]
        joined = np.concatenate(values) if values else np.zeros(0)
        if m.agg == "count":
            columns[label] = pa.array(joined.astype(np.int64))
        else:
            columns[label] = pa.array(joined, pa.float64(), from_pandas=True)
    table = pa.table(columns)
    if table.num_rows:
        # depth-first: a node's NULLs below its level sort before its children
        order = pc.sort_indices(table, sort_keys=[(lvl, "ascending", "at_start") for lvl in levels])
        table = table.take(order)
    return _Frame(table, sql, src.route, src.version, business_date)


def _column_key(values: Sequence[Any]) -> str:
    return "/".join("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values)


def _widen(long: pd.DataFrame, rows: list[str], columns: list[str], labels: list[str]) -> pd.DataFrame:
    """Pivot the column dimensions wide: one column ``label[c1/c2]`` per measure and column-dimension value."""
    if long.empty or not columns:
        out = long
    else:
        keys = [_column_key(v) for v in zip(*(long[c].tolist() for c in columns), strict=True)]
        order = sorted(set(keys))
        col_code = pd.Index(order).get_indexer(pd.Index(keys))
        if rows:
            row_code, row_keys = pd.MultiIndex.from_frame(long[rows]).factorize()
            assert isinstance(row_keys, pd.MultiIndex)
            out = row_keys.to_frame(index=False)
            out.columns = rows
        else:
            row_code, out = np.zeros(len(long), np.int64), pd.DataFrame(index=[0])
        data: dict[str, Any] = {}
        for label in labels:
            values = long[label].to_numpy()
            filled = np.zeros((len(out), len(order)), dtype=bool)
            filled[row_code, col_code] = True
            numeric = values.dtype.kind in "iuf"
            grid = np.full(
                (len(out), len(order)), np.nan if numeric else None, dtype=float if numeric else object
            )
            grid[row_code, col_code] = values
            for j, key in enumerate(order):
                column = grid[:, j]
                if values.dtype.kind in "iu" and filled[:, j].all():
                    column = column.astype(values.dtype)
                data[f"{label}[{key}]"] = column
        names = [f"{label}[{k}]" for k in order for label in labels]
        out = pd.concat([out.reset_index(drop=True), pd.DataFrame({n: data[n] for n in names})], axis=1)
        if not rows:
            out = out[names]
    if rows and not out.empty:
        out = out.sort_values(rows, na_position="last", kind="stable").reset_index(drop=True)
    return out


def _as_pandas_gives(column: pa.ChunkedArray) -> pa.Array:
    """``column`` as a trip through pandas leaves it (NaN → NULL, strings → large_string, integers with NULLs →
    float64): what the pandas path returns, so both paths give the same table."""
    return pa.array(column.to_pandas(), from_pandas=True)


def _widen_arrow(long: pa.Table, rows: list[str], columns: list[str], labels: list[str]) -> pa.Table:
    """`_widen` followed by `_to_arrow`, on Arrow columns and numpy (``long`` non-empty, numeric figures): the
    same table — columns ``label[key]`` by sorted column key, absent cells and NaN as NULL, a count column kept
    integer when every row has it, rows sorted by the row dimensions with NULL last."""
    if columns:
        keys = [_column_key(tuple(r.values())) for r in long.select(columns).to_pylist()]
        order = sorted(set(keys))
        col_code = np.asarray(pd.Index(order).get_indexer(pd.Index(keys)), dtype=np.int64)
        if rows:
            row_code = np.zeros(long.num_rows, dtype=np.int64)
            for name in rows:
                step = _dense_codes(long.column(name))
                codes, _ = pd.factorize(row_code * (int(step.max(initial=0)) + 1) + step)
                row_code = np.asarray(codes, dtype=np.int64)
            n_rows = int(row_code.max()) + 1
            head = long.select(rows).take(pa.array(_first_rows(row_code, n_rows)))
            out: dict[str, pa.Array | pa.ChunkedArray] = {r: _as_pandas_gives(head.column(r)) for r in rows}
        else:
            row_code, n_rows, out = np.zeros(long.num_rows, dtype=np.int64), 1, {}
        filled = np.zeros((n_rows, len(order)), dtype=bool)
        filled[row_code, col_code] = True
        grids = {}
        for label in labels:
            column = long.column(label)
            values = np.asarray(column.to_numpy(), dtype=np.float64)
            grid = np.full((n_rows, len(order)), np.nan)
            grid[row_code, col_code] = values
            grids[label] = (grid, pa.types.is_integer(column.type) and column.null_count == 0)
        for j, key in enumerate(order):
            for label in labels:
                grid, integer = grids[label]
                if integer and filled[:, j].all():
                    out[f"{label}[{key}]"] = pa.array(grid[:, j].astype(np.int64))
                else:
                    out[f"{label}[{key}]"] = pa.array(grid[:, j], pa.float64(), from_pandas=True)
        table = pa.table(out)
    else:
        table = pa.table({name: _as_pandas_gives(long.column(name)) for name in long.column_names})
    if rows:
        table = table.take(pc.sort_indices(table, sort_keys=[(r, "ascending") for r in rows]))
    return table


def _diff(ctx: _Context, report: Report, as_of: AsOf | None) -> _Frame:
    assert report.left is not None and report.right is not None
    sides = []
    for side in (report.left, report.right):
        bd = side.business_date if side.business_date is not None else report.business_date
        sides.append(_pivot(ctx, report, bd, side.as_of if side.as_of is not None else as_of))
    left, right = sides
    assert isinstance(left.frame, pd.DataFrame) and isinstance(right.frame, pd.DataFrame)
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


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """The result frame as Arrow (NaN becomes NULL, as ``Table.from_pandas`` does, without its metadata)."""
    return pa.table({str(c): pa.array(frame[c], from_pandas=True) for c in frame.columns})


def run_report(
    store: Any, report: Report, user: str, *, as_of: AsOf | None = None, route: str = "auto"
) -> ReportResult:
    """Run ``report`` for ``user`` against ``store`` and return its result; every run is audited.

    Parameters
    ----------
    store : RiskStore
        The risk store (``register``, ``results_version``, ``preaggregations``, ``preagg_source_version``,
        ``catalog``). Its query session (DuckDB database, caches, audit writer) is kept between calls; release it
        with :func:`close_query_session`.
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
    state = session(store)
    detail: dict[str, Any] = {"report": report.name, "kind": report.kind}
    try:
        principal = state.principal(catalog, user)
        with state.cursor() as cursor:
            ctx = _Context(store, principal, state, cursor, route)
            when = as_of if as_of is not None else report.as_of
            if report.kind == "diff":
                frame = _diff(ctx, report, when)
            elif report.kind == "hierarchy":
                frame = _hierarchy(ctx, report, report.business_date, when)
            else:
                frame = _pivot(ctx, report, report.business_date, when, arrow=True)
    except (AccessDeniedError, QueryError) as exc:
        state.audit.submit(user, "query", {**detail, "error": str(exc)}, None)
        raise
    table = frame.frame if isinstance(frame.frame, pa.Table) else _to_arrow(frame.frame)
    state.audit.submit(
        user, "query", {**detail, "route": frame.route, "version": frame.version}, table.num_rows
    )
    return ReportResult(
        table=table,
        route=frame.route,
        sql=frame.sql,
        version=frame.version,
        report=report.name,
        kind=report.kind,
        business_date=frame.business_date,
    )
