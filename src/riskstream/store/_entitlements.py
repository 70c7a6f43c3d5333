"""Entitlements: who may see which rows and columns of the risk store.

A user belongs to groups (from the identity provider: SAML/OIDC group claims, or the catalog), each group maps to
roles, and each role carries

- a **row filter** — ``None`` (or an empty mapping) admits every row; otherwise ``column -> allowed values``, and
  the role admits a row when *every* column of its filter holds one of that column's allowed values (AND across
  columns, IN within a column);
- **masked columns** — shown as NULL / ``"***"`` to the role.

A user with several roles sees the **union** of what the roles admit: a row is visible when ANY role admits it.
A column is masked only when EVERY role of the user masks it (a role that may see a column shows it). So the
effective row filter is a disjunction of conjunctions, :meth:`Principal.row_predicate`, which the query layer
compiles to SQL (``(c1 IN (...) AND c2 IN (...)) OR (...)``); :meth:`Principal.admits` evaluates the same
predicate on one row in pure Python and is the reference that compiled SQL is tested against.

Filter values are strings and compare by equality; a row lacking a filtered column (or holding NULL there) is not
admitted by a clause on that column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from riskstream.errors import AccessDeniedError, InvalidFieldError

__all__ = ["Clause", "Principal", "RoleDefinition", "combine_roles", "normalise_row_filter"]

#: One conjunction: column -> allowed values (a row matches when every column holds an allowed value).
Clause = Mapping[str, frozenset[str]]


def normalise_row_filter(
    row_filter: Mapping[str, Iterable[str]] | None, *, where: str = "row_filter"
) -> Clause | None:
    """Validate a row filter and freeze it: ``None`` or ``{}`` → ``None`` (all rows); values become frozensets.

    Raises InvalidFieldError for a non-string column or value, or a column with no allowed value (a role that
    admits nothing is a mistake, not a role).
    """
    if row_filter is None or len(row_filter) == 0:
        return None
    frozen: dict[str, frozenset[str]] = {}
    for column, values in row_filter.items():
        if not isinstance(column, str) or not column:
            raise InvalidFieldError(
                "row_filter", column, "a filtered column is a non-empty string", where=where
            )
        if isinstance(values, str):
            values = (values,)  # a bare string is one value, not its characters
        allowed = frozenset(values)
        if not allowed:
            raise InvalidFieldError(
                f"row_filter[{column!r}]",
                list(allowed),
                "allows no value: the role would admit no row",
                where=where,
            )
        bad = [v for v in allowed if not isinstance(v, str)]
        if bad:
            raise InvalidFieldError(
                f"row_filter[{column!r}]", bad[0], "allowed values are strings", where=where
            )
        frozen[column] = allowed
    return MappingProxyType(frozen)


def _subsumes(wide: Clause, narrow: Clause) -> bool:
    """True when every row ``narrow`` admits is admitted by ``wide`` (wide constrains fewer columns, each wider)."""
    return all(column in narrow and narrow[column] <= allowed for column, allowed in wide.items())


def _merge_pair(a: Clause, b: Clause) -> Clause | None:
    """``a OR b`` as one clause when they share their columns and differ in at most one of them; else None."""
    if a.keys() != b.keys():
        return None
    differing = [c for c in a if a[c] != b[c]]
    if len(differing) > 1:
        return None
    merged = dict(a)
    for column in differing:
        merged[column] = a[column] | b[column]
    return MappingProxyType(merged)


def _simplify(clauses: list[Clause]) -> list[Clause]:
    """An equivalent, shorter disjunction: drop clauses another one covers, merge clauses differing in one column.

    Both rewrites preserve the set of admitted rows exactly; the result is sorted so that it is deterministic.
    """
    changed = True
    while changed:
        changed = False
        kept: list[Clause] = []
        for clause in clauses:
            if any(_subsumes(other, clause) for other in kept):
                continue
            kept = [other for other in kept if not _subsumes(clause, other)]
            kept.append(clause)
        clauses = kept
        for i in range(len(clauses)):
            for j in range(i + 1, len(clauses)):
                merged = _merge_pair(clauses[i], clauses[j])
                if merged is not None:
                    clauses = [c for k, c in enumerate(clauses) if k not in (i, j)] + [merged]
                    changed = True
                    break
            if changed:
                break
    return sorted(clauses, key=lambda c: sorted((k, sorted(v)) for k, v in c.items()))


@dataclass(frozen=True)
class RoleDefinition:
    """A role as the catalog stores it: its row filter (None = all rows) and the columns it masks."""

    role: str
    row_filter: Clause | None = None
    masked_columns: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not self.role:
            raise InvalidFieldError("role", self.role, "a role is a non-empty string")
        object.__setattr__(
            self, "row_filter", normalise_row_filter(self.row_filter, where=f"role {self.role}")
        )
        object.__setattr__(self, "masked_columns", frozenset(self.masked_columns))

    def admits(self, row: Mapping[str, object]) -> bool:
        """Whether this role alone admits ``row`` (every filtered column holds an allowed value)."""
        return self.row_filter is None or all(row.get(c) in allowed for c, allowed in self.row_filter.items())


@dataclass(frozen=True)
class Principal:
    """What one user may see: the union of the rows their roles admit, minus the columns all their roles mask.

    ``row_filter`` is ``None`` when the user sees every row. Otherwise it is one conjunction (column -> allowed
    values, AND across columns). When the user's roles combine into more than one conjunction, ``row_clauses``
    holds them all (a disjunction) and ``row_filter`` is the first of them: a subset of what the user may see,
    never more. Compile :meth:`row_predicate`, which is always exact; ``row_filter_is_exact`` says whether the
    single mapping is too.
    """

    user: str
    roles: frozenset[str]
    row_filter: Clause | None
    masked_columns: frozenset[str] = frozenset()
    row_clauses: tuple[Clause, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", frozenset(self.roles))
        object.__setattr__(self, "masked_columns", frozenset(self.masked_columns))
        row_filter = normalise_row_filter(self.row_filter, where=f"user {self.user}")
        object.__setattr__(self, "row_filter", row_filter)
        clauses: tuple[Clause, ...] | None
        if self.row_clauses is None:
            clauses = None if row_filter is None else (row_filter,)
        else:
            if row_filter is None:
                raise InvalidFieldError(
                    "row_clauses",
                    self.row_clauses,
                    "given while row_filter is None (all rows)",
                    where=self.user,
                )
            clauses = tuple(
                c for c in (normalise_row_filter(c, where=f"user {self.user}") for c in self.row_clauses) if c
            )
            if not clauses:
                raise InvalidFieldError("row_clauses", self.row_clauses, "holds no clause", where=self.user)
        object.__setattr__(self, "row_clauses", clauses)

    @property
    def sees_all_rows(self) -> bool:
        return self.row_clauses is None

    @property
    def row_filter_is_exact(self) -> bool:
        """True when ``row_filter`` alone describes every row the user may see."""
        return self.row_clauses is None or len(self.row_clauses) == 1

    def row_predicate(self) -> list[dict[str, frozenset[str]]]:
        """The row filter as a disjunction of conjunctions: rows where ANY dict has EVERY column in its set.

        ``[{}]`` (one empty conjunction, i.e. TRUE) when the user sees every row. Never empty: a user with no
        role is refused by the catalog.
        """
        if self.row_clauses is None:
            return [{}]
        return [dict(clause) for clause in self.row_clauses]

    def admits(self, row: Mapping[str, object]) -> bool:
        """Whether the user may see ``row`` (a mapping column -> value): the reference for compiled SQL."""
        return any(
            all(row.get(column) in allowed for column, allowed in clause.items())
            for clause in self.row_predicate()
        )

    def is_masked(self, column: str) -> bool:
        return column in self.masked_columns


def combine_roles(user: str, roles: Sequence[RoleDefinition]) -> Principal:
    """The principal of ``user`` holding ``roles``: union of admitted rows, intersection of masked columns.

    Raises AccessDeniedError when the user holds no role.
    """
    if not roles:
        raise AccessDeniedError(user, "any data: the user's groups map to no role")
    names = frozenset(r.role for r in roles)
    masked = frozenset.intersection(*(r.masked_columns for r in roles))
    if any(r.row_filter is None for r in roles):
        return Principal(user, names, None, masked)
    clauses = _simplify([r.row_filter for r in roles if r.row_filter is not None])
    return Principal(user, names, clauses[0], masked, tuple(clauses))
