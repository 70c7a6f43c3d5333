"""Prometheus metrics of the service, exposed on ``/metrics`` (prometheus-client's text format).

One `CollectorRegistry` per app (so tests and several apps in a process stay independent) holding the service's
own series plus the bus's dead-letter counters:

- ``riskstream_ticks_total`` — ticks the live pipeline produced to the bus (rate() gives ticks/s);
- ``riskstream_consumer_lag`` — records of ``risk.snapshots`` not yet read by the service, per partition;
- ``riskstream_tick_to_var_seconds`` — from the newest tick a snapshot reflects to the snapshot reaching the service;
- ``riskstream_deadletter_total`` / ``riskstream_worker_deadletter_total`` — rejected messages by topic and
  reason (the bus validators' and workers' counters, in `riskstream.bus.METRICS_REGISTRY`);
- ``riskstream_commit_seconds`` — risk-job commit durations through the API;
- ``riskstream_query_seconds`` — report latencies by kind and route;
- ``riskstream_http_requests_total`` / ``riskstream_http_request_seconds`` — by route template and status;
- ``riskstream_ws_clients`` and ``riskstream_ws_messages_total`` — live sockets and what they were sent.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ApiMetrics"]

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.ticks = Counter(
            "riskstream_ticks", "Ticks produced to the bus by the live pipeline.", registry=r
        )
        self.consumer_lag = Gauge(
            "riskstream_consumer_lag",
            "Records of a topic partition not yet read by the service.",
            ["topic", "partition"],
            registry=r,
        )
        self.tick_to_var = Histogram(
            "riskstream_tick_to_var_seconds",
            "Delay from a snapshot's as-of (its newest tick) to the snapshot reaching the service.",
            buckets=_LATENCY,
            registry=r,
        )
        self.commit = Histogram(
            "riskstream_commit_seconds", "Risk-job commit durations.", buckets=_LATENCY, registry=r
        )
        self.query = Histogram(
            "riskstream_query_seconds",
            "Report latencies.",
            ["kind", "route"],
            buckets=_LATENCY,
            registry=r,
        )
        self.http_requests = Counter(
            "riskstream_http_requests", "HTTP requests.", ["method", "route", "status"], registry=r
        )
        self.http_seconds = Histogram(
            "riskstream_http_request_seconds",
            "HTTP request durations.",
            ["method", "route"],
            buckets=_LATENCY,
            registry=r,
        )
        self.ws_clients = Gauge("riskstream_ws_clients", "Open live WebSockets.", registry=r)
        self.ws_messages = Counter(
            "riskstream_ws_messages", "Messages sent on live WebSockets.", ["kind"], registry=r
        )
