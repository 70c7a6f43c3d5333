"""The whole real-time pipeline: feeds → ``marketdata.ticks`` → risk workers → ``risk.vectors`` → aggregator →
``risk.snapshots`` (desk and firm), plus the helpers `riskstream stream` / `riskstream demo` and the tests use.

`AggregatorService` consumes the workers' `VectorBatch` records. In simulation mode it waits, per window, for the
record of every positions partition, then sums the leaf vectors with the engine's `Aggregator` and publishes a
`RiskSnapshot` of the firm and of every desk (``sequence`` = window index) and their limit alerts. Desks span
books of several partitions, so only here do their vectors meet; VaR and ES come from the summed vectors, never
from summed VaRs. In live mode it publishes at most every ``publish_ms`` from the latest batch of each partition.

The aggregator keeps no state beyond the window it is assembling: on (re)start it reads ``risk.vectors`` from the
beginning and fences its own output by the last firm snapshot window already in ``risk.snapshots``, so a restart
publishes no window twice (the vectors topic is the aggregator's checkpoint).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from ..bus import Bus, TopicPartition, partition_for
from ..domain import FIRM, Portfolio, RiskSnapshot, Tick
from ..domain import MarketSnapshot as _MarketSnapshot
from ..errors import InputError
from ._limits import LimitMonitor, limits_from_values, with_limit
from ._stream import StreamingEngine
from ._stream_aggregate import Aggregator
from ._worker import (
    VECTORS_TOPIC,
    Codecs,
    RiskWorker,
    VectorBatch,
    WorkerConfig,
    _read_range,
    ensure_vectors_topic,
)

__all__ = [
    "AggregatorService",
    "PipelineResult",
    "publish_ticks",
    "read_snapshots",
    "reference_series",
    "run_simulation",
]


class AggregatorService:
    """Desk and firm snapshots from the workers' leaf vectors (see the module docstring).

    Parameters
    ----------
    bus, config
        The bus and the workers' configuration (mode, window, stream config, limit multiple).
    start_vectors, start_snapshots
        Start-of-day leaf vectors by partition are not needed: limits come from the first window's VaR.
    on_snapshots
        Called with every published batch of desk and firm snapshots.
    """

    def __init__(
        self,
        bus: Bus,
        config: WorkerConfig,
        *,
        on_snapshots: Callable[[list[RiskSnapshot]], None] | None = None,
        publish_ms: float = 200.0,
    ) -> None:
        self.bus = bus
        self.config = config
        self.codecs = Codecs(bus)
        ensure_vectors_topic(bus)
        self.n_partitions = bus.partitions(bus.topics.positions)
        self.producer = bus.producer()
        self.consumer = bus.consumer(f"{config.group}.aggregator")
        self.aggregator = Aggregator(config.stream)
        self.limits: LimitMonitor | None = None
        self.pending: dict[int, dict[int, VectorBatch]] = {}
        self.next_window = config.first_window if config.mode == "simulation" else 0
        self.published_windows = 0
        self.fenced_window = self._last_published()
        self._on_snapshots = on_snapshots
        self._publish_s = publish_ms / 1000
        self._last_publish = 0.0
        self._dirty = False
        self._live_as_of = 0
        self._live_seen: set[int] = set()
        n_vec = bus.partitions(VECTORS_TOPIC)
        self.consumer.assign({TopicPartition(VECTORS_TOPIC, p): 0 for p in range(n_vec)})

    def _last_published(self) -> int:
        """Window of the last firm snapshot already in ``risk.snapshots`` (fencing after a restart)."""
        topic = self.bus.topics.snapshots
        p = partition_for(FIRM.encode(), self.bus.partitions(topic))
        end = int(self.bus.end_offsets(topic).get(p, 0))
        last = -(2**62)
        if end == 0:
            return last
        reader = self.bus.consumer(f"{self.config.group}.aggregator.fence")
        try:
            for r in _read_range(reader, TopicPartition(topic, p), 0, end):
                with contextlib.suppress(InputError, ValueError):
                    s = self.codecs.snapshot.decode(r.value)
                    if s.node == FIRM:
                        last = max(last, s.sequence)
        finally:
            reader.close()
        return last

    @property
    def done(self) -> bool:
        return self.config.mode == "simulation" and self.next_window > self.config.last_window

    def step(self, timeout: float = 0.05) -> int:
        """Read vector batches and publish every window that is complete; returns windows published."""
        records = self.consumer.poll(10_000, timeout)
        for r in records:
            try:
                vb = VectorBatch.decode(r.value)
            except (InputError, ValueError):
                continue
            if self.config.mode == "live":
                self.aggregator.update(f"p{vb.partition}", vb.vectors, vb.values)
                self._live_seen.add(vb.partition)
                self._live_as_of = max(self._live_as_of, vb.as_of_us)
                self._dirty = True
            elif vb.window >= self.next_window:
                self.pending.setdefault(vb.window, {})[vb.partition] = vb
        published = 0
        if self.config.mode == "live":
            # the first publish waits for every partition: a desk or the firm is never shown (nor its start-of-day
            # limit set) from part of its books
            complete = len(self._live_seen) >= self.n_partitions
            if complete and self._dirty and time.monotonic() - self._last_publish >= self._publish_s:
                self._publish(self.next_window, self._live_as_of)
                self.next_window += 1
                self._dirty = False
                self._last_publish = time.monotonic()
                published = 1
            return published
        while len(self.pending.get(self.next_window, {})) == self.n_partitions:
            batches = self.pending.pop(self.next_window)
            for p in sorted(batches):
                self.aggregator.update(f"p{p}", batches[p].vectors, batches[p].values)
            as_of = batches[min(batches)].as_of_us
            self._publish(self.next_window, as_of)
            self.next_window += 1
            published += 1
        return published

    def _publish(self, window: int, as_of_us: int) -> None:
        cfg = self.config
        top = [
            replace(s, sequence=window) for s in self.aggregator.snapshots(as_of_us) if s.node.count("/") <= 1
        ]
        var_name = cfg.stream.var_name
        if self.limits is None:
            values = {s.node: s.measures[var_name] for s in top if s.measures[var_name] > 0}
            self.limits = LimitMonitor(
                limits_from_values(values, measure=var_name, multiple=cfg.limit_multiple, max_depth=1)
            )
        if window <= self.fenced_window:
            # recomputed after a restart: keep the limit states moving, publish nothing twice
            for s in top:
                self.limits.update(s.node, var_name, s.measures[var_name], as_of_us)
            return
        topics = self.bus.topics
        n_snap = self.bus.partitions(topics.snapshots)
        n_alert = self.bus.partitions(topics.alerts)
        published = []
        for s in top:
            key = s.node.encode()
            alerts = []
            with contextlib.suppress(InputError):
                alerts = self.limits.update(s.node, var_name, s.measures[var_name], as_of_us)
            s = with_limit(s, self.limits, var_name)
            published.append(s)
            self.producer.produce(
                topics.snapshots,
                self.codecs.snapshot.encode(s),
                key=key,
                partition=partition_for(key, n_snap),
            )
            for a in alerts:
                self.producer.produce(
                    topics.alerts,
                    self.codecs.alert.encode(a),
                    key=key,
                    partition=partition_for(key, n_alert),
                )
        top = published
        self.published_windows += 1
        if self._on_snapshots is not None:
            self._on_snapshots(top)

    def run(self, *, stop: threading.Event | None = None, timeout_s: float | None = None) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while not self.done:
                if stop is not None and stop.is_set():
                    break
                if deadline is not None and time.monotonic() > deadline:
                    break
                self.step()
        finally:
            self.close()

    def close(self) -> None:
        self.producer.flush()
        self.consumer.close()
        self.producer.close()


def publish_ticks(bus: Bus, ticks: Iterable[Tick], codecs: Codecs | None = None) -> int:
    """Produce ``ticks`` to ``marketdata.ticks`` keyed by factor id (so a factor lives in one partition)."""
    codecs = codecs or Codecs(bus)
    producer = bus.producer()
    n = 0
    topic = bus.topics.ticks
    encode = codecs.tick.encode
    for t in ticks:
        producer.produce(topic, encode(t), key=t.factor_id.encode())
        n += 1
    producer.flush()
    producer.close()
    return n


def read_snapshots(bus: Bus, codecs: Codecs | None = None, *, timeout_s: float = 30.0) -> list[RiskSnapshot]:
    """Every snapshot in ``risk.snapshots`` (all partitions, offset order within each)."""
    codecs = codecs or Codecs(bus)
    topic = bus.topics.snapshots
    out: list[RiskSnapshot] = []
    reader = bus.consumer("riskstream.reader")
    try:
        for p, end in sorted(bus.end_offsets(topic).items()):
            if end:
                out.extend(
                    codecs.snapshot.decode(r.value)
                    for r in _read_range(reader, TopicPartition(topic, p), 0, end, timeout_s)
                )
    finally:
        reader.close()
    return out


@dataclass(frozen=True)
class PipelineResult:
    """What `run_simulation` produced: the snapshots in ``risk.snapshots`` and the workers' counters."""

    snapshots: list[RiskSnapshot]
    stats: list[dict[str, int]]

    def series(self, node: str, measure: str) -> list[tuple[int, float]]:
        """(window, value) of ``measure`` at ``node``, by window."""
        return sorted((s.sequence, s.measures[measure]) for s in self.snapshots if s.node == node)


