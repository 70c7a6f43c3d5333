"""Inputs shared by the worker and pipeline tests: a small sample bank on a short history, and replay ticks."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from riskstream.domain import Tick
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
