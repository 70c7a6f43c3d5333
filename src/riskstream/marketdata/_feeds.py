"""Market-data feeds: sources of `Tick` batches that a worker polls and publishes.

Every feed implements the small `Feed` protocol: ``next_batch(max_ticks)`` returns the ticks that are due now
(an empty list means nothing is due yet, not the end: check ``exhausted``), in order; ``sequence`` increases
strictly per ``source``; event times are integers, microseconds since the Unix epoch, UTC. Feeds read "now" from
a `Clock`, so under a `SimulatedClock` a replay or a synthetic stream yields the same ticks in the same batches
on every run.

- `ReplayFeed` replays a daily history (each day's levels become ticks at that day's close) or a recorded tick
  file (Parquet, see `write_ticks` / `read_ticks`) at a chosen speed.
- `SyntheticFeed` generates live ticks whose co-movements and volatilities are those of the recent history,
  with fat tails (multivariate Student-t) and rare jumps.
- `MultiFeed` merges several feeds into one stream.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..domain import Tick, parse_factor
from ..errors import ConfigurationError, EmptyInputError, InvalidFieldError, MissingFieldError
from ._clock import Clock

__all__ = [
    "DEFAULT_CLOSE_UTC",
    "DEFAULT_TICK_WEIGHTS",
    "TICK_SCHEMA",
    "Feed",
    "MultiFeed",
    "ReplayFeed",
    "SyntheticFeed",
    "factor_changes",
    "read_ticks",
    "write_ticks",
]

_US_PER_DAY = 86_400_000_000

#: Close of a history day, in UTC: 21:00 is 16:00 in New York on standard time.
DEFAULT_CLOSE_UTC = dt.time(21, 0)

#: Relative tick frequency by factor kind for `SyntheticFeed` (FX and rates quote more often than a single name,
#: implied vols far less); a weight for a factor id takes precedence over its kind's.
DEFAULT_TICK_WEIGHTS: Mapping[str, float] = {"EQ": 1.0, "FX": 3.0, "IR": 2.0, "VOL": 0.25}

#: Columns of a recorded tick file: one row per `Tick`; ``bid`` and ``ask`` may be null.
TICK_SCHEMA = pa.schema(
    [
        pa.field("factor_id", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("sequence", pa.int64(), nullable=False),
        pa.field("event_time_us", pa.int64(), nullable=False),
        pa.field("bid", pa.float64()),
        pa.field("ask", pa.float64()),
    ]
)


@runtime_checkable
class Feed(Protocol):
    """A source of ticks polled by a worker.

    ``next_batch(max_ticks)`` returns at most ``max_ticks`` ticks that are due at the clock's current time, in
    order (an empty list: nothing now); ``exhausted`` is true once the feed will never produce another tick.
    """

    @property
    def name(self) -> str: ...

    @property
    def exhausted(self) -> bool: ...

    def next_batch(self, max_ticks: int) -> list[Tick]: ...


def _check_max_ticks(max_ticks: int) -> int:
    if int(max_ticks) != max_ticks or max_ticks < 1:
        raise ConfigurationError("max_ticks", max_ticks, "must be an integer ≥ 1")
    return int(max_ticks)


def _nan_to_none(values: np.ndarray | None, n: int) -> list[float | None]:
    if values is None:
        return [None] * n
    return [None if math.isnan(v) else v for v in values.tolist()]


# ---------------------------------------------------------------------------------------------------- tick files


def _ticks_table(ticks: Sequence[Tick]) -> pa.Table:
    return pa.table(
        {
            "factor_id": [t.factor_id for t in ticks],
            "value": [float(t.value) for t in ticks],
            "source": [t.source for t in ticks],
            "sequence": [int(t.sequence) for t in ticks],
            "event_time_us": [int(t.event_time_us) for t in ticks],
            "bid": [t.bid for t in ticks],
            "ask": [t.ask for t in ticks],
        },
        schema=TICK_SCHEMA,
    )


def write_ticks(path: str | Path, ticks: Sequence[Tick]) -> Path:
    """Record ``ticks`` to a Parquet file with the columns of `TICK_SCHEMA`, in the given order.

    Returns the path written. ``bid``/``ask`` of None are stored as nulls.
    """
    path = Path(path)
    table = _ticks_table(ticks)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _read_tick_table(path: str | Path) -> pa.Table:
    table = pq.read_table(Path(path))
    for f in TICK_SCHEMA:
        if f.name not in table.column_names:
            if f.nullable:
                table = table.append_column(f.name, pa.nulls(table.num_rows, f.type))
            else:
                raise MissingFieldError(f.name, where=str(path))
    try:
        table = table.select(TICK_SCHEMA.names).cast(TICK_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise InvalidFieldError("schema", str(path), f"not a tick file: {exc}") from None
    return table


def read_ticks(path: str | Path) -> list[Tick]:
    """Read a tick file written by `write_ticks` (any Parquet file with the `TICK_SCHEMA` columns).

    Raises MissingFieldError naming a missing mandatory column.
    """
    cols = _read_tick_table(path).to_pydict()
    return [
        Tick(f, v, s, q, t, b, a)
        for f, v, s, q, t, b, a in zip(
            cols["factor_id"],
            cols["value"],
            cols["source"],
            cols["sequence"],
            cols["event_time_us"],
            cols["bid"],
            cols["ask"],
            strict=True,
        )
    ]


# ---------------------------------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class _Block:
    """A run of ticks as columns; ``sources``/``sequences`` None means: the feed's own name and counter."""

    times: np.ndarray
    factors: np.ndarray
    values: np.ndarray
    sources: np.ndarray | None = None
    sequences: np.ndarray | None = None
    bid: np.ndarray | None = None
    ask: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.times)


