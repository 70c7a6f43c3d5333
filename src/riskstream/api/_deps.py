"""FastAPI dependencies: the caller's identity and entitlements, and the rate limit of expensive requests."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from ..errors import AccessDeniedError
from ..store import Principal
from ._context import ApiContext, context
from ._identity import Identity

__all__ = ["Caller", "Ctx", "Entitled", "identity", "principal", "rate_limited", "require_scope"]


async def identity(conn: HTTPConnection) -> Identity:
    """The authenticated caller (AuthenticationError → 401 otherwise).

    Runs on the event loop: verifying a JWT is a few tens of microseconds of CPU, cheaper than a hop to the
    threadpool; an API key is looked up in the catalog, so that case goes to the threadpool.
    """
    auth = context(conn).auth
    if "x-api-key" in conn.headers:
        ident: Identity = await run_in_threadpool(auth.authenticate, conn)
    else:
        ident = auth.authenticate(conn)
    return ident


async def principal(conn: HTTPConnection, who: Annotated[Identity, Depends(identity)]) -> Principal:
    """The caller's entitlements from the store's catalog (AccessDeniedError → 403 for a user with no role);
    from the authenticator's cache on the event loop, else from the catalog in the threadpool."""
    auth = context(conn).auth
    cached: Principal | None = auth.cached_principal(who)
    if cached is not None:
        return cached
    found: Principal = await run_in_threadpool(auth.principal, who)
    return found


def require_scope(scope: str) -> Any:
    """A dependency refusing callers without ``scope`` (403)."""

    def check(who: Annotated[Identity, Depends(identity)]) -> Identity:
        if scope not in who.scopes:
            raise AccessDeniedError(who.user, f"this operation (it needs the {scope!r} scope of an API key)")
        return who

    return check


def rate_limited(what: str) -> Any:
    """A dependency counting one expensive request of ``what`` against the caller's budget (429 when over)."""

    async def check(conn: HTTPConnection, who: Annotated[Identity, Depends(identity)]) -> Identity:
        context(conn).limiter.take(who.user, what)  # a dict lookup under a lock: fine on the event loop
        return who

    return check


Ctx = Annotated[ApiContext, Depends(context)]
Caller = Annotated[Identity, Depends(identity)]
Entitled = Annotated[Principal, Depends(principal)]
