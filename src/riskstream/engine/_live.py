"""The live pipeline on threads: feeds → ``marketdata.ticks`` → risk workers → aggregator, on one bus.

What `riskstream stream`, `riskstream demo` and the risk service (`riskstream.api`) run in-process. Workers and
the aggregator publish to ``risk.snapshots`` / ``risk.alerts`` as they would as separate processes; readers
consume those topics. In-process readers may also reach the workers' engines (`engines`) for analytics that need
scenario vectors or positions: a node's P&L distribution, its contributors, the current market.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..bus import Bus
from ..domain import MarketSnapshot as _MarketSnapshot
from ..domain import Portfolio, RiskSnapshot
from ..errors import ConfigurationError
from ._pipeline import AggregatorService, publish_ticks
from ._stream import StreamingEngine
from ._stream_config import StreamConfig
from ._worker import RiskWorker, WorkerConfig

__all__ = ["SOURCES", "LivePipeline", "live_feeds"]

#: Where live ticks come from: the history's closes replayed, a synthetic feed, both, or external producers only.
SOURCES = ("replay", "synthetic", "both", "kafka")


def live_feeds(
    source: str,
    history: pd.DataFrame,
    rate: float,
    replay: pd.DataFrame | None = None,
    replay_days: int = 0,
    speed: float | None = None,
    seed: int = 0,
    seconds_per_day: float = 86_400.0,
) -> list[Any]:
    """The feeds of ``source``. Replay: the last ``replay_days`` + 1 daily closes of ``replay`` (a history frame,
    default ``history``) at ``speed`` (None = at once; 86,400 = one day per second); synthetic: correlated
    fat-tailed moves calibrated on ``history`` at ``rate`` ticks per second, one day's variance every
    ``seconds_per_day`` seconds of the clock (`riskstream.marketdata.SyntheticFeed`)."""
    from ..marketdata import ReplayFeed, SyntheticFeed, WallClock

    if source not in SOURCES:
        raise ConfigurationError("source", source, f"one of {', '.join(SOURCES)}")
    if replay_days < 0:
        raise ConfigurationError("replay-days", replay_days, "must be ≥ 0")
    clock = WallClock()
    feeds: list[Any] = []
    if source in ("replay", "both"):
        frame = history if replay is None else replay
        if frame.empty:
            raise ConfigurationError("replay", "market history", "holds no days to replay")
        first = frame.index[max(0, len(frame.index) - 1 - replay_days)]
        # replayed first, the closes set every factor to its level; the last one is the start of day
        feeds.append(
            ReplayFeed.from_history(frame, clock=clock, speed=speed, start=first, end=frame.index[-1])
        )
    if source in ("synthetic", "both"):
        feeds.append(
            SyntheticFeed(history, clock=clock, rate=rate, seed=seed, seconds_per_day=seconds_per_day)
        )
    return feeds


class LivePipeline:
    """Feeds, ``workers`` risk-worker threads and the aggregator, in live mode, on ``bus``.

    Parameters
    ----------
    bus
        The bus (`riskstream.bus.open_bus`); the pipeline does not close it.
    portfolio, snapshot, history
        Start-of-day portfolio, market and daily history (`riskstream.refdata.load_portfolio`).
    feeds
        Objects with ``next_batch(n)`` and ``exhausted`` (`live_feeds`); none when ticks come from elsewhere.
    workers, window, trigger_ms, publish_ms
        Worker threads, historical scenarios, a worker's micro-batch trigger, the aggregator's publish interval.
    limit_multiple
        Default VaR limits: this multiple of each node's VaR in the first window (desks, books, the firm).
    on_snapshots
        Called on the aggregator thread with each published batch of desk and firm snapshots.
    on_ticks
        Called on the feed thread with the number of ticks produced in each batch.
    """

    def __init__(
        self,
        bus: Bus,
        portfolio: Portfolio,
        snapshot: _MarketSnapshot,
        history: pd.DataFrame,
        *,
        feeds: list[Any],
        workers: int = 2,
        window: int = 500,
        trigger_ms: float = 250.0,
        publish_ms: float = 500.0,
        limit_multiple: float = 1.25,
        checkpoint_dir: Path | None = None,
        on_snapshots: Callable[[list[RiskSnapshot]], None] | None = None,
        on_ticks: Callable[[int], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ConfigurationError("workers", workers, "must be ≥ 1")
        self.bus = bus
        self.portfolio = portfolio
        self.feeds = feeds
        self.config = WorkerConfig(
            group=f"risk-{int(time.time() * 1000)}",
            checkpoint_dir=checkpoint_dir or Path(tempfile.mkdtemp(prefix="riskstream-ckpt-")),
            mode="live",
            trigger_ms=trigger_ms,
            stream=StreamConfig(window=window, slow_every_s=0.0),
            limit_multiple=limit_multiple,
        )
        self.workers = [
            RiskWorker(bus, portfolio, snapshot, history, self.config, name=f"w{i}") for i in range(workers)
        ]
        self.aggregator = AggregatorService(
            bus, self.config, on_snapshots=on_snapshots, publish_ms=publish_ms
        )
        self._on_ticks = on_ticks
        self.stop_event = threading.Event()
        self.errors: list[BaseException] = []
        self.ticks_produced = 0
        self._threads: list[threading.Thread] = []

    @property
    def var_name(self) -> str:
        return self.config.stream.var_name

    @property
    def es_name(self) -> str:
        return self.config.stream.es_name

    def _guarded(self, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # a dead thread stops the pipeline and is reported by `check`
                self.errors.append(exc)
                self.stop_event.set()

        return run

    def _produce(self) -> None:
        while not self.stop_event.is_set() and any(not f.exhausted for f in self.feeds):
            batch = [t for f in self.feeds for t in f.next_batch(5_000)]
            if batch:
                publish_ticks(self.bus, batch)
                self.ticks_produced += len(batch)
                if self._on_ticks is not None:
                    self._on_ticks(len(batch))
            else:
                time.sleep(0.01)

    def start(self) -> None:
        stop = self.stop_event
        threads = [threading.Thread(target=self._guarded(self._produce), name="feed", daemon=True)]
        threads += [
            threading.Thread(target=self._guarded(partial(w.run, stop=stop)), name=w.name, daemon=True)
            for w in self.workers
        ]
        threads.append(
            threading.Thread(
                target=self._guarded(lambda: self.aggregator.run(stop=stop)), name="aggregator", daemon=True
            )
        )
        self._threads = threads
        for t in threads:
            t.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        for t in self._threads:
            t.join(timeout=timeout)

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self.stop_event.is_set()

    def check(self) -> None:
        """Raise the first error a pipeline thread died of, if any."""
        if self.errors:
            raise self.errors[0]

    # --- analytics over the in-process engines ---------------------------------------------------------------

    def engines(self) -> list[StreamingEngine]:
        """The engines of every partition the workers own now."""
        runners = [r for w in self.workers for r in list(w.runners.values())]
        return [e for e in (getattr(r, "engine", None) for r in runners) if e is not None]

    def node_vector(self, node: str) -> np.ndarray | None:
        """Scenario P&L of ``node`` (positive = gain), summed over the engines holding part of it; None if none."""
        total: np.ndarray | None = None
        for engine in self.engines():
            try:
                v = engine.node_vector(node)
            except ConfigurationError:
                continue
            total = v if total is None else total + v
        return total

    def current_market(self) -> _MarketSnapshot | None:
        engines = self.engines()
        return engines[0].current_snapshot() if engines else None

    def current_portfolio(self) -> Portfolio:
        """Every engine's live positions as one portfolio over the start-of-day instruments."""
        parts = [e.positions() for e in self.engines()]
        if not parts:
            return self.portfolio
        cols: dict[str, Any] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return Portfolio.from_records(self.portfolio.instruments, cols, self.portfolio.reporting_currency)