def _day_bound_us(day: Any, field: str) -> int:
    try:
        ts = pd.Timestamp(day)
    except (ValueError, TypeError):
        raise InvalidFieldError(field, day, "expected a date") from None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.normalize().value) // 1000  # Timestamp.value is in ns whatever the unit


def _history_blocks(
    history: pd.DataFrame, close_utc: dt.time, only_changed: bool, days_per_block: int = 32
) -> Iterator[_Block]:
    idx = pd.DatetimeIndex(history.index)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    close_us = ((close_utc.hour * 60 + close_utc.minute) * 60 + close_utc.second) * 1_000_000
    times = idx.normalize().as_unit("us").asi8 + close_us
    values = history.to_numpy(dtype=np.float64)
    factors = np.asarray(history.columns.astype(str), dtype=object)
    n_days, n_factors = values.shape
    for a in range(0, n_days, days_per_block):
        b = min(n_days, a + days_per_block)
        block = values[a:b]
        emit = ~np.isnan(block)
        if only_changed:
            prev = (
                values[a - 1 : b - 1] if a > 0 else np.vstack([np.full(n_factors, np.nan), values[: b - 1]])
            )
            # the first replayed day has no previous level and emits everything
            emit &= ~(block == prev)
        day, col = np.nonzero(emit)  # row-major: day by day, factors in column order
        yield _Block(times[a:b][day], factors[col], block[day, col])


def _table_blocks(table: pa.Table, rows_per_block: int = 65_536) -> Iterator[_Block]:
    for a in range(0, table.num_rows, rows_per_block):
        part = table.slice(a, rows_per_block)
        col = {name: part.column(name) for name in TICK_SCHEMA.names}
        yield _Block(
            times=col["event_time_us"].to_numpy(),
            factors=np.asarray(col["factor_id"].to_pylist(), dtype=object),
            values=col["value"].to_numpy(),
            sources=np.asarray(col["source"].to_pylist(), dtype=object),
            sequences=col["sequence"].to_numpy(),
            bid=col["bid"].to_numpy(zero_copy_only=False).astype(np.float64),
            ask=col["ask"].to_numpy(zero_copy_only=False).astype(np.float64),
        )


