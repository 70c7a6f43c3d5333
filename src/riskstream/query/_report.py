"""The report DSL: pivot, diff and drill reports over the risk store, with an optional as-of (time travel).

A report is a small JSON or YAML document; users never write SQL. :func:`load_report` validates it and returns a
frozen :class:`Report`; every problem raises :class:`~riskstream.errors.QueryError` naming the field and the value.
Dimensions are checked against the table's columns when the report runs (the schema evolves), everything else here.

Example (YAML)::

    name: rates_by_book
    kind: pivot
    rows: [book]
    columns: [currency]
    measures:
      - {measure: pv, agg: sum}
      - {measure: pnl, agg: var, confidence: 0.99}
    filters: {desk: RATES, trader: [alice, bob], book: {ne: B9}}
    business_date: latest
    namespace: EOD
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import QueryError

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_HIERARCHY",
    "FILTER_OPS",
    "AsOf",
    "Filter",
    "MeasureSpec",
    "Report",
    "Side",
    "load_report",
]

Kind = Literal["pivot", "diff", "drill", "hierarchy"]
AsOf = int | datetime
# risk aggregations are computed from the cell's summed scenario P&L vector; the others from ``value``
AGGREGATIONS = ("sum", "count", "min", "max", "avg", "var", "es")
RISK_AGGREGATIONS = frozenset({"var", "es"})
FILTER_OPS = ("eq", "ne", "in", "not_in", "lt", "le", "gt", "ge")
DEFAULT_HIERARCHY = ("desk", "book", "trader", "trade_id")
# columns that are never dimensions: the figures themselves
NON_DIMENSIONS = frozenset({"value", "pnl_vector"})
_NAMESPACE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_KINDS = ("pivot", "diff", "drill", "hierarchy")
_KEYS = {
    "pivot": {
        "name",
        "kind",
        "rows",
        "columns",
        "measures",
        "filters",
        "business_date",
        "namespace",
        "as_of",
    },
    "drill": {"name", "kind", "columns", "measures", "filters", "business_date", "namespace", "as_of"}
    | {"hierarchy", "path"},
    "diff": {"name", "kind", "rows", "columns", "measures", "filters", "business_date", "namespace", "as_of"}
    | {"left", "right"},
    "hierarchy": {"name", "kind", "measures", "filters", "business_date", "namespace", "as_of"}
    | {"hierarchy", "path"},
}


@dataclass(frozen=True)
class MeasureSpec:
    """One figure of a report: rows whose ``measure`` column equals ``measure``, aggregated by ``agg``.

    ``sum``/``count``/``min``/``max``/``avg`` aggregate the ``value`` column (``count`` counts rows, ``avg`` is
    sum ÷ count). ``var``/``es`` are historical-simulation VaR and ES (positive losses, the scenario horizon of the
    stored vectors) of the cell's element-wise summed ``pnl_vector`` at ``confidence``, by
    :func:`riskstream.risk.var_es` with the empirical quantile rule — never a sum of VaRs.
    """

    measure: str
    agg: str
    confidence: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.measure, str) or not self.measure:
            raise QueryError(
                "measures.measure", self.measure, "name a measure (the table's 'measure' column)"
            )
        if self.agg not in AGGREGATIONS:
            raise QueryError(
                "measures.agg", self.agg, f"unknown aggregation (known: {', '.join(AGGREGATIONS)})"
            )
        if self.agg in RISK_AGGREGATIONS:
            c = self.confidence
            if not isinstance(c, int | float) or isinstance(c, bool) or not (0.0 < float(c) < 1.0):
                raise QueryError(
                    "measures.confidence", c, f"{self.agg} needs a confidence in (0, 1), e.g. 0.99"
                )
        elif self.confidence is not None:
            raise QueryError(
                "measures.confidence", self.confidence, f"only var/es take a confidence, not {self.agg}"
            )

    @property
    def label(self) -> str:
        """Column name of the figure: ``pv_sum``, ``pnl_var_99``, ``pnl_es_975``."""
        if self.confidence is None:
            return f"{self.measure}_{self.agg}"
        digits = f"{self.confidence * 100:g}".replace(".", "")
        return f"{self.measure}_{self.agg}_{digits}"

    @property
    def is_risk(self) -> bool:
        return self.agg in RISK_AGGREGATIONS


@dataclass(frozen=True)
class Filter:
    """``dimension op values``: ``eq``/``ne``/``lt``/``le``/``gt``/``ge`` take one value, ``in``/``not_in`` several."""

    dimension: str
    op: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if self.op not in FILTER_OPS:
            raise QueryError(
                f"filters.{self.dimension}", self.op, f"unknown operator (known: {', '.join(FILTER_OPS)})"
            )
        if self.op in ("in", "not_in"):
            if not self.values:
                raise QueryError(
                    f"filters.{self.dimension}", list(self.values), "an empty list admits nothing"
                )
        elif len(self.values) != 1:
            raise QueryError(f"filters.{self.dimension}", list(self.values), f"{self.op} takes one value")
        for v in self.values:
            if not isinstance(v, str | int | float | date) or isinstance(v, bool):
                raise QueryError(
                    f"filters.{self.dimension}", v, "filter values are strings, numbers or dates"
                )


@dataclass(frozen=True)
class Side:
    """One side of a diff: a business date and/or a table version or timestamp (``None`` = the report's)."""

    business_date: date | str | None = None
    as_of: AsOf | None = None


@dataclass(frozen=True)
class Report:
    """A validated report definition (see the module docstring and docs/reports.md)."""

    kind: Kind
    measures: tuple[MeasureSpec, ...]
    rows: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    business_date: date | str = "latest"  # a date, "today", "latest" or "previous" (the date before latest)
    namespace: str = "EOD"
    as_of: AsOf | None = None
    name: str = "report"
    left: Side | None = None  # diff
    right: Side | None = None  # diff
    hierarchy: tuple[str, ...] = DEFAULT_HIERARCHY  # drill, hierarchy
    path: tuple[tuple[str, str], ...] = ()  # drill, hierarchy: (level, value) from the top of the hierarchy

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise QueryError("kind", self.kind, f"unknown report kind (known: {', '.join(_KINDS)})")
        if not self.measures:
            raise QueryError("measures", [], "name at least one measure")
        if self.kind in ("drill", "hierarchy") and len(set(self.hierarchy)) != len(self.hierarchy):
            raise QueryError("hierarchy", list(self.hierarchy), "a level appears twice")
        labels = [m.label for m in self.measures]
        if len(set(labels)) != len(labels):
            raise QueryError("measures", labels, "a measure and aggregation appear twice")
        dims = self.dimensions
        if len(set(dims)) != len(dims):
            raise QueryError("rows", list(dims), "a dimension appears twice among rows and columns")
        if self.kind not in ("drill", "hierarchy") and not self.rows:
            raise QueryError("rows", [], "name at least one row dimension")
        if not _NAMESPACE.match(self.namespace):
            raise QueryError("namespace", self.namespace, "an upper-case word such as EOD or INTRADAY")
        if self.kind == "diff" and (self.left is None or self.right is None):
            raise QueryError(
                "left" if self.left is None else "right", None, "a diff needs a left and a right side"
            )
        if self.kind in ("drill", "hierarchy"):
            levels = [lvl for lvl, _ in self.path]
            if levels != list(self.hierarchy[: len(levels)]):
                raise QueryError(
                    "path", dict(self.path), f"must follow the hierarchy {list(self.hierarchy)} from its top"
                )
            if len(levels) >= len(self.hierarchy):
                raise QueryError("path", dict(self.path), "is already at the bottom of the hierarchy")

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Row then column dimensions (a drill: the level below the path; a hierarchy: every level below it)."""
        return self.row_dimensions + self.columns

    @property
    def row_dimensions(self) -> tuple[str, ...]:
        if self.kind == "drill":
            return (self.hierarchy[len(self.path)],)
        if self.kind == "hierarchy":
            return self.hierarchy[len(self.path) :]
        return self.rows

    @property
    def all_filters(self) -> tuple[Filter, ...]:
        """The report's filters plus, for a drill, equality on every level of its path."""
        return self.filters + tuple(Filter(level, "eq", (value,)) for level, value in self.path)


def _names(raw: Any, field_name: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple) or not all(isinstance(x, str) and x for x in raw):
        raise QueryError(field_name, raw, "a list of dimension names")
    for x in raw:
        if x in NON_DIMENSIONS:
            raise QueryError(field_name, x, "is a figure, not a dimension")
    return tuple(raw)


def _measure(raw: Any) -> MeasureSpec:
    if isinstance(raw, str):
        raw = {"measure": raw, "agg": "sum"}
    if not isinstance(raw, Mapping):
        raise QueryError(
            "measures", raw, "each measure is {measure: NAME, agg: sum|count|min|max|avg|var|es}"
        )
    unknown = set(raw) - {"measure", "agg", "confidence"}
    if unknown:
        raise QueryError("measures", sorted(unknown)[0], "unknown key in a measure")
    if "measure" not in raw:
        raise QueryError("measures.measure", None, "missing")
    return MeasureSpec(str(raw["measure"]), str(raw.get("agg", "sum")), raw.get("confidence"))


def _filter_value(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def _filters(raw: Any) -> tuple[Filter, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise QueryError("filters", raw, "a mapping {dimension: value | [values] | {op: value}}")
    out = []
    for dim, spec in raw.items():
        _names([dim], "filters")
        if isinstance(spec, Mapping):
            if len(spec) == 0:
                raise QueryError(f"filters.{dim}", dict(spec), "name an operator")
            for op, v in spec.items():
                values = tuple(v) if isinstance(v, list | tuple) else (v,)
                out.append(Filter(str(dim), str(op), tuple(_filter_value(x) for x in values)))
        elif isinstance(spec, list | tuple):
            out.append(Filter(str(dim), "in", tuple(_filter_value(x) for x in spec)))
        else:
            out.append(Filter(str(dim), "eq", (_filter_value(spec),)))
    return tuple(out)


def parse_business_date(raw: Any, field_name: str = "business_date") -> date | str:
    """A ``date``, an ISO ``YYYY-MM-DD`` string, ``"today"``, ``"latest"`` or ``"previous"`` (the newest date
    before ``latest`` that the user can see)."""
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if raw in ("today", "latest", "previous"):
        return str(raw)
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise QueryError(field_name, raw, "a date YYYY-MM-DD, 'today', 'latest' or 'previous'")


def parse_as_of(raw: Any, field_name: str = "as_of") -> AsOf | None:
    """A table version (int ≥ 0) or a timestamp (ISO string or datetime; naive means UTC)."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise QueryError(field_name, raw, "a table version (integer) or a timestamp")
    if isinstance(raw, int):
        if raw < 0:
            raise QueryError(field_name, raw, "a table version is ≥ 0")
        return raw
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    if isinstance(raw, str):
        try:
            raw = datetime.fromisoformat(raw)
        except ValueError:
            raise QueryError(field_name, raw, "a table version (integer) or an ISO timestamp") from None
    if isinstance(raw, datetime):
        return raw if raw.tzinfo is not None else raw.replace(tzinfo=UTC)
    raise QueryError(field_name, raw, "a table version (integer) or a timestamp")


def _side(raw: Any, field_name: str) -> Side | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return Side(as_of=parse_as_of(raw, field_name))
    if isinstance(raw, str | date):
        return Side(business_date=parse_business_date(raw, field_name))
    if not isinstance(raw, Mapping):
        raise QueryError(field_name, raw, "{business_date: DATE} and/or {as_of: VERSION|TIMESTAMP}")
    unknown = set(raw) - {"business_date", "as_of", "version"}
    if unknown:
        raise QueryError(field_name, sorted(unknown)[0], "unknown key in a diff side")
    bd = raw.get("business_date")
    as_of = raw.get("as_of", raw.get("version"))
    return Side(
        business_date=None if bd is None else parse_business_date(bd, f"{field_name}.business_date"),
        as_of=parse_as_of(as_of, f"{field_name}.as_of"),
    )


def _path(raw: Any, hierarchy: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        return tuple((str(k), str(v)) for k, v in raw.items())
    if isinstance(raw, list | tuple):
        if len(raw) > len(hierarchy):
            raise QueryError("path", list(raw), f"longer than the hierarchy {list(hierarchy)}")
        return tuple(zip(hierarchy, (str(v) for v in raw), strict=False))
    raise QueryError("path", raw, "a mapping {desk: RATES, book: B1} or a list [RATES, B1]")


def load_report(source: str | Path | Mapping[str, Any]) -> Report:
    """Load and validate a report from a mapping, a ``.json``/``.yaml``/``.yml`` file, or JSON/YAML text.

    Raises :class:`QueryError` naming the field and the value for any invalid entry.
    """
    raw: Any
    if isinstance(source, Mapping):
        raw = source
    else:
        text = str(source)
        path = Path(text) if isinstance(source, Path) or ("\n" not in text and len(text) < 4096) else None
        if path is not None and path.suffix.lower() in (".json", ".yaml", ".yml"):
            if not path.is_file():
                raise QueryError("report", text, "no such report file")
            text = path.read_text()
        try:
            raw = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise QueryError("report", str(source), f"not valid JSON or YAML: {exc}") from None
    if not isinstance(raw, Mapping):
        raise QueryError("report", raw, "a report is a mapping of fields")
    kind = raw.get("kind", "pivot")
    if kind not in _KINDS:
        raise QueryError("kind", kind, f"unknown report kind (known: {', '.join(_KINDS)})")
    unknown = set(raw) - _KEYS[kind]
    if unknown:
        raise QueryError(sorted(unknown)[0], raw[sorted(unknown)[0]], f"not a field of a {kind} report")
    measures = raw.get("measures")
    if not isinstance(measures, list | tuple) or not measures:
        raise QueryError("measures", measures, "a non-empty list of {measure, agg[, confidence]}")
    hierarchy = _names(raw.get("hierarchy"), "hierarchy") or DEFAULT_HIERARCHY
    name = raw.get("name", "report")
    if not isinstance(name, str) or not name:
        raise QueryError("name", name, "a non-empty string")
    namespace = raw.get("namespace", "EOD")
    if not isinstance(namespace, str):
        raise QueryError("namespace", namespace, "an upper-case word such as EOD")
    confidence_check = [
        m for m in measures if isinstance(m, Mapping) and isinstance(m.get("confidence"), float)
    ]
    for m in confidence_check:
        if math.isnan(m["confidence"]):
            raise QueryError("measures.confidence", m["confidence"], "not a number")
    return Report(
        kind=kind,
        name=name,
        rows=_names(raw.get("rows"), "rows"),
        columns=_names(raw.get("columns"), "columns"),
        measures=tuple(_measure(m) for m in measures),
        filters=_filters(raw.get("filters")),
        business_date=parse_business_date(raw.get("business_date", "latest")),
        namespace=namespace,
        as_of=parse_as_of(raw.get("as_of")),
        left=_side(raw.get("left"), "left"),
        right=_side(raw.get("right"), "right"),
        hierarchy=hierarchy,
        path=_path(raw.get("path"), hierarchy),
    )
