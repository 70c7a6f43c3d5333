"""Live risk in the service: the pipeline in-process, its published snapshots and alerts, and their fan-out.

`LiveService` starts a `LivePipeline` (feeds → ``marketdata.ticks`` → risk workers → aggregator) on the configured
bus, and reads ``risk.snapshots`` and ``risk.alerts`` back from the bus like any other consumer. It keeps each
node's latest figures, an intraday series per node and the recent alerts, and hands every batch it reads to the
`Hub`, which fans it out to the live WebSockets — each client only the nodes its user may see
(`riskstream.api._entitle.NodeAccess`), encoded once per distinct set of visible nodes.

Conventions: VaR and ES are positive losses over one day at the engine's confidences (99 % VaR, 97.5 % ES by
default), in the reporting currency; P&L vectors are positive = gain; ``as_of`` is the snapshot's event time
(its newest tick); ``utilisation`` is VaR ÷ limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..bus import TopicPartition, open_bus
from ..domain import Alert, RiskSnapshot
from ..engine._batch import Contribution
from ..engine._live import LivePipeline, live_feeds
from ..engine._worker import Codecs
from ..errors import ConfigurationError, InputError
from ..risk import var_and_es
from ._config import ApiConfig
from ._entitle import NodeAccess
from ._errors import NotFoundError

__all__ = ["Hub", "LiveService"]

log = logging.getLogger("riskstream.api.live")

_STATES = {0: "ok", 1: "warning", 2: "breach"}


def iso_time(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _num(x: Any) -> float | None:
    if x is None:
        return None
    f = float(x)
    return f if np.isfinite(f) else None


class _Client:
    __slots__ = ("dropped", "queue", "visible")

    def __init__(self, visible: frozenset[str], maxsize: int) -> None:
        self.visible = visible
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize)
        self.dropped = 0


class Hub:
    """Fan-out of live messages to WebSocket clients, filtered by each client's visible nodes.

    Runs on the event loop: `publish` is called there (`loop.call_soon_threadsafe` from the reader thread). A slow
    client's queue holds at most ``maxsize`` messages; beyond that its oldest message is dropped (the next
    snapshot supersedes it), so one slow socket never holds up the others or grows memory.
    """

    def __init__(self, maxsize: int = 64) -> None:
        self.clients: set[_Client] = set()
        self.maxsize = maxsize
        self.on_send: Any = None

    def add(self, visible: frozenset[str]) -> _Client:
        client = _Client(visible, self.maxsize)
        self.clients.add(client)
        return client

    def remove(self, client: _Client) -> None:
        self.clients.discard(client)

    @staticmethod
    def _put(client: _Client, text: str) -> None:
        q = client.queue
        if q.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
                client.dropped += 1
        q.put_nowait(text)

    def publish(self, nodes: list[dict[str, Any]], alerts: list[dict[str, Any]], sent_us: int) -> int:
        """Queue ``nodes`` and ``alerts`` for every client (its visible part only); returns messages queued."""
        encoded: dict[frozenset[str], tuple[str | None, list[str]]] = {}
        queued = 0
        for client in list(self.clients):
            msgs = encoded.get(client.visible)
            if msgs is None:
                mine = [n for n in nodes if n["node"] in client.visible]
                snap = None
                if mine:
                    as_of = max(n["as_of_us"] for n in mine)
                    snap = json.dumps(
                        {"type": "snapshot", "as_of": iso_time(as_of), "sent_us": sent_us, "nodes": mine},
                        separators=(",", ":"),
                    )
                alert_msgs = [
                    json.dumps({"type": "alert", **a}, separators=(",", ":"))
                    for a in alerts
                    if a["node"] in client.visible
                ]
                msgs = encoded[client.visible] = (snap, alert_msgs)
            snap, alert_msgs = msgs
            if snap is not None:
                self._put(client, snap)
                queued += 1
            for text in alert_msgs:
                self._put(client, text)
                queued += 1
        return queued


class LiveService:
    """The live pipeline and what it publishes (see the module docstring)."""

    def __init__(self, config: ApiConfig, loaded: Any, metrics: Any) -> None:
        self.config = config
        self.loaded = loaded
        self.metrics = metrics
        self.access = NodeAccess.of_positions(loaded.portfolio.positions)
        self.hub = Hub()
        self.pipeline: LivePipeline | None = None
        self.bus: Any = None
        self.latest: dict[str, dict[str, Any]] = {}
        self.series: dict[str, deque[tuple[int, float, float]]] = {}
        self.alerts: deque[dict[str, Any]] = deque(maxlen=1_000)
        self.snapshots_read = 0
        self.started_us = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._positions: dict[TopicPartition, int] = {}
        self.error: BaseException | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        cfg, loaded = self.config, self.loaded
        self.bus = open_bus(cfg.bus, partitions=4)
        feeds = (
            []
            if cfg.source == "kafka"
            else live_feeds(cfg.source, loaded.history, cfg.rate, seconds_per_day=cfg.seconds_per_day)
        )
        self.pipeline = LivePipeline(
            self.bus,
            loaded.portfolio,
            loaded.snapshot,
            loaded.history,
            feeds=feeds,
            workers=cfg.workers,
            window=cfg.window,
            trigger_ms=cfg.trigger_ms,
            publish_ms=cfg.publish_ms,
            limit_multiple=cfg.limit_multiple,
            on_ticks=self.metrics.ticks.inc,
        )
        self.started_us = time.time_ns() // 1000
        self._reader = threading.Thread(target=self._read, name="live-reader", daemon=True)
        self._reader.start()
        self.pipeline.start()
        log.info("live pipeline started on %s: %s feed, %d workers", cfg.bus, cfg.source, cfg.workers)

    async def stop(self) -> None:
        await asyncio.to_thread(self._stop_sync)

    def _stop_sync(self) -> None:
        self._stop.set()
        if self.pipeline is not None:
            self.pipeline.stop()
        if self._reader is not None:
            self._reader.join(timeout=10)
        if self.bus is not None:
            with contextlib.suppress(Exception):
                self.bus.close()

    def readiness(self) -> str:
        if self.error is not None:
            return f"error: {self.error}"
        if self.pipeline is not None and self.pipeline.errors:
            return f"error: {self.pipeline.errors[0]}"
        if "FIRM" not in self.latest:
            return "waiting for the first firm snapshot"
        return "ok"

    # --- reading the bus -------------------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            self._read_loop()
        except BaseException as exc:  # reported by /readyz
            self.error = exc
            log.exception("live reader stopped")

    def _read_loop(self) -> None:
        bus = self.bus
        codecs = Codecs(bus)
        topics = bus.topics
        consumer = bus.consumer(f"riskstream-service-{self.started_us}")
        assignment = {
            TopicPartition(topic, p): 0
            for topic in (topics.snapshots, topics.alerts)
            for p in range(bus.partitions(topic))
        }
        consumer.assign(assignment)
        self._positions = dict(assignment)
        try:
            while not self._stop.is_set():
                records = consumer.poll(10_000, 0.05)
                if not records:
                    continue
                snaps: list[RiskSnapshot] = []
                alerts: list[Alert] = []
                for r in records:
                    self._positions[TopicPartition(r.topic, r.partition)] = r.offset + 1
                    try:
                        if r.topic == topics.snapshots:
                            snaps.append(codecs.snapshot.decode(r.value))
                        elif r.topic == topics.alerts:
                            alerts.append(codecs.alert.decode(r.value))
                    except (InputError, ValueError) as exc:
                        log.warning("undecodable %s record at offset %d: %s", r.topic, r.offset, exc)
                self._take(snaps, alerts)
        finally:
            consumer.close()

    def _node_row(self, s: RiskSnapshot) -> dict[str, Any]:
        assert self.pipeline is not None
        m = s.measures
        level = m.get("limit_level")
        return {
            "node": s.node,
            "var": _num(m.get(self.pipeline.var_name)),
            "es": _num(m.get(self.pipeline.es_name)),
            "pv": _num(m.get("pv")),
            "limit": _num(m.get("limit")),
            "utilisation": _num(m.get("limit_utilisation")),
            "state": None if level is None else _STATES.get(int(level), "breach"),
            "window": s.sequence,
            "as_of_us": s.as_of_us,
        }

    @staticmethod
    def _alert_row(a: Alert) -> dict[str, Any]:
        return {
            "node": a.node,
            "measure": a.measure,
            "state": str(a.state),
            "value": _num(a.value),
            "limit": _num(a.limit),
            "utilisation": _num(a.utilisation),
            "as_of": iso_time(a.as_of_us),
            "message": a.message,
        }

    def _take(self, snaps: Iterable[RiskSnapshot], alerts: Iterable[Alert]) -> None:
        now_us = time.time_ns() // 1000
        rows = []
        maxlen = self.config.series_points
        with self._lock:
            for s in snaps:
                row = self._node_row(s)
                rows.append(row)
                self.latest[s.node] = row
                series = self.series.get(s.node)
                if series is None:
                    series = self.series[s.node] = deque(maxlen=maxlen)
                series.append((s.as_of_us, row["var"] or 0.0, row["es"] or 0.0))
                self.snapshots_read += 1
                if s.node == "FIRM":
                    self.metrics.tick_to_var.observe(max(0.0, (now_us - s.as_of_us) / 1e6))
            alert_rows = [self._alert_row(a) for a in alerts]
            self.alerts.extend(alert_rows)
        if self._loop is not None and (rows or alert_rows):
            with contextlib.suppress(RuntimeError):  # the loop closed while stopping
                self._loop.call_soon_threadsafe(self.hub.publish, rows, alert_rows, now_us)

    def update_gauges(self) -> None:
        """Consumer lag of the service's reader per partition (for ``/metrics``)."""
        if self.bus is None:
            return
        for topic in (self.bus.topics.snapshots, self.bus.topics.alerts):
            with contextlib.suppress(Exception):
                for p, end in self.bus.end_offsets(topic).items():
                    read = self._positions.get(TopicPartition(topic, int(p)), 0)
                    self.metrics.consumer_lag.labels(topic, str(p)).set(max(0, int(end) - read))

    # --- queries ---------------------------------------------------------------------------------------------

    def nodes(self, visible: frozenset[str]) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for node, row in self.latest.items() if node in visible]

    def node(self, node: str, visible: frozenset[str]) -> dict[str, Any]:
        self._check(node, visible)
        with self._lock:
            row = self.latest.get(node)
        if row is None:
            raise NotFoundError("live figures yet for node", node)
        return dict(row)

    def _check(self, node: str, visible: frozenset[str]) -> None:
        if node not in self.access.under or node not in visible:
            # the same answer for a node that does not exist and one the user may not see: no probing
            raise NotFoundError("node", node)

    def node_series(self, node: str, visible: frozenset[str], points: int) -> dict[str, Any]:
        self._check(node, visible)
        with self._lock:
            data = list(self.series.get(node, ()))[-points:]
        return {
            "node": node,
            "t": [iso_time(t) for t, _, _ in data],
            "var": [v for _, v, _ in data],
            "es": [e for _, _, e in data],
        }

    def recent_alerts(self, visible: frozenset[str], limit: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = [a for a in self.alerts if a["node"] in visible]
        return rows[-limit:][::-1]

    def _vector(self, node: str) -> np.ndarray:
        if self.pipeline is None:
            raise NotFoundError("live pipeline for node", node)
        vec = self.pipeline.node_vector(node)
        if vec is None:
            raise NotFoundError("scenario vector yet for node", node)
        return vec

    def distribution(self, node: str, visible: frozenset[str], bins: int) -> dict[str, Any]:
        """Histogram of the node's scenario P&L (positive = gain) with VaR and ES (positive losses)."""
        self._check(node, visible)
        assert self.pipeline is not None
        cfg = self.pipeline.config.stream
        vec = self._vector(node)
        var, es = var_and_es(vec[None, :], cfg.confidence, cfg.es_confidence, cfg.rule)
        counts, edges = np.histogram(vec, bins=bins)
        return {
            "node": node,
            "edges": [float(x) for x in edges],
            "counts": [int(c) for c in counts],
            "var": float(var[0]),
            "es": float(es[0]),
            "confidence": cfg.confidence,
            "es_confidence": cfg.es_confidence,
            "scenarios": int(vec.size),
            "mean": float(vec.mean()),
        }

    def contributors(self, node: str, visible: frozenset[str], top: int) -> dict[str, Any]:
        """Top contributors of the node by component ES: positions and risk factors (Euler, see
        `StreamingEngine.contributors`); a node spread over several engines is combined exactly."""
        self._check(node, visible)
        assert self.pipeline is not None
        holders = []
        for engine in self.pipeline.engines():
            with contextlib.suppress(ConfigurationError):
                engine.node_vector(node)
                holders.append(engine)
        if not holders:
            raise NotFoundError("scenario vector yet for node", node)
        if len(holders) == 1:
            risk = holders[0].contributors(node, top)
            return _contrib_json(
                node, risk.var, risk.es, risk.top_positions, risk.top_factors, risk.unexplained
            )
        total = sum((e.node_vector(node) for e in holders[1:]), holders[0].node_vector(node))
        parts = [e.contributors(node, 10**9, vector=total) for e in holders]
        var, es = parts[0].var, parts[0].es
        positions = sorted((c for p in parts for c in p.top_positions), key=lambda c: -c.es)[:top]
        factors: dict[str, list[float]] = {}
        for p in parts:
            for c in p.top_factors:
                acc = factors.setdefault(c.label, [0.0, 0.0])
                acc[0] += c.var
                acc[1] += c.es
        share = (lambda v: v / es) if es else (lambda v: 0.0)
        ranked = sorted(factors.items(), key=lambda kv: -kv[1][1])
        top_factors = [Contribution(k, v, e, share(e)) for k, (v, e) in ranked[:top]]
        f_var = sum(v for v, _ in factors.values())
        f_es = sum(e for _, e in factors.values())
        unexplained = Contribution(
            "unexplained (higher order and cross terms)", var - f_var, es - f_es, share(es - f_es)
        )
        return _contrib_json(node, var, es, positions, top_factors, unexplained)

    def current_market(self) -> Any:
        return None if self.pipeline is None else self.pipeline.current_market()

    def current_portfolio(self) -> Any:
        return self.loaded.portfolio if self.pipeline is None else self.pipeline.current_portfolio()


def _contrib_json(
    node: str, var: float, es: float, positions: Iterable[Any], factors: Iterable[Any], unexplained: Any
) -> dict[str, Any]:
    def row(c: Any) -> dict[str, Any]:
        return {"id": c.label, "var": _num(c.var), "es": _num(c.es), "share": _num(c.share_es)}

    return {
        "node": node,
        "var": _num(var),
        "es": _num(es),
        "positions": [row(c) for c in positions],
        "factors": [row(c) for c in factors],
        "unexplained": None if unexplained is None else row(unexplained),
    }
