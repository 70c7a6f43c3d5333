"""Every error leaves the service as JSON: ``{"error": <kind>, "reason": <message>, ...}`` with a fitting status.

``InputError`` and its kin name the field and the value (422 with ``field``/``value``); entitlement refusals are
403, missing or bad credentials 401 (with ``WWW-Authenticate: Bearer``), rate limits 429 (with ``Retry-After``),
unknown things 404, and anything unexpected 500 with no internals in the body (it is logged with a request id).
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    AccessDeniedError,
    AuthenticationError,
    ConfigurationError,
    InputError,
    JobStateError,
    QueryError,
    RateLimitedError,
    RiskstreamError,
)

__all__ = ["NotFoundError", "error_body", "install_error_handlers"]

log = logging.getLogger("riskstream.api")


class NotFoundError(RiskstreamError, LookupError):
    """A node, job, report or scenario the service does not know (404)."""

    def __init__(self, what: str, value: Any):
        self.what = what
        self.value = value
        super().__init__(f"no {what} {value!r}")


def error_body(kind: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"error": kind, "reason": reason, **{k: v for k, v in extra.items() if v is not None}}


def _plain(value: Any) -> Any:
    """A JSON-safe echo of a bad value: numbers and strings as they are, non-finite floats and anything else as
    their repr (JSON has no NaN or infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def status_of(exc: BaseException) -> tuple[int, str]:
    """HTTP status and error kind of a riskstream error."""
    if isinstance(exc, AuthenticationError):
        return 401, "unauthenticated"
    if isinstance(exc, AccessDeniedError):
        return 403, "forbidden"
    if isinstance(exc, RateLimitedError):
        return 429, "rate_limited"
    if isinstance(exc, NotFoundError):
        return 404, "not_found"
    if isinstance(exc, JobStateError):
        return 409, "conflict"
    if isinstance(exc, QueryError | InputError | ConfigurationError):
        return 422, "invalid"
    return 400, "bad_request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RiskstreamError)
    async def _riskstream(request: Request, exc: RiskstreamError) -> JSONResponse:
        status, kind = status_of(exc)
        headers: dict[str, str] = {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
        body = error_body(
            kind,
            str(exc),
            field=_plain(getattr(exc, "field", None)),
            value=_plain(getattr(exc, "value", None)),
        )
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(
            error_body(kind, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            error_body(
                "invalid",
                f"{where}: {first.get('msg', 'invalid request')}",
                field=where or None,
                value=_plain(first.get("input")) if "input" in first else None,
            ),
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", request_id, request.method, request.url.path)
        return JSONResponse(
            error_body("internal", f"internal error (request id {request_id})"), status_code=500
        )
