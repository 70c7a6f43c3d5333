"""Entitlements rewrite: a principal's row filter becomes a WHERE disjunction, its masked columns become NULL.

DuckDB has no row-level security, so every query the layer compiles goes through :func:`secured_source`, which
wraps the table's view in a sub-select that

* replaces each masked column by ``NULL`` (typed like the column) before any filter or grouping sees it, and
* keeps only the rows the principal's row filter admits: a disjunction over roles of a conjunction over columns
  of ``column IN (allowed values)``; a filter on a column the table lacks admits nothing.

A masked column asked for as a dimension or a filter is refused with :class:`AccessDeniedError` (rather than
answering with a column of NULLs, which would look like data), and so is a reference-data dimension of that name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import AccessDeniedError

__all__ = ["check_columns", "quote", "row_clauses", "row_predicate", "secured_source"]


def quote(name: str) -> str:
    """A DuckDB identifier, quoted (names come from reports and table schemas, never trusted as SQL)."""
    return '"' + name.replace('"', '""') + '"'


def row_clauses(principal: Any) -> list[dict[str, frozenset[str]]] | None:
    """The principal's row filter as a disjunction of conjunctions ``[{column: allowed values}]``; None = all rows.

    Reads ``principal.row_predicate()`` when the principal offers it (``None``, one mapping, or a sequence of
    mappings, one per role), else ``principal.row_filter`` (``None`` or one mapping).
    """
    raw = principal.row_predicate() if hasattr(principal, "row_predicate") else principal.row_filter
    if raw is None:
        return None
    terms: Iterable[Any] = [raw] if isinstance(raw, Mapping) else raw
    out: list[dict[str, frozenset[str]]] = []
    for term in terms:
        if term is None:  # one role that sees everything: the union is everything
            return None
        out.append({str(col): frozenset(str(v) for v in values) for col, values in term.items()})
    return out


def row_predicate(principal: Any, columns: Sequence[str]) -> tuple[str, list[Any]]:
    """SQL boolean expression and its parameters for the principal's row filter over a table with ``columns``."""
    clauses = row_clauses(principal)
    if clauses is None:
        return "TRUE", []
    parts: list[str] = []
    params: list[Any] = []
    for term in clauses:
        if any(col not in columns or not values for col, values in term.items()):
            continue  # a filter on a column this table lacks (or an empty set) admits no row of it
        if not term:
            return "TRUE", []
        conj = []
        for col, values in sorted(term.items()):
            ordered = sorted(values)
            conj.append(f"CAST({quote(col)} AS VARCHAR) IN ({', '.join('?' * len(ordered))})")
            params.extend(ordered)
        parts.append("(" + " AND ".join(conj) + ")")
    return ("(" + " OR ".join(parts) + ")" if parts else "FALSE"), params


def row_filter_columns(principal: Any) -> frozenset[str]:
    """Columns the principal's row filter reads (they must be in a pre-aggregation's grain to use it)."""
    clauses = row_clauses(principal)
    return frozenset() if clauses is None else frozenset(c for term in clauses for c in term)


def check_columns(principal: Any, used: Mapping[str, str]) -> None:
    """Refuse any masked column used as a dimension or filter; ``used`` maps column -> where it is used."""
    masked = frozenset(principal.masked_columns)
    for col, where in used.items():
        if col in masked:
            raise AccessDeniedError(principal.user, f"column {col!r} (masked; used in {where})")


def secured_source(view: str, schema: Mapping[str, str], principal: Any) -> tuple[str, list[Any]]:
    """``SELECT`` over ``view`` with masked columns nulled and the row filter applied, and its parameters.

    ``schema`` maps the view's column names to their DuckDB types.
    """
    masked = [c for c in schema if c in frozenset(principal.masked_columns)]
    replace = ""
    if masked:
        replace = " REPLACE (" + ", ".join(f"CAST(NULL AS {schema[c]}) AS {quote(c)}" for c in masked) + ")"
    where, params = row_predicate(principal, list(schema))
    return f"SELECT *{replace} FROM {quote(view)} WHERE {where}", params
