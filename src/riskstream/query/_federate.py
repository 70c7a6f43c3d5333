"""Federated dimensions: reference data from the SQL catalog and market history joined into a report in DuckDB.

A report dimension ``trade.<column>`` reads the catalog's trades table (joined on ``trade_id``),
``instrument.<column>`` its instruments table (through the trade's ``instrument_id``) and ``market.<factor_id>``
the factor's level on the business date from the ``market_history`` Delta table. The catalog rows are read
with the catalog's ``trades()`` / ``instruments()`` and registered on the query's DuckDB cursor as Arrow (DuckDB's
SQLite and PostgreSQL scanners are extension downloads, not available offline); only the columns the report names
are kept. An instrument's JSON ``attributes`` keys are dimensions too (``instrument.issuer``).

The join is applied to the already secured rows (row filter and masks first), and a reference column whose name
is masked for the principal (``trade.counterparty`` when ``counterparty`` is masked) is refused like any masked
column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..errors import QueryError
from ._entitle import quote

__all__ = ["REFERENCE_PREFIXES", "ReferenceJoin", "plan_references", "reference_table"]

REFERENCE_PREFIXES = ("trade", "instrument", "market")


@dataclass
class ReferenceJoin:
    """Joins that add reference dimensions to the secured source (``active`` False when the report has none)."""

    selects: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.selects)

    def wrap(self, source: str) -> str:
        if not self.active:
            return source
        return f"SELECT s.*, {', '.join(self.selects)} FROM ({source}) AS s " + " ".join(self.joins)


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


def reference_table(catalog: Any, kind: str, columns: list[str]) -> pa.Table:
    """Columns of the catalog's trades (``kind="trade"``) or instruments (``"instrument"``) as Arrow strings.

    Read through ``catalog.trades()`` / ``catalog.instruments()``; an instrument's ``attributes`` (JSON) keys are
    columns too (``instrument.issuer``), a column of the table winning over an attribute of the same name.
    """
    frame = catalog.trades() if kind == "trade" else catalog.instruments()
    known: dict[str, list[Any]] = {
        c: frame[c].tolist() for c in frame.columns if not (kind == "instrument" and c == "attributes")
    }
    if kind == "instrument" and "attributes" in frame.columns:
        records = [a if isinstance(a, Mapping) else {} for a in frame["attributes"].tolist()]
        for key in sorted({k for a in records for k in a}):
            if key not in known:
                known[key] = [a.get(key) for a in records]
    for c in columns:
        if c not in known:
            names = ", ".join(sorted(f"{kind}.{x}" for x in known))
            raise QueryError("rows", f"{kind}.{c}", f"unknown reference dimension (known: {names})")
    return pa.table({c: pa.array([_text(v) for v in known[c]], pa.string()) for c in columns})


def plan_references(ctx: Any, report: Any, schema: Mapping[str, str]) -> ReferenceJoin:
    """Register the reference rows the report needs on ``ctx.con`` and return the joins that add them."""
    wanted: dict[str, list[str]] = {"trade": [], "instrument": [], "market": []}
    for dim in report.dimensions:
        prefix, _, rest = dim.partition(".")
        if rest and prefix in wanted and dim not in schema:
            wanted[prefix].append(rest)
    plan = ReferenceJoin()
    if not any(wanted.values()):
        return plan
    if wanted["trade"] or wanted["instrument"]:
        cols = ["trade_id", *(["instrument_id"] if wanted["instrument"] else []), *wanted["trade"]]
        trades = reference_table(ctx.store.catalog, "trade", list(dict.fromkeys(cols)))
        ctx.con.register("ref_trade", trades)
        plan.joins.append('LEFT JOIN ref_trade AS t ON t."trade_id" = CAST(s."trade_id" AS VARCHAR)')
        plan.selects += [f"t.{quote(c)} AS {quote('trade.' + c)}" for c in wanted["trade"]]
    if wanted["instrument"]:
        inst = reference_table(
            ctx.store.catalog, "instrument", list(dict.fromkeys(["instrument_id", *wanted["instrument"]]))
        )
        ctx.con.register("ref_instrument", inst)
        plan.joins.append('LEFT JOIN ref_instrument AS i ON i."instrument_id" = t."instrument_id"')
        plan.selects += [f"i.{quote(c)} AS {quote('instrument.' + c)}" for c in wanted["instrument"]]
    if wanted["market"]:
        view = ctx.store.register(ctx.con, "market_history", view="ref_market")
        for k, factor in enumerate(wanted["market"]):
            alias = f"m{k}"
            plan.joins.append(
                f'LEFT JOIN (SELECT "date", "value" FROM {quote(view)} WHERE "factor_id" = ?) AS {alias} '
                f'ON {alias}."date" = s."business_date"'
            )
            plan.params.append(factor)
            plan.selects.append(f'{alias}."value" AS {quote("market." + factor)}')
    return plan
