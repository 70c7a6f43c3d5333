"""Inputs shared by the worker and pipeline tests: a small sample bank on a short history, and replay ticks."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from riskstream.bus import Bus, partition_for
from riskstream.domain import PositionEvent, PositionEventKind, Tick
from riskstream.engine._stream_config import StreamConfig
from riskstream.engine._worker import WorkerConfig
from riskstream.marketdata import SimulatedClock, SyntheticFeed, Universe, synthetic_history
from riskstream.refdata import SampleBank, sample_bank, write_portfolio

#: start of the simulated trading session, µs since the epoch (2023-11-14 22:13:20 UTC)
START_US = 1_700_000_000_000_000
WINDOW_US = 250_000


@functools.lru_cache(maxsize=1)
def small_bank() -> SampleBank:
    """400 positions on a 60-name universe; the last 300 days of history (250 scenarios need 251 days)."""
    universe = Universe.default(n_equities=40, n_option_names=10)
    history: pd.DataFrame = synthetic_history(universe, 0).iloc[-300:]
    return sample_bank(400, 0, universe=universe, history=history)


def replay_ticks(seconds: float = 4.0, rate: float = 500.0, seed: int = 1) -> list[Tick]:
    """Synthetic ticks of ``seconds`` of simulated session at ``rate`` per second, polled under a simulated clock."""
    bank = small_bank()
    clock = SimulatedClock(START_US)
    stop = START_US + int(seconds * 1e6)
    feed = SyntheticFeed(bank.history, clock=clock, rate=rate, seed=seed, start_us=START_US, stop_us=stop)
    ticks: list[Tick] = []
    while not feed.exhausted:
        clock.advance(100_000)
        ticks.extend(feed.next_batch(100_000))
    return ticks


def position_events(seconds: float = 4.0, n: int = 40, seed: int = 2) -> list[PositionEvent]:
    """``n`` trade events on the small bank spread over ``seconds`` of session: amends (quantity × 1.5), cancels
    and new positions on instruments the bank holds; one source, sequence 1, 2, ... in event-time order."""
    bank = small_bank()
    pos = bank.portfolio().positions
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(pos.position_id), size=n, replace=False)
    times = np.sort(rng.integers(START_US, START_US + int(seconds * 1e6), size=n))
    insts = bank.portfolio().instruments
    events: list[PositionEvent] = []
    for i, (r, t) in enumerate(zip(pick.tolist(), times.tolist(), strict=True)):
        attrs = {a: str(pos.attributes[a][r]) for a in ("desk", "trader") if a in pos.attributes}
        book = str(pos.attributes["book"][r])
        pid = str(pos.position_id[r])
        iid = insts[int(pos.instrument[r])].instrument_id
        qty = float(pos.quantity[r])
        kind = (PositionEventKind.AMEND, PositionEventKind.CANCEL, PositionEventKind.NEW)[i % 3]
        if kind is PositionEventKind.NEW:
            pid, qty = f"INTRADAY-{i}", -qty
        elif kind is PositionEventKind.AMEND:
            qty *= 1.5
        events.append(
            PositionEvent(kind, pid, book, "oms", i + 1, t, iid if kind is not PositionEventKind.CANCEL else "",
                          qty if kind is not PositionEventKind.CANCEL else 0.0, **attrs)
        )  # fmt: skip
    return events


def publish_events(bus: Bus, events: list[PositionEvent], codecs: object) -> None:
    """Produce position events to ``positions`` keyed by book (the partition a book's worker owns)."""
    producer = bus.producer()
    n = bus.partitions(bus.topics.positions)
    for e in events:
        key = e.book.encode()
        producer.produce(
            bus.topics.positions,
            codecs.position.encode(e),  # type: ignore[attr-defined]
            key=key,
            partition=partition_for(key, n),
        )
    producer.flush()
    producer.close()


def sim_config(tmp: Path, seconds: float = 4.0, **kw: object) -> WorkerConfig:
    """Simulation windows of 250 ms over ``seconds`` from START_US; 250 historical scenarios."""
    return WorkerConfig(
        checkpoint_dir=tmp,
        mode="simulation",
        window_us=WINDOW_US,
        start_us=START_US,
        end_us=START_US + int(seconds * 1e6),
        stream=StreamConfig(window=250, slow_every_s=0.0),
        **kw,  # type: ignore[arg-type]
    )


@functools.lru_cache(maxsize=1)
def _written(root: str) -> Path:
    return write_portfolio(Path(root) / "bank", small_bank())


def portfolio_dir(tmp_root: Path) -> Path:
    """The small bank written as a portfolio directory (once per process and root)."""
    return _written(str(tmp_root))
