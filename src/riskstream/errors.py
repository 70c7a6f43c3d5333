"""Exceptions raised by riskstream.

The hierarchy::

    RiskstreamError
    ├── InputError                  bad input from a user, a file or a message; names the field and the value
    │   ├── UnknownInstrumentTypeError
    │   ├── InvalidFieldError       a field holds a value outside its domain (negative vol, NaN price, ...)
    │   ├── MissingFieldError       a mandatory field is absent
    │   └── EmptyInputError         an input file or table holds no rows
    ├── MarketDataError             the market cannot support the request
    │   ├── MissingFactorError      a risk factor has no value / no history
    │   └── InsufficientHistoryError
    ├── ModelError                  a model could not be fitted or evaluated (e.g. GARCH did not converge)
    ├── ConfigurationError          an option or parameter is invalid (unknown method, confidence outside (0, 1))
    ├── BusError                    the message bus failed (broker unreachable, produce/commit failed)
    │   └── SchemaCompatibilityError  a schema change would break existing readers or writers
    ├── StoreError                  the risk store refused or failed an operation
    │   ├── JobStateError           the job is not in a state that allows the operation (commit an aborted job, ...)
    │   ├── ChunkRejectedError      a chunk failed validation; the job stays open for a corrected chunk
    │   ├── SchemaEvolutionError    a column changed type incompatibly
    │   └── CommitConflictError     a concurrent commit touched the same scope and retries ran out
    ├── QueryError                  a report definition is invalid (unknown dimension, measure, filter)
    └── AccessDeniedError           the user is not entitled to what was asked

Every error message names the offending field and its value, so a user can fix the input without reading code.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccessDeniedError",
    "AuthenticationError",
    "BusError",
    "ChunkRejectedError",
    "CommitConflictError",
    "ConfigurationError",
    "EmptyInputError",
    "InputError",
    "InsufficientHistoryError",
    "InvalidFieldError",
    "JobStateError",
    "MarketDataError",
    "MissingFactorError",
    "MissingFieldError",
    "ModelError",
    "QueryError",
    "RateLimitedError",
    "RiskstreamError",
    "SchemaCompatibilityError",
    "SchemaEvolutionError",
    "StoreError",
    "UnknownInstrumentTypeError",
]


class RiskstreamError(Exception):
    """Base class of every error riskstream raises on purpose."""


class InputError(RiskstreamError, ValueError):
    """Bad input. ``field`` and ``value`` say what was wrong; ``where`` says which record."""

    def __init__(
        self, message: str, *, field: str | None = None, value: Any = None, where: str | None = None
    ):
        self.field = field
        self.value = value
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(prefix + message)


class UnknownInstrumentTypeError(InputError):
    def __init__(self, value: Any, *, known: tuple[str, ...] = (), where: str | None = None):
        hint = f" (known: {', '.join(known)})" if known else ""
        super().__init__(
            f"field 'type' has unknown instrument type {value!r}{hint}",
            field="type",
            value=value,
            where=where,
        )


class InvalidFieldError(InputError):
    def __init__(self, field: str, value: Any, reason: str, *, where: str | None = None):
        super().__init__(
            f"field {field!r} has invalid value {value!r}: {reason}", field=field, value=value, where=where
        )


class MissingFieldError(InputError):
    def __init__(self, field: str, *, where: str | None = None):
        super().__init__(f"mandatory field {field!r} is missing", field=field, value=None, where=where)


class EmptyInputError(InputError):
    def __init__(self, what: str, value: Any = None):
        super().__init__(
            f"{what} is empty: {value!r}" if value is not None else f"{what} is empty",
            field=what,
            value=value,
        )


class MarketDataError(RiskstreamError):
    """The market data cannot support the request."""


class MissingFactorError(MarketDataError, KeyError):
    def __init__(self, factor: str, *, where: str | None = None):
        self.factor = factor
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(prefix + f"risk factor {factor!r} has no value or history in the market data")

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class InsufficientHistoryError(MarketDataError):
    pass


class ModelError(RiskstreamError):
    pass


class ConfigurationError(RiskstreamError, ValueError):
    def __init__(self, field: str, value: Any, reason: str):
        self.field = field
        self.value = value
        super().__init__(f"option {field!r} has invalid value {value!r}: {reason}")


class BusError(RiskstreamError):
    """The message bus failed: a broker is unreachable, a produce or offset commit failed."""


class SchemaCompatibilityError(BusError):
    def __init__(self, subject: str, reason: str):
        self.subject = subject
        super().__init__(
            f"schema for subject {subject!r} is incompatible with the registered version: {reason}"
        )


class StoreError(RiskstreamError):
    """The risk store refused or failed an operation."""


class JobStateError(StoreError):
    def __init__(self, job_id: str, state: str, operation: str):
        self.job_id = job_id
        self.state = state
        super().__init__(f"job {job_id!r} is {state}: cannot {operation}")


class ChunkRejectedError(StoreError, InputError):
    """A chunk failed validation. ``field``/``value`` name the first problem; the job stays open."""

    def __init__(
        self, job_id: str, chunk_id: str, reason: str, *, field: str | None = None, value: Any = None
    ):
        self.job_id = job_id
        self.chunk_id = chunk_id
        InputError.__init__(
            self, f"chunk {chunk_id!r} of job {job_id!r} refused: {reason}", field=field, value=value
        )


class SchemaEvolutionError(StoreError):
    def __init__(self, column: str, old: str, new: str):
        self.column = column
        super().__init__(
            f"column {column!r} is {old} in the table; a chunk sent {new}, which cannot be merged"
        )


class CommitConflictError(StoreError):
    pass


class QueryError(RiskstreamError, ValueError):
    """A report definition is invalid; ``field`` and ``value`` name the problem."""

    def __init__(self, field: str, value: Any, reason: str):
        self.field = field
        self.value = value
        super().__init__(f"report field {field!r} has invalid value {value!r}: {reason}")


class AccessDeniedError(RiskstreamError):
    def __init__(self, user: str, what: str):
        self.user = user
        super().__init__(f"user {user!r} is not entitled to {what}")


class AuthenticationError(RiskstreamError):
    """A request carries no credentials, or credentials that do not verify (HTTP 401); ``reason`` says which."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"not authenticated: {reason}")


class RateLimitedError(RiskstreamError):
    """Too many expensive requests from one user (HTTP 429); retry after ``retry_after_s`` seconds."""

    def __init__(self, user: str, what: str, retry_after_s: float):
        self.user = user
        self.retry_after_s = retry_after_s
        super().__init__(f"user {user!r} is over the rate limit for {what}: retry in {retry_after_s:.1f} s")
