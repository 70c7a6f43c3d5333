"""What every request handler reaches through ``request.app.state.ctx``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from ._config import ApiConfig

__all__ = ["ApiContext", "context"]


@dataclass
class ApiContext:
    """The service's parts.

    Attributes
    ----------
    config
        `ApiConfig`.
    store
        The `RiskStore` (reports, jobs, historical series).
    loaded
        The portfolio folder as loaded (``portfolio``, ``snapshot``, ``history``).
    live
        `riskstream.api._live.LiveService` (None when ``config.live`` is off).
    auth
        `riskstream.api._auth.Authenticator`.
    metrics
        `riskstream.api._metrics.ApiMetrics`.
    limiter
        `riskstream.api._ratelimit.RateLimiter` for expensive requests.
    extras
        Per-feature state (the Perspective grid's servers, caches of the stress and back-test views).
    """

    config: ApiConfig
    store: Any
    loaded: Any
    live: Any
    auth: Any
    metrics: Any
    limiter: Any
    extras: dict[str, Any] = field(default_factory=dict)


def context(conn: HTTPConnection) -> ApiContext:
    ctx: ApiContext = conn.app.state.ctx
    return ctx
