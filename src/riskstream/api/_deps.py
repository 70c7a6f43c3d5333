"""FastAPI dependencies: the caller's identity and entitlements, and the rate limit of expensive requests."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from starlette.requests import HTTPConnection

from ..errors import AccessDeniedError
from ..store import Principal
from ._context import ApiContext, context
from ._identity import Identity

__all__ = ["Caller", "Ctx", "Entitled", "identity", "principal", "rate_limited", "require_scope"]


def identity(conn: HTTPConnection) -> Identity:
    """The authenticated caller (AuthenticationError → 401 otherwise)."""
    ident: Identity = context(conn).auth.authenticate(conn)
    return ident


def principal(conn: HTTPConnection, who: Annotated[Identity, Depends(identity)]) -> Principal:
    """The caller's entitlements from the store's catalog (AccessDeniedError → 403 for a user with no role)."""
    p: Principal = context(conn).auth.principal(who)
    return p


def require_scope(scope: str) -> Any:
    """A dependency refusing callers without ``scope`` (403)."""

    def check(who: Annotated[Identity, Depends(identity)]) -> Identity:
        if scope not in who.scopes:
            raise AccessDeniedError(who.user, f"this operation (it needs the {scope!r} scope of an API key)")
        return who

    return check


def rate_limited(what: str) -> Any:
    """A dependency counting one expensive request of ``what`` against the caller's budget (429 when over)."""

    def check(conn: HTTPConnection, who: Annotated[Identity, Depends(identity)]) -> Identity:
        context(conn).limiter.take(who.user, what)
        return who

    return check


Ctx = Annotated[ApiContext, Depends(context)]
Caller = Annotated[Identity, Depends(identity)]
Entitled = Annotated[Principal, Depends(principal)]