def run_simulation(
    bus: Bus,
    portfolio: Portfolio,
    snapshot: _MarketSnapshot,
    history: pd.DataFrame,
    config: WorkerConfig,
    *,
    workers: int = 1,
    leave_after: Sequence[int | None] | None = None,
    timeout_s: float = 120.0,
) -> PipelineResult:
    """Run ``workers`` worker threads and the aggregator over the input already on the bus (simulation mode)
    until every window is published. ``leave_after[i]``: worker i leaves the group after that many windows
    (its partitions move to the others and resume from their checkpoints)."""
    errors: list[BaseException] = []
    stats: list[dict[str, int]] = []

    def guarded(fn: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # reported to the caller below
                errors.append(exc)

        return run

    built = [RiskWorker(bus, portfolio, snapshot, history, config, name=f"w{i}") for i in range(workers)]
    limits = list(leave_after or [None] * workers)

    def work(i: int) -> Callable[[], None]:
        def run() -> None:
            w = built[i]
            w.run(until_end=limits[i] is None, max_windows=limits[i], timeout_s=timeout_s)
            stats.append(w.stats())

        return run

    agg = AggregatorService(bus, config)
    threads = [threading.Thread(target=guarded(work(i)), name=f"worker-{i}") for i in range(workers)]
    threads.append(threading.Thread(target=guarded(lambda: agg.run(timeout_s=timeout_s)), name="aggregator"))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return PipelineResult(read_snapshots(bus), stats)


def reference_series(
    portfolio: Portfolio,
    snapshot: _MarketSnapshot,
    history: pd.DataFrame,
    config: WorkerConfig,
    ticks: Sequence[Tick],
) -> dict[int, dict[str, float]]:
    """The simple reference: one engine over every book, driven directly with the ticks of each window (by event
    time), no bus, no validation; returns window → node → VaR for the firm and the desks."""
    engine = StreamingEngine(portfolio, snapshot, history, config.stream)
    w = config.window_us
    by_window: dict[int, list[Tick]] = {}
    last = config.last_window
    for t in ticks:
        k = min(max(t.event_time_us // w, config.first_window), last)
        by_window.setdefault(k, []).append(t)
    out: dict[int, dict[str, float]] = {}
    for k in range(config.first_window, last + 1):
        engine.apply_ticks(by_window.get(k, []))
        engine.step((k + 1) * w)
        out[k] = {
            s.node: s.measures[config.stream.var_name]
            for s in engine.all_snapshots((k + 1) * w)
            if s.node.count("/") <= 1
        }
    return out
