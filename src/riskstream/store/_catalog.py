"""The risk store's SQL catalog: hierarchy and reference data, users/groups/roles, jobs, audit log, webhooks.

SQLite by default (``sqlite:///<root>/catalog.db``), PostgreSQL when configured
(``postgresql+psycopg://user@host:5432/db``; put ``?options=-csearch_path%3D<schema>`` in the URL to use a
schema). Opening a :class:`Catalog` migrates its schema to the head Alembic revision. Every method is one
transaction; the catalog is safe to share between threads and between processes.

Job states move ``OPEN → COMMITTING → COMMITTED | ABORTED``, ``OPEN → ABORTED`` and ``COMMITTING → OPEN``
(a commit that failed and may be retried). :meth:`Catalog.update_job` is a compare-and-set: a conditional
``UPDATE ... WHERE state = <expected>`` whose row count says whether this caller won, so of two processes
racing to move one job exactly one succeeds and the other gets :class:`~riskstream.errors.JobStateError`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from riskstream.errors import AccessDeniedError, InvalidFieldError, JobStateError, StoreError
from riskstream.refdata import DESKS

from ._catalog_bulk import (
    UpsertResult,
    bulk_upsert,
    dumps,
    json_value,
    reject_non_finite,
    text_column,
    to_frame,
    validate_keys,
)
from ._catalog_migrate import create_engine, upgrade_to_head
from ._catalog_models import (
    ApiKeyRow,
    AuditEntry,
    Book,
    Desk,
    Group,
    GroupRole,
    Instrument,
    Job,
    Role,
    RoleMask,
    RoleRowFilter,
    Trade,
    Trader,
    User,
    UserGroup,
    WebhookRow,
    utcnow,
)
from ._entitlements import Principal, RoleDefinition, combine_roles

__all__ = ["DEMO_USERS", "ApiKey", "Catalog", "JobRecord", "JobState", "UpsertResult", "Webhook", "seed_demo"]

_NAMESPACE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_TRADE_TEXT = ("trader", "counterparty", "sector", "region")
_INSTRUMENT_COLUMNS = ("instrument_id", "type", "currency")


class JobState(enum.StrEnum):
    """Life cycle of a batch risk job in the store."""

    OPEN = "OPEN"  # accepting chunks
    COMMITTING = "COMMITTING"  # one writer is committing it
    COMMITTED = "COMMITTED"  # its rows are in risk_results (terminal)
    ABORTED = "ABORTED"  # discarded (terminal)


#: state -> the states it may move to.
TRANSITIONS: Mapping[JobState, frozenset[JobState]] = MappingProxyType(
    {
        JobState.OPEN: frozenset({JobState.COMMITTING, JobState.ABORTED}),
        JobState.COMMITTING: frozenset({JobState.COMMITTED, JobState.ABORTED, JobState.OPEN}),
        JobState.COMMITTED: frozenset(),
        JobState.ABORTED: frozenset(),
    }
)
_JOB_FIELDS = ("state", "scope", "expected_chunks", "committed_version", "rows", "error", "chunks")


def _scope(value: Mapping[str, Sequence[str]] | None, where: str) -> Mapping[str, tuple[str, ...]] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidFieldError("scope", value, "a mapping column -> values", where=where)
    frozen: dict[str, tuple[str, ...]] = {}
    for column, values in value.items():
        items = (values,) if isinstance(values, str) else tuple(values)
        if not all(isinstance(v, str) for v in items):
            raise InvalidFieldError(f"scope[{column!r}]", list(items), "values are strings", where=where)
        frozen[str(column)] = items
    return MappingProxyType(frozen)


def _non_negative(name: str, value: int | None, where: str, *, minimum: int = 0) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidFieldError(name, value, f"an integer >= {minimum}", where=where)
    return value


@dataclass(frozen=True)
class JobRecord:
    """One batch risk job as the catalog records it. Timestamps are UTC-aware; the catalog sets them if None."""

    job_id: str
    namespace: str
    business_date: date
    scope: Mapping[str, tuple[str, ...]] | None = (
        None  # column -> values the job replaces (None: its rows' keys)
    )
    expected_chunks: int | None = None
    state: JobState = JobState.OPEN
    created_at: datetime | None = None
    updated_at: datetime | None = None
    committed_version: int | None = None  # risk_results table version the commit produced
    rows: int | None = None
    error: str | None = None
    chunks: int | None = None  # chunks the commit assembled (staging is gone afterwards)

    def __post_init__(self) -> None:
        if not isinstance(self.job_id, str) or not self.job_id:
            raise InvalidFieldError("job_id", self.job_id, "a non-empty string")
        where = f"job {self.job_id}"
        if not isinstance(self.namespace, str) or not _NAMESPACE.match(self.namespace):
            raise InvalidFieldError(
                "namespace", self.namespace, "an upper-case word such as EOD", where=where
            )
        if not isinstance(self.business_date, date) or isinstance(self.business_date, datetime):
            raise InvalidFieldError("business_date", self.business_date, "a datetime.date", where=where)
        object.__setattr__(self, "scope", _scope(self.scope, where))
        _non_negative("expected_chunks", self.expected_chunks, where, minimum=1)
        _non_negative("committed_version", self.committed_version, where)
        _non_negative("rows", self.rows, where)
        _non_negative("chunks", self.chunks, where)
        try:
            object.__setattr__(self, "state", JobState(self.state))
        except ValueError:
            raise InvalidFieldError(
                "state", self.state, f"one of {[s.value for s in JobState]}", where=where
            ) from None
        for name in ("created_at", "updated_at"):
            stamp = getattr(self, name)
            if stamp is not None and (not isinstance(stamp, datetime) or stamp.tzinfo is None):
                raise InvalidFieldError(name, stamp, "a timezone-aware datetime", where=where)


@dataclass(frozen=True)
class Webhook:
    """An HTTP endpoint told when a job's data is available; empty ``namespaces`` = every namespace."""

    url: str
    namespaces: tuple[str, ...] = ()
    active: bool = True

    def wants(self, namespace: str) -> bool:
        return self.active and (not self.namespaces or namespace in self.namespaces)


