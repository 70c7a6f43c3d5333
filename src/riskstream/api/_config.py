"""Configuration of the risk service (`riskstream serve`, `riskstream demo`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ApiConfig"]


@dataclass(frozen=True)
class ApiConfig:
    """What the service runs and where it finds its data.

    Attributes
    ----------
    portfolio, store
        Portfolio folder (``riskstream sample-portfolio``) and risk-store root (``riskstream store demo``).
    bus
        ``memory``, ``kafka://mock`` or ``kafka://HOST:PORT``: the bus the in-process pipeline runs on.
    live
        Run feeds, risk workers and the aggregator in-process (False: serve the store only).
    source, rate, workers, window, trigger_ms, publish_ms
        The live pipeline: feeds (``replay``, ``synthetic`` or ``both``), synthetic ticks per second, worker
        threads, historical scenarios, a worker's micro-batch trigger and the aggregator's publish interval.
    seconds_per_day
        The synthetic feed moves markets by one day's variance every this many seconds (86,400: real time; the
        demo uses 300 so that a day's moves — and the risk they change — play out in five minutes).
    limit_multiple
        Default VaR limits: this multiple of each node's first VaR (1.3: nodes start at 77 % of their limit, just
        under the 80 % warning line, so alerts fire as markets move).
    series_points
        Intraday points kept per node (at one per publish, 7,200 is an hour at 500 ms).
    auth
        Authentication settings (`riskstream.api._auth.AuthConfig`); the default runs the development identity
        provider with the demo users.
    rate_limit_per_minute
        Expensive requests (reports, stress runs, back-tests) each user may start per minute.
    """

    portfolio: Path = Path(".riskstream/sample")
    store: Path = Path(".riskstream/store")
    bus: str = "memory"
    live: bool = True
    source: str = "both"
    rate: float = 1_000.0
    workers: int = 2
    window: int = 500
    trigger_ms: float = 250.0
    publish_ms: float = 500.0
    seconds_per_day: float = 86_400.0
    limit_multiple: float = 1.3
    series_points: int = 7_200
    public_url: str = "http://localhost:8000"
    auth: Any = None
    rate_limit_per_minute: int = 60
    extra: dict[str, Any] = field(default_factory=dict)
