"""riskstream.marketdata: market-data adapters — daily price histories from files and shipped data sets, a
synthetic but calibrated factor history, live feeds (replay, synthetic ticks, merged streams) against a clock,
and per-source quality (staleness, spikes, conflation, failover between sources)."""

from ._clock import Clock, SimulatedClock, WallClock
from ._feeds import (
    DEFAULT_CLOSE_UTC,
    DEFAULT_TICK_WEIGHTS,
    TICK_SCHEMA,
    Feed,
    MultiFeed,
    ReplayFeed,
    SyntheticFeed,
    factor_changes,
    read_ticks,
    write_ticks,
)
from ._quality import (
    ArbitratedLevel,
    Conflator,
    RejectedTick,
    SourceArbiter,
    SourceEvent,
    SourceEventKind,
    SourceSwitch,
    SpikeFilter,
    SpikeResult,
    StalenessMonitor,
    robust_daily_sigma,
)
from ._series import BUILTIN_SERIES, load_price_series, simple_returns
from ._synthetic import SECTORS, EquitySpec, Universe, synthetic_history

__all__ = [
    "BUILTIN_SERIES",
    "DEFAULT_CLOSE_UTC",
    "DEFAULT_TICK_WEIGHTS",
    "SECTORS",
    "TICK_SCHEMA",
    "ArbitratedLevel",
    "Clock",
    "Conflator",
    "EquitySpec",
    "Feed",
    "MultiFeed",
    "RejectedTick",
    "ReplayFeed",
    "SimulatedClock",
    "SourceArbiter",
    "SourceEvent",
    "SourceEventKind",
    "SourceSwitch",
    "SpikeFilter",
    "SpikeResult",
    "StalenessMonitor",
    "SyntheticFeed",
    "Universe",
    "WallClock",
    "factor_changes",
    "load_price_series",
    "read_ticks",
    "robust_daily_sigma",
    "simple_returns",
    "synthetic_history",
    "write_ticks",
]