@dataclass(frozen=True)
class ApiKey:
    """An API key as the catalog records it (never the key itself: only its SHA-256 is stored)."""

    key_id: str
    user: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


_API_KEY_PREFIX = "rsk"


def _key_hash(key: str) -> str:
    # keys carry 256 random bits: a fast hash cannot be brute-forced, so no password-hashing function is needed
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _name(field_name: str, value: object, where: str | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidFieldError(field_name, value, "a non-empty string", where=where)
    return value


class Catalog:
    """The catalog at ``url`` (SQLAlchemy URL: ``sqlite:///path.db``, ``sqlite://`` in memory,
    ``postgresql+psycopg://...``), migrated to the head revision on open. Close it (or use ``with``)."""

    def __init__(self, url: str):
        self.engine = create_engine(url)
        try:
            self.revision = upgrade_to_head(self.engine)
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            raise StoreError(f"catalog_url {self.url!r} cannot be opened: {exc.orig}") from exc
        except BaseException:
            self.engine.dispose()
            raise

    @property
    def url(self) -> str:
        """The URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({self.url!r})"

    def _begin(self) -> Any:
        return self.engine.begin()

    # --- hierarchy and reference data -----------------------------------------------------------------

    def _ensure_desks(self, connection: Connection, desks: Iterable[str]) -> None:
        bulk_upsert(connection, Desk.__tablename__, ["desk"], [(d,) for d in sorted(set(desks))], ["desk"])

    def upsert_books(self, rows: Iterable[tuple[str, str]]) -> None:
        """Insert or move books: ``(book, desk)`` pairs; desks are created as needed."""
        pairs: dict[str, str] = {}
        for i, row in enumerate(rows):
            book, desk = row
            pairs[_name("book", book, f"row {i}")] = _name("desk", desk, f"row {i}")
        with self._begin() as connection:
            self._ensure_desks(connection, pairs.values())
            bulk_upsert(connection, Book.__tablename__, ["book", "desk"], list(pairs.items()), ["book"])

    def books(self) -> dict[str, str]:
        """Book -> desk, sorted by book."""
        with self._begin() as connection:
            rows = connection.execute(sa.select(Book.book, Book.desk).order_by(Book.book))
            return {book: desk for book, desk in rows}

    def desks(self) -> list[str]:
        with self._begin() as connection:
            return list(connection.execute(sa.select(Desk.desk).order_by(Desk.desk)).scalars())

    def upsert_traders(self, rows: Iterable[tuple[str, str | None]]) -> None:
        """Insert or update traders: ``(trader, desk or None)`` pairs."""
        pairs = {_name("trader", t, f"row {i}"): d for i, (t, d) in enumerate(rows)}
        with self._begin() as connection:
            self._ensure_desks(connection, (d for d in pairs.values() if d is not None))
            bulk_upsert(connection, Trader.__tablename__, ["trader", "desk"], list(pairs.items()), ["trader"])

    def traders(self) -> dict[str, str | None]:
        with self._begin() as connection:
            return dict(
                connection.execute(sa.select(Trader.trader, Trader.desk).order_by(Trader.trader)).all()
            )

    def upsert_instruments(
        self, frame: pd.DataFrame | pa.Table | Iterable[Mapping[str, Any]]
    ) -> UpsertResult:
        """Insert or replace instruments: columns ``instrument_id``, ``type``, ``currency``; every other column
        (or an ``attributes`` column of mappings) is stored in the JSON ``attributes``. Rows lacking a mandatory
        field are refused with a reason; the rest are written."""
        data = to_frame(frame, "instruments")
        good, rejected = validate_keys(data, _INSTRUMENT_COLUMNS, "instrument_id", "instruments")
        extra = [c for c in good.columns if c not in (*_INSTRUMENT_COLUMNS, "attributes")]
        given = text_column(good, "attributes")
        extras = {c: text_column(good, c) for c in extra}
        attributes = []
        for i in range(len(good)):
            record = dict(given[i]) if isinstance(given[i], Mapping) else {}
            record.update({c: json_value(values[i]) for c, values in extras.items() if values[i] is not None})
            attributes.append(dumps(record))
        rows = list(zip(*(text_column(good, c) for c in _INSTRUMENT_COLUMNS), attributes, strict=True))
        with self._begin() as connection:
            written = bulk_upsert(
                connection,
                Instrument.__tablename__,
                [*_INSTRUMENT_COLUMNS, "attributes"],
                rows,
                ["instrument_id"],
            )
        return UpsertResult(written, tuple(rejected))

    def instruments(self) -> pd.DataFrame:
        """Every instrument: ``instrument_id``, ``type``, ``currency``, ``attributes`` (dict), by id."""
        with self._begin() as connection:
            rows = connection.execute(
                sa.select(Instrument.__table__).order_by(Instrument.instrument_id)
            ).all()
        return pd.DataFrame(rows, columns=[*_INSTRUMENT_COLUMNS, "attributes"])

    def upsert_trades(self, frame: pd.DataFrame | pa.Table | Iterable[Mapping[str, Any]]) -> UpsertResult:
        """Insert or replace trades: ``trade_id``, ``instrument_id``, ``book`` (mandatory), ``trader``,
        ``counterparty``, ``sector``, ``region``, ``quantity`` (signed units; negative = short). Rows lacking a
        mandatory field or with a non-finite quantity are refused with a reason; a repeated trade_id keeps its
        last row."""
        data = to_frame(frame, "trades")
        good, rejected = validate_keys(data, ("trade_id", "instrument_id", "book"), "trade_id", "trades")
        good = reject_non_finite(good, "quantity", rejected)
        columns = ["trade_id", "instrument_id", "book", *_TRADE_TEXT, "quantity"]
        rows = list(zip(*(text_column(good, c) for c in columns), strict=True))
        with self._begin() as connection:
            written = bulk_upsert(connection, Trade.__tablename__, columns, rows, ["trade_id"])
        return UpsertResult(written, tuple(sorted(rejected)))

    def trades(self, book: str | None = None) -> pd.DataFrame:
        """Trades (all, or of one book), by trade_id."""
        query = sa.select(Trade.__table__).order_by(Trade.trade_id)
        if book is not None:
            query = query.where(Trade.book == book)
        with self._begin() as connection:
            rows = connection.execute(query).all()
        return pd.DataFrame(rows, columns=list(Trade.__table__.columns.keys()))

    def trade_count(self) -> int:
        with self._begin() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(Trade)).scalar_one())

    # --- jobs -----------------------------------------------------------------------------------------

    @staticmethod
    def _job(row: Any) -> JobRecord:
        scope = row.scope
        return JobRecord(
            job_id=row.job_id,
            namespace=row.namespace,
            business_date=row.business_date,
            scope=None if scope is None else {k: tuple(v) for k, v in scope.items()},
            expected_chunks=row.expected_chunks,
            state=JobState(row.state),
            created_at=row.created_at,
            updated_at=row.updated_at,
            committed_version=row.committed_version,
            rows=row.rows,
            error=row.error,
            chunks=row.chunks,
        )

    def create_job(self, job: JobRecord) -> None:
        """Record a new job; JobStateError if ``job.job_id`` exists already."""
        now = utcnow()
        values = {
            "job_id": job.job_id,
            "namespace": job.namespace,
            "business_date": job.business_date,
            "scope": None if job.scope is None else {k: list(v) for k, v in job.scope.items()},
            "expected_chunks": job.expected_chunks,
            "state": job.state.value,
            "created_at": job.created_at or now,
            "updated_at": job.updated_at or job.created_at or now,
            "committed_version": job.committed_version,
            "rows": job.rows,
            "error": job.error,
            "chunks": job.chunks,
        }
        try:
            with self._begin() as connection:
                connection.execute(sa.insert(Job).values(**values))
        except sa.exc.IntegrityError:
            existing = self.job(job.job_id)
            raise JobStateError(
                job.job_id, existing.state if existing else "present", "create it again"
            ) from None

    def job(self, job_id: str) -> JobRecord | None:
        with self._begin() as connection:
            row = connection.execute(sa.select(Job.__table__).where(Job.job_id == job_id)).one_or_none()
        return None if row is None else self._job(row)

    def jobs(
        self,
        state: JobState | str | None = None,
        *,
        namespace: str | None = None,
        business_date: date | None = None,
    ) -> list[JobRecord]:
        """Jobs, oldest first, optionally only those in ``state`` / ``namespace`` / ``business_date``."""
        query = sa.select(Job.__table__).order_by(Job.created_at, Job.job_id)
        if state is not None:
            query = query.where(Job.state == JobState(state).value)
        if namespace is not None:
            query = query.where(Job.namespace == namespace)
        if business_date is not None:
            query = query.where(Job.business_date == business_date)
        with self._begin() as connection:
            return [self._job(row) for row in connection.execute(query)]

    def update_job(self, job_id: str, *, expected_state: JobState | str | None = None, **fields: Any) -> None:
        """Compare-and-set update of ``job_id``: ``state``, ``scope``, ``expected_chunks``,
        ``committed_version``, ``rows``, ``error``, ``chunks``.

        The update applies only if the job is in ``expected_state`` (default: the state read just before) and a
        new ``state`` is a legal move from it (or the same state: no move, e.g. an abort repeated); otherwise, or when another writer changed the state in between,
        JobStateError names the job and its actual state. StoreError if the job does not exist.
        """
        unknown = sorted(set(fields) - set(_JOB_FIELDS))
        if unknown:
            raise InvalidFieldError(
                unknown[0], fields[unknown[0]], f"not an updatable job field {_JOB_FIELDS}"
            )
        where = f"job {job_id}"
        values: dict[str, Any] = {}
        new_state = None
        if "state" in fields:
            try:
                new_state = JobState(fields["state"])
            except ValueError:
                raise InvalidFieldError(
                    "state", fields["state"], f"one of {[s.value for s in JobState]}", where=where
                ) from None
            values["state"] = new_state.value
        if "scope" in fields:
            scope = _scope(fields["scope"], where)
            values["scope"] = None if scope is None else {k: list(v) for k, v in scope.items()}
        for name, minimum in (
            ("expected_chunks", 1),
            ("committed_version", 0),
            ("rows", 0),
            ("chunks", 0),
        ):
            if name in fields:
                values[name] = _non_negative(name, fields[name], where, minimum=minimum)
        if "error" in fields:
            values["error"] = None if fields["error"] is None else str(fields["error"])
        with self._begin() as connection:
            current = connection.execute(
                sa.select(Job.state).where(Job.job_id == job_id)
            ).scalar_one_or_none()
            if current is None:
                raise StoreError(f"job_id {job_id!r} is not in the catalog")
            guard = JobState(current) if expected_state is None else JobState(expected_state)
            if current != guard:
                raise JobStateError(job_id, current, f"update it: expected it {guard.value}")
            if new_state is not None and new_state != guard and new_state not in TRANSITIONS[guard]:
                raise JobStateError(job_id, guard.value, f"move it to {new_state.value}")
            result = connection.execute(
                sa.update(Job)
                .where(Job.job_id == job_id, Job.state == guard.value)
                .values(**values, updated_at=utcnow())
            )
            if result.rowcount == 1:
                return
        actual = self.job(job_id)
        raise JobStateError(
            job_id,
            actual.state.value if actual else "gone",
            f"update it from {guard.value}: another writer changed it first",
        )

    # --- users, groups, roles, entitlements --------------------------------------------------------------

    def define_role(
        self, role: str, *, row_filter: Mapping[str, Sequence[str]] | None, masked_columns: Sequence[str] = ()
    ) -> None:
        """Create or redefine ``role``: its row filter (None = all rows) and masked columns."""
        definition = RoleDefinition(_name("role", role), row_filter, frozenset(masked_columns))  # type: ignore[arg-type]
        with self._begin() as connection:
            bulk_upsert(connection, Role.__tablename__, ["role"], [(role,)], ["role"])
            connection.execute(sa.delete(RoleRowFilter).where(RoleRowFilter.role == role))
            connection.execute(sa.delete(RoleMask).where(RoleMask.role == role))
            filters = [
                {"role": role, "column": column, "value": value}
                for column, allowed in (definition.row_filter or {}).items()
                for value in sorted(allowed)
            ]
            if filters:
                connection.execute(sa.insert(RoleRowFilter), filters)
            masks = [{"role": role, "column": c} for c in sorted(definition.masked_columns)]
            if masks:
                connection.execute(sa.insert(RoleMask), masks)

    def map_group(self, group: str, role: str) -> None:
        """Grant ``role`` to every member of ``group`` (an identity-provider group: SAML/OIDC claim value)."""
        _name("group", group)
        with self._begin() as connection:
            if connection.execute(sa.select(Role.role).where(Role.role == role)).first() is None:
                raise InvalidFieldError(
                    "role", role, "is not defined: define_role first", where=f"group {group}"
                )
            bulk_upsert(connection, Group.__tablename__, ["group"], [(group,)], ["group"])
            bulk_upsert(
                connection, GroupRole.__tablename__, ["group", "role"], [(group, role)], ["group", "role"]
            )

    def add_user(self, user: str, groups: Sequence[str]) -> None:
        """Create ``user`` or replace their groups with ``groups`` (created as needed)."""
        _name("user", user)
        names = sorted(
            {_name("group", g, f"user {user}") for g in ([groups] if isinstance(groups, str) else groups)}
        )
        with self._begin() as connection:
            if connection.execute(sa.select(User.user).where(User.user == user)).first() is None:
                connection.execute(sa.insert(User).values(user=user, created_at=utcnow()))
            bulk_upsert(connection, Group.__tablename__, ["group"], [(g,) for g in names], ["group"])
            connection.execute(sa.delete(UserGroup).where(UserGroup.user == user))
            if names:
                connection.execute(sa.insert(UserGroup), [{"user": user, "group": g} for g in names])

    def users(self) -> dict[str, tuple[str, ...]]:
        """User -> their groups (sorted)."""
        with self._begin() as connection:
            users = connection.execute(sa.select(User.user).order_by(User.user)).scalars().all()
            pairs = connection.execute(
                sa.select(UserGroup.user, UserGroup.group).order_by(UserGroup.group)
            ).all()
        out: dict[str, tuple[str, ...]] = {u: () for u in users}
        for user, group in pairs:
            out[user] = (*out[user], group)
        return out

    def user_groups(self, user: str) -> tuple[str, ...] | None:
        """The groups of ``user`` (sorted), or None when the catalog does not know the user."""
        with self._begin() as connection:
            if connection.execute(sa.select(User.user).where(User.user == user)).first() is None:
                return None
            return tuple(
                connection.execute(
                    sa.select(UserGroup.group).where(UserGroup.user == user).order_by(UserGroup.group)
                ).scalars()
            )

    def _role_definitions(self, connection: Connection, roles: Sequence[str]) -> list[RoleDefinition]:
        filters: dict[str, dict[str, list[str]]] = {r: {} for r in roles}
        for role, column, value in connection.execute(
            sa.select(RoleRowFilter.role, RoleRowFilter.column, RoleRowFilter.value).where(
                RoleRowFilter.role.in_(roles)
            )
        ):
            filters[role].setdefault(column, []).append(value)
        masks: dict[str, set[str]] = {r: set() for r in roles}
        for role, column in connection.execute(
            sa.select(RoleMask.role, RoleMask.column).where(RoleMask.role.in_(roles))
        ):
            masks[role].add(column)
        return [RoleDefinition(r, filters[r] or None, frozenset(masks[r])) for r in roles]  # type: ignore[arg-type]

    def roles(self) -> dict[str, RoleDefinition]:
        """Every role's definition, by name."""
        with self._begin() as connection:
            names = list(connection.execute(sa.select(Role.role).order_by(Role.role)).scalars())
            return {d.role: d for d in self._role_definitions(connection, names)}

    def group_roles(self) -> dict[str, tuple[str, ...]]:
        """Group -> the roles it grants."""
        out: dict[str, tuple[str, ...]] = {}
        with self._begin() as connection:
            for group, role in connection.execute(
                sa.select(GroupRole.group, GroupRole.role).order_by(GroupRole.group, GroupRole.role)
            ):
                out[group] = (*out.get(group, ()), role)
        return out

    def principal(self, user: str) -> Principal:
        """What ``user`` may see (see :mod:`riskstream.store._entitlements`). AccessDeniedError for an unknown
        user or one whose groups grant no role."""
        with self._begin() as connection:
            if connection.execute(sa.select(User.user).where(User.user == user)).first() is None:
                raise AccessDeniedError(user, "the risk store: unknown user")
            roles = list(
                connection.execute(
                    sa.select(GroupRole.role)
                    .join(UserGroup, UserGroup.group == GroupRole.group)
                    .where(UserGroup.user == user)
                    .distinct()
                    .order_by(GroupRole.role)
                ).scalars()
            )
            definitions = self._role_definitions(connection, roles)
        return combine_roles(user, definitions)

    # --- API keys ---------------------------------------------------------------------------------------

    def create_api_key(self, user: str, name: str, scopes: Sequence[str] = ()) -> str:
        """A new API key of catalog user ``user``, returned in plain text this once (``rsk_<key_id>_<secret>``):
        the catalog keeps only its SHA-256. ``scopes``: capabilities it carries (``jobs:write``)."""
        _name("name", name, f"API key of {user}")
        granted = sorted(
            {_name("scopes", s, f"API key {name}") for s in ([scopes] if isinstance(scopes, str) else scopes)}
        )
        key_id = secrets.token_hex(6)
        key = f"{_API_KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        with self._begin() as connection:
            if connection.execute(sa.select(User.user).where(User.user == user)).first() is None:
                raise InvalidFieldError("user", user, "not a user of the catalog", where=f"API key {name}")
            connection.execute(
                sa.insert(ApiKeyRow).values(
                    key_id=key_id,
                    user=user,
                    name=name,
                    key_hash=_key_hash(key),
                    scopes=granted,
                    created_at=utcnow(),
                    revoked_at=None,
                )
            )
        return key

    @staticmethod
    def _api_key(row: Any) -> ApiKey:
        return ApiKey(row.key_id, row.user, row.name, tuple(row.scopes), row.created_at, row.revoked_at)

    def verify_api_key(self, key: str) -> ApiKey | None:
        """The record of ``key`` (revoked or not: check ``active``), or None when it is not a key of the catalog."""
        parts = key.split("_", 2) if isinstance(key, str) else []
        if len(parts) != 3 or parts[0] != _API_KEY_PREFIX or not parts[1] or not parts[2]:
            return None
        with self._begin() as connection:
            row = connection.execute(
                sa.select(ApiKeyRow.__table__).where(ApiKeyRow.key_id == parts[1])
            ).one_or_none()
        if row is None or not hmac.compare_digest(row.key_hash, _key_hash(key)):
            return None
        return self._api_key(row)

    def api_keys(self, user: str | None = None, *, include_revoked: bool = True) -> list[ApiKey]:
        """API keys (of ``user``, or all), oldest first."""
        query = sa.select(ApiKeyRow.__table__).order_by(ApiKeyRow.created_at, ApiKeyRow.key_id)
        if user is not None:
            query = query.where(ApiKeyRow.user == user)
        if not include_revoked:
            query = query.where(ApiKeyRow.revoked_at.is_(None))
        with self._begin() as connection:
            return [self._api_key(row) for row in connection.execute(query)]

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Revoke key ``key_id`` (kept for the record; revoking twice keeps the first time). StoreError if unknown."""
        with self._begin() as connection:
            connection.execute(
                sa.update(ApiKeyRow)
                .where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            row = connection.execute(
                sa.select(ApiKeyRow.__table__).where(ApiKeyRow.key_id == key_id)
            ).one_or_none()
        if row is None:
            raise StoreError(f"key_id {key_id!r} is not an API key of the catalog")
        return self._api_key(row)

    # --- audit, webhooks -------------------------------------------------------------------------------

    def audit(self, user: str, action: str, detail: Mapping[str, Any], rows: int | None = None) -> None:
        """Append one entry to the audit log (``detail`` must be JSON-serialisable; dates become ISO text)."""
        clean = json.loads(dumps(dict(detail)))
        with self._begin() as connection:
            connection.execute(
                sa.insert(AuditEntry).values(
                    at=utcnow(),
                    user=_name("user", user),
                    action=_name("action", action),
                    detail=clean,
                    rows=_non_negative("rows", rows, f"audit {action}"),
                )
            )

    def audit_log(self, limit: int = 100, user: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` audit entries, newest first (``id``, ``at``, ``user``, ``action``, ``detail``,
        ``rows``), optionally of one user."""
        query = sa.select(AuditEntry.__table__).order_by(AuditEntry.id.desc()).limit(int(limit))
        if user is not None:
            query = query.where(AuditEntry.user == user)
        with self._begin() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def add_webhook(self, url: str, namespaces: Sequence[str] = ()) -> None:
        """Register (or re-activate) ``url`` for jobs of ``namespaces`` (empty: every namespace)."""
        _name("url", url)
        if not url.startswith(("http://", "https://")):
            raise InvalidFieldError("url", url, "an http:// or https:// URL")
        spaces = sorted(
            {
                _name("namespaces", n, url)
                for n in ([namespaces] if isinstance(namespaces, str) else namespaces)
            }
        )
        with self._begin() as connection:
            bulk_upsert(
                connection,
                WebhookRow.__tablename__,
                ["url", "namespaces", "active"],
                [(url, dumps(spaces), True)],
                ["url"],
            )

    def remove_webhook(self, url: str) -> None:
        """Deactivate ``url`` (kept for the record)."""
        with self._begin() as connection:
            connection.execute(sa.update(WebhookRow).where(WebhookRow.url == url).values(active=False))

    def webhooks(self, *, include_inactive: bool = False) -> list[Webhook]:
        query = sa.select(WebhookRow.url, WebhookRow.namespaces, WebhookRow.active).order_by(WebhookRow.url)
        if not include_inactive:
            query = query.where(WebhookRow.active.is_(True))
        with self._begin() as connection:
            return [Webhook(u, tuple(n), bool(a)) for u, n, a in connection.execute(query)]


# --- demo entitlements ---------------------------------------------------------------------------------

_FIXED_DEMO_USERS = {
    "head_trading": ("head_of_trading", "head of trading: every desk, every column"),
    "middle_office": ("middle_office", "middle office: every desk, every column"),
    "pb_junior": (
        "pb_junior_risk",
        "junior prime-brokerage risk: PRIME desk only, counterparty/sector/region masked",
    ),
}
_PB_MASKED = ("counterparty", "sector", "region")


def trader_user(desk: str) -> str:
    """The demo trader user of ``desk``: ``trader_<desk lower-case, '-' -> '_'>``."""
    return "trader_" + desk.lower().replace("-", "_")


def _demo_users(desks: Iterable[str]) -> dict[str, str]:
    users = {trader_user(d): f"trader of desk {d}: that desk's rows, every column" for d in sorted(desks)}
    users.update({user: description for user, (_, description) in _FIXED_DEMO_USERS.items()})
    return users


#: The demo users for the sample bank's desks (user -> what they see); seed_demo adds them for any desks.
DEMO_USERS: Mapping[str, str] = MappingProxyType(_demo_users(DESKS))


def seed_demo(catalog: Catalog, books: Mapping[str, str]) -> dict[str, str]:
    """Create the demo hierarchy, roles, groups and users for ``books`` (book -> desk); returns user ->
    description.

    Roles: ``trader:<DESK>`` (rows of that desk), ``head_of_trading`` and ``middle_office`` (all rows),
    ``pb_junior_risk`` (desk PRIME; counterparty, sector, region masked). Each role ``r`` is granted through the
    group ``grp-<r>``; users: ``trader_<desk>`` per desk, ``head_trading``, ``middle_office``, ``pb_junior``.
    """
    catalog.upsert_books(books.items())
    desks = sorted(set(books.values()))
    grants: list[tuple[str, str]] = []  # (user, role)
    for desk in desks:
        role = f"trader:{desk}"
        catalog.define_role(role, row_filter={"desk": [desk]})
        grants.append((trader_user(desk), role))
    catalog.define_role("head_of_trading", row_filter=None)
    catalog.define_role("middle_office", row_filter=None)
    catalog.define_role("pb_junior_risk", row_filter={"desk": ["PRIME"]}, masked_columns=_PB_MASKED)
    grants += [(user, role) for user, (role, _) in _FIXED_DEMO_USERS.items()]
    for user, role in grants:
        catalog.map_group(f"grp-{role}", role)
        catalog.add_user(user, [f"grp-{role}"])
    return _demo_users(desks)