class ReplayFeed:
    """Replays recorded market data against a clock at a chosen speed.

    Build it with `from_history` (a daily level history) or `from_ticks` / `from_file` (a recording). The replay
    maps event time to clock time: the first tick's event time is pinned to the clock's time at the first
    `next_batch` call, and a tick becomes due once ``clock − t₀ ≥ (event_time − e₀) / speed``. ``speed`` 1.0 is
    real time, 60 one minute of market time per second, None as fast as the caller polls (everything is due).
    Under a `SimulatedClock` the batches are fully deterministic.

    Ticks of a history replay carry ``source`` = the feed's name and sequences 1, 2, 3 …; ticks of a recording
    keep their recorded source and sequence.
    """

    def __init__(
        self,
        blocks: Iterator[_Block],
        *,
        clock: Clock,
        speed: float | None = None,
        name: str = "replay",
    ) -> None:
        if speed is not None and not (math.isfinite(speed) and speed > 0):
            raise ConfigurationError(
                "speed", speed, "must be > 0 (1.0 = real time) or None (as fast as possible)"
            )
        if not name:
            raise ConfigurationError("name", name, "a feed needs a name")
        self._blocks = blocks
        self._clock = clock
        self._speed = speed
        self._name = name
        self._block: _Block | None = None
        self._offset = 0
        self._sequence = 0
        self._anchor: tuple[int, int] | None = None  # (clock time, event time) of the replay's start
        self._done = False
        self.emitted = 0

    # -- construction ------------------------------------------------------------------------------------------

    @classmethod
    def from_history(
        cls,
        history: pd.DataFrame,
        *,
        clock: Clock,
        speed: float | None = None,
        start: Any = None,
        end: Any = None,
        only_changed: bool = False,
        close_utc: dt.time = DEFAULT_CLOSE_UTC,
        name: str = "replay",
    ) -> ReplayFeed:
        """Replay a daily history: each day's level of each factor becomes a tick at that day's close.

        Parameters
        ----------
        history
            Dates × factor ids, levels (as `synthetic_history` or `LoadedPortfolio.history`); NaN is skipped.
        start, end
            First and last day to replay (inclusive; any date-like), or None for the whole history.
        only_changed
            Emit a factor only on days its level differs from the previous day's (the first day emits all).
        close_utc
            Time of day of the close, UTC (default 21:00, New York's 16:00 on standard time).
        """
        if not isinstance(history, pd.DataFrame) or history.empty:
            raise EmptyInputError("history")
        idx = pd.DatetimeIndex(history.index)
        keep = np.ones(len(idx), dtype=bool)
        naive = idx.tz_convert("UTC").tz_localize(None) if idx.tz is not None else idx
        if start is not None:
            keep &= naive.normalize() >= pd.Timestamp(_day_bound_us(start, "start"), unit="us")
        if end is not None:
            keep &= naive.normalize() <= pd.Timestamp(_day_bound_us(end, "end"), unit="us")
        part = history.loc[keep]
        if part.empty:
            raise EmptyInputError("history between start and end", f"{start} … {end}")
        return cls(_history_blocks(part, close_utc, only_changed), clock=clock, speed=speed, name=name)

    @classmethod
    def from_ticks(
        cls,
        ticks: Sequence[Tick],
        *,
        clock: Clock,
        speed: float | None = None,
        name: str = "replay",
    ) -> ReplayFeed:
        """Replay recorded ticks (sorted by event time, stably, so each source keeps its order)."""
        order = sorted(range(len(ticks)), key=lambda i: ticks[i].event_time_us)
        table = _ticks_table([ticks[i] for i in order])
        return cls(_table_blocks(table), clock=clock, speed=speed, name=name)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        clock: Clock,
        speed: float | None = None,
        start: Any = None,
        end: Any = None,
        name: str = "replay",
    ) -> ReplayFeed:
        """Replay a tick file written by `write_ticks`, optionally only the days ``start`` … ``end`` (UTC)."""
        table = _read_tick_table(path)
        times = table.column("event_time_us")
        mask = pa.array(np.ones(table.num_rows, dtype=bool))
        if start is not None:
            mask = pc.and_(mask, pc.greater_equal(times, _day_bound_us(start, "start")))
        if end is not None:
            mask = pc.and_(mask, pc.less(times, _day_bound_us(end, "end") + _US_PER_DAY))
        table = table.filter(mask)
        table = table.take(pc.sort_indices(table, [("event_time_us", "ascending")]))
        return cls(_table_blocks(table), clock=clock, speed=speed, name=name)

    # -- the Feed protocol -------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def exhausted(self) -> bool:
        return self._current() is None

    def _current(self) -> _Block | None:
        while not self._done and (self._block is None or self._offset >= len(self._block)):
            nxt = next(self._blocks, None)
            if nxt is None:
                self._done = True
                self._block = None
            else:
                self._block, self._offset = nxt, 0
        return None if self._done else self._block

    def due_event_time_us(self) -> float:
        """Latest event time that is due at the clock's current time (infinite when ``speed`` is None)."""
        if self._speed is None:
            return math.inf
        now = self._clock.now_us()
        if self._anchor is None:
            block = self._current()
            if block is None:
                return math.inf
            self._anchor = (now, int(block.times[self._offset]))
        wall0, event0 = self._anchor
        return event0 + math.floor((now - wall0) * self._speed)

    def next_batch(self, max_ticks: int) -> list[Tick]:
        """The ticks due now, at most ``max_ticks``, in event-time order."""
        max_ticks = _check_max_ticks(max_ticks)
        due = self.due_event_time_us()
        out: list[Tick] = []
        while len(out) < max_ticks:
            block = self._current()
            if block is None:
                break
            a = self._offset
            limit = len(block) if math.isinf(due) else int(np.searchsorted(block.times, due, side="right"))
            b = min(limit, a + max_ticks - len(out))
            if b <= a:
                break
            out.extend(self._ticks(block, a, b))
            self._offset = b
        self.emitted += len(out)
        return out

    def _ticks(self, block: _Block, a: int, b: int) -> list[Tick]:
        n = b - a
        if block.sources is None:
            sources: list[str] = [self._name] * n
            seqs = list(range(self._sequence + 1, self._sequence + n + 1))
            self._sequence += n
        else:
            sources = block.sources[a:b].tolist()
            seqs = block.sequences[a:b].tolist() if block.sequences is not None else [0] * n
        bid = _nan_to_none(None if block.bid is None else block.bid[a:b], n)
        ask = _nan_to_none(None if block.ask is None else block.ask[a:b], n)
        return [
            Tick(f, v, s, q, t, bb, aa)
            for f, v, s, q, t, bb, aa in zip(
                block.factors[a:b].tolist(),
                block.values[a:b].tolist(),
                sources,
                seqs,
                block.times[a:b].tolist(),
                bid,
                ask,
                strict=True,
            )
        ]

    def __repr__(self) -> str:
        return f"ReplayFeed(name={self._name!r}, speed={self._speed}, emitted={self.emitted})"


# ---------------------------------------------------------------------------------------------------- synthetic


def factor_changes(history: pd.DataFrame, window: int | None = None) -> pd.DataFrame:
    """Daily changes of each factor in its shock convention: relative (x₁/x₀ − 1) for EQ/FX/VOL, absolute for IR.

    Uses the last ``window`` changes (all if None); levels are forward-filled first and a change that is still
    undefined counts as no change.
    """
    relative = np.array([parse_factor(str(c)).positive for c in history.columns])
    levels = history.ffill()
    if window is not None:
        levels = levels.iloc[-(int(window) + 1) :]
    x = levels.to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        chg = np.where(relative, x[1:] / x[:-1] - 1.0, x[1:] - x[:-1])
    chg = np.where(np.isfinite(chg), chg, 0.0)
    return pd.DataFrame(chg, index=levels.index[1:], columns=history.columns)


class SyntheticFeed:
    """Live synthetic ticks whose co-movements are those of the recent history.

    The model, per time step Δ (``step_us``, at least one tick):

    - a latent state holds every factor: the log level of prices, FX rates and vols (so they stay positive), the
      level of zero rates (which may go negative);
    - each step moves all of it by a multivariate Student-t shock with the covariance of the last ``window``
      daily changes (relative for EQ/FX/VOL, absolute for IR) scaled to Δ — Σ_daily · Δ / ``seconds_per_day`` —
      and ``dof`` degrees of freedom, scaled to unit variance (one χ² draw per step: the factors share their
      fat-tailed days, as markets do);
    - plus rare jumps: a compound Poisson process per factor, ``jump_intensity`` jumps per factor per day of
      normal size with standard deviation ``jump_size`` daily sigmas. The diffusion covariance is scaled by
      1 − intensity·size² so a day's variance stays the history's;
    - ticks arrive at ``rate`` per second, evenly: tick j (from 1) has event time start + ⌊j·10⁶/rate⌋ µs, and
      reveals the current level of one factor drawn with ``weights`` (by factor id, else by kind,
      `DEFAULT_TICK_WEIGHTS`).

    The stream depends only on the history, the parameters and ``seed`` — not on how it is polled: it is
    generated in fixed chunks and served as the clock makes ticks due.
    """

    def __init__(
        self,
        history: pd.DataFrame,
        *,
        clock: Clock,
        rate: float = 1_000.0,
        seed: int = 0,
        window: int = 250,
        dof: float = 4.0,
        jump_intensity: float = 0.01,
        jump_size: float = 4.0,
        weights: Mapping[str, float] | None = None,
        step_us: int = 100_000,
        seconds_per_day: float = 86_400.0,
        start_us: int | None = None,
        stop_us: int | None = None,
        name: str = "synthetic",
        chunk_ticks: int = 65_536,
    ) -> None:
        if not isinstance(history, pd.DataFrame) or history.shape[0] < 3 or history.shape[1] < 1:
            raise EmptyInputError("history", None if not isinstance(history, pd.DataFrame) else history.shape)
        checks: list[tuple[str, float, bool, str]] = [
            ("rate", rate, math.isfinite(rate) and 0 < rate <= 1e6, "ticks per second in (0, 10⁶]"),
            ("window", window, int(window) == window and window >= 2, "an integer ≥ 2 days"),
            ("dof", dof, math.isfinite(dof) and dof > 2, "> 2 (finite variance)"),
            ("jump_intensity", jump_intensity, jump_intensity >= 0, "jumps per factor per day, ≥ 0"),
            ("jump_size", jump_size, jump_size >= 0, "daily sigmas, ≥ 0"),
            ("step_us", step_us, int(step_us) == step_us and step_us >= 1, "an integer ≥ 1 µs"),
            ("seconds_per_day", seconds_per_day, seconds_per_day > 0, "> 0"),
            ("chunk_ticks", chunk_ticks, int(chunk_ticks) == chunk_ticks and chunk_ticks >= 1, "≥ 1"),
        ]
        for field, value, ok, reason in checks:
            if not ok:
                raise ConfigurationError(field, value, f"must be {reason}")
        if jump_intensity * jump_size**2 >= 1:
            raise ConfigurationError(
                "jump_intensity",
                jump_intensity,
                f"intensity·size² must be < 1 (jumps would carry all the variance; size {jump_size})",
            )
        if not name:
            raise ConfigurationError("name", name, "a feed needs a name")
        self._clock = clock
        self._name = name
        self._rate = float(rate)
        self._factors = np.asarray(history.columns.astype(str), dtype=object)
        self._log = np.array([parse_factor(f).positive for f in self._factors])
        last = history.ffill().iloc[-1].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(last) | (self._log & (last <= 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidFieldError(
                str(self._factors[i]),
                last[i],
                "last level in the history must be finite (and > 0 for a price)",
            )
        self._state = np.where(self._log, np.log(np.where(self._log, last, 1.0)), last)

        changes = factor_changes(history, int(window)).to_numpy()
        self.daily_sigma = changes.std(axis=0, ddof=1)
        centred = (changes - changes.mean(axis=0)) / math.sqrt(len(changes) - 1)
        # Σ_daily = Vᵀ s² V: a draw g·(s·V) with g ~ N(0, I_k) has covariance Σ_daily, at a cost of k ≤ min(T, N)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        keep = s > s.max(initial=0.0) * 1e-12
        self._loading = s[keep, None] * vt[keep]
        self._tps = max(1, round(step_us * self._rate / 1e6))  # ticks per step
        step_days = self._tps / self._rate / seconds_per_day
        self._diffusion_scale = math.sqrt(step_days * (1.0 - jump_intensity * jump_size**2))
        self._jump_rate = jump_intensity * step_days  # expected jumps per factor per step
        self._jump_sd = jump_size * self.daily_sigma
        self._dof = float(dof)
        p = self._weights(weights)
        self._cdf = np.cumsum(p / p.sum())
        self._cdf[-1] = 1.0
        self._steps_per_chunk = max(1, min(int(chunk_ticks) // self._tps, 1024))
        self._rng = np.random.default_rng([int(seed), 0x71C5])
        self._start_us = int(clock.now_us() if start_us is None else start_us)
        self._stop_us = stop_us
        self._generated = 0  # ticks generated so far (the index j of the last one)
        self._buffer: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._offset = 0
        self.emitted = 0

    def _weights(self, weights: Mapping[str, float] | None) -> np.ndarray:
        table = dict(DEFAULT_TICK_WEIGHTS)
        table.update(weights or {})
        for key, w in table.items():
            if not (math.isfinite(w) and w >= 0):
                raise ConfigurationError(f"weights[{key}]", w, "tick weights must be finite and ≥ 0")
        p = np.array([table.get(f, table.get(f.split(".")[0], 0.0)) for f in self._factors], dtype=np.float64)
        if p.sum() <= 0:
            raise ConfigurationError("weights", dict(weights or {}), "every factor has weight 0")
        return p

    @property
    def name(self) -> str:
        return self._name

    @property
    def factor_ids(self) -> tuple[str, ...]:
        return tuple(self._factors.tolist())

    @property
    def ticks_per_step(self) -> int:
        return self._tps

    def event_time_us(self, j: np.ndarray | int) -> np.ndarray:
        """Event time of tick ``j`` (1-based): start + ⌊j·10⁶/rate⌋ µs."""
        return self._start_us + np.floor(np.asarray(j, dtype=np.float64) * 1e6 / self._rate).astype(np.int64)

    @property
    def exhausted(self) -> bool:
        if self._stop_us is None:
            return False
        if self._buffer is not None and self._offset < len(self._buffer[0]):
            return int(self._buffer[0][self._offset]) > self._stop_us
        return int(self.event_time_us(self._generated + 1)) > self._stop_us

    def _generate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next chunk: event times, factor indices and levels of ``steps_per_chunk`` steps of ticks."""
        rng = self._rng
        n_steps, n_factors = self._steps_per_chunk, len(self._factors)
        g = rng.standard_normal((n_steps, self._loading.shape[0]))
        w = rng.chisquare(self._dof, n_steps)
        shocks = (g @ self._loading) * (self._diffusion_scale * np.sqrt((self._dof - 2.0) / w))[:, None]
        n_jumps = rng.poisson(self._jump_rate * n_steps * n_factors)
        if n_jumps:
            at_step = rng.integers(0, n_steps, n_jumps)
            at_factor = rng.integers(0, n_factors, n_jumps)
            np.add.at(shocks, (at_step, at_factor), rng.standard_normal(n_jumps) * self._jump_sd[at_factor])
        states = self._state + np.cumsum(shocks, axis=0)
        self._state = states[-1].copy()
        n = n_steps * self._tps
        factor = np.searchsorted(self._cdf, rng.random(n), side="right")
        step = np.arange(n) // self._tps
        level = states[step, factor]
        level = np.where(self._log[factor], np.exp(level), level)
        times = self.event_time_us(np.arange(self._generated + 1, self._generated + n + 1))
        self._generated += n
        return times, factor, level

    def next_batch(self, max_ticks: int) -> list[Tick]:
        """The ticks whose event time has come (≤ the clock's time, and ≤ ``stop_us``), at most ``max_ticks``."""
        max_ticks = _check_max_ticks(max_ticks)
        due = self._clock.now_us()
        if self._stop_us is not None:
            due = min(due, int(self._stop_us))
        out: list[Tick] = []
        while len(out) < max_ticks:
            if self._buffer is None or self._offset >= len(self._buffer[0]):
                if int(self.event_time_us(self._generated + 1)) > due:
                    break
                self._buffer, self._offset = self._generate(), 0
            times, factor, level = self._buffer
            a = self._offset
            b = min(int(np.searchsorted(times, due, side="right")), a + max_ticks - len(out))
            if b <= a:
                break
            first_seq = self.emitted + len(out) + 1
            out.extend(
                Tick(f, v, self._name, q, t)
                for f, v, q, t in zip(
                    self._factors[factor[a:b]].tolist(),
                    level[a:b].tolist(),
                    range(first_seq, first_seq + b - a),
                    times[a:b].tolist(),
                    strict=True,
                )
            )
            self._offset = b
        self.emitted += len(out)
        return out

    def __repr__(self) -> str:
        return f"SyntheticFeed(name={self._name!r}, rate={self._rate}, factors={len(self._factors)})"


# ---------------------------------------------------------------------------------------------------- merge


class MultiFeed:
    """Merges several feeds into one stream.

    Each call shares ``max_ticks`` fairly: every feed is offered an equal share, and what a feed leaves unused is
    offered to the others, starting with the next feed in turn (the starting feed rotates each call, so no feed
    is always last). A batch holds each feed's ticks in that feed's order, so per-source sequences stay increasing;
    the feeds' names must be unique.
    """

    def __init__(self, feeds: Sequence[Feed], *, name: str = "multi") -> None:
        if not feeds:
            raise ConfigurationError("feeds", list(feeds), "need at least one feed")
        names = [f.name for f in feeds]
        if len(set(names)) != len(names):
            raise ConfigurationError("feeds", names, "feed names must be unique")
        self._feeds = tuple(feeds)
        self._name = name
        self._turn = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def feeds(self) -> tuple[Feed, ...]:
        return self._feeds

    @property
    def exhausted(self) -> bool:
        return all(f.exhausted for f in self._feeds)

    def next_batch(self, max_ticks: int) -> list[Tick]:
        max_ticks = _check_max_ticks(max_ticks)
        n = len(self._feeds)
        order = [self._feeds[(self._turn + i) % n] for i in range(n)]
        self._turn = (self._turn + 1) % n
        out: list[Tick] = []
        hungry = [f for f in order if not f.exhausted]
        while hungry and len(out) < max_ticks:
            share = max(1, (max_ticks - len(out)) // len(hungry))
            still: list[Feed] = []
            for feed in hungry:
                room = min(share, max_ticks - len(out))
                if room <= 0:
                    break
                got = feed.next_batch(room)
                out.extend(got)
                if len(got) == room and not feed.exhausted:
                    still.append(feed)  # it had more: offer it what the others leave
            hungry = still
        return out

    def __repr__(self) -> str:
        return f"MultiFeed({', '.join(f.name for f in self._feeds)})"
