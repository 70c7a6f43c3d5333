"""Per-source market-data quality: staleness, spikes, conflation under load and failover between sources.

Each component is a small state machine driven by ticks and by the clock's time (µs since the epoch, UTC), keeps
its state as plain data (``state()`` → dict of lists, numbers and strings; ``restore(state)``) so a checkpoint can
save it, and is deterministic: the same ticks and times give the same decisions.

- `StalenessMonitor`: which sources and (source, factor) pairs have not ticked for ``stale_after_us``, with an
  event when a source goes stale and when it recovers.
- `SpikeFilter`: holds a tick that moves more than k robust sigmas from the last accepted level until the next
  ticks confirm or deny it; rejected ticks come out with a reason (they become dead letters).
- `Conflator`: under load, keeps only the latest tick per factor, counting what it dropped.
- `SourceArbiter`: one level per factor from several sources, by priority, failing over to a lower-priority
  source only while every higher one is stale.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..domain import Tick, parse_factor
from ..errors import ConfigurationError, InvalidFieldError
from ._feeds import factor_changes

__all__ = [
    "ArbitratedLevel",
    "Conflator",
    "RejectedTick",
    "SourceArbiter",
    "SourceEvent",
    "SourceEventKind",
    "SourceSwitch",
    "SpikeFilter",
    "SpikeResult",
    "StalenessMonitor",
    "robust_daily_sigma",
]

_US_PER_DAY = 86_400_000_000


def _positive_duration(name: str, value: int) -> int:
    if int(value) != value or value <= 0:
        raise ConfigurationError(name, value, "must be an integer number of µs > 0")
    return int(value)


def _tick_to_list(t: Tick) -> list[Any]:
    return [t.factor_id, t.value, t.source, t.sequence, t.event_time_us, t.bid, t.ask]


def _tick_from_list(row: Sequence[Any]) -> Tick:
    f, v, s, q, e, b, a = row
    return Tick(str(f), float(v), str(s), int(q), int(e), b, a)


# ---------------------------------------------------------------------------------------------------- staleness


class SourceEventKind(enum.StrEnum):
    STALE = "stale"
    RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """A source went stale (no tick for more than ``stale_after_us``) or recovered (ticked again)."""

    source: str
    kind: SourceEventKind
    at_us: int
    last_seen_us: int


class StalenessMonitor:
    """Tracks when each source and each (source, factor) last ticked, and reports which are stale.

    A source (or a factor of a source) is stale at time t when ``t − last_seen > stale_after_us``. "Seen" is the
    time passed to `observe` (by default the tick's event time). `check` reports a source going stale once, at
    the first check that finds it so; `observe` reports its recovery with its first tick after that.

    Parameters
    ----------
    stale_after_us
        Silence after which a source is stale, in µs (> 0).
    """

    def __init__(self, stale_after_us: int) -> None:
        self.stale_after_us = _positive_duration("stale_after_us", stale_after_us)
        self._source_seen: dict[str, int] = {}
        self._factor_seen: dict[tuple[str, str], int] = {}
        self._stale: set[str] = set()

    def observe(self, tick: Tick, at_us: int | None = None) -> list[SourceEvent]:
        """Record a tick (seen at ``at_us``, default its event time); returns a RECOVERED event if it was stale."""
        at = int(tick.event_time_us if at_us is None else at_us)
        src = tick.source
        self._source_seen[src] = max(at, self._source_seen.get(src, at))
        key = (src, tick.factor_id)
        self._factor_seen[key] = max(at, self._factor_seen.get(key, at))
        if src in self._stale:
            self._stale.discard(src)
            return [SourceEvent(src, SourceEventKind.RECOVERED, at, at)]
        return []

    def observe_all(self, ticks: Iterable[Tick]) -> list[SourceEvent]:
        return [e for t in ticks for e in self.observe(t)]

    def check(self, now_us: int) -> list[SourceEvent]:
        """STALE events for sources that became stale by ``now_us`` since the last check, by source name."""
        events = []
        for src in sorted(self._source_seen):
            last = self._source_seen[src]
            if src not in self._stale and now_us - last > self.stale_after_us:
                self._stale.add(src)
                events.append(SourceEvent(src, SourceEventKind.STALE, int(now_us), last))
        return events

    def stale_sources(self, now_us: int) -> list[str]:
        """Sources stale at ``now_us`` (sorted); does not emit events."""
        return sorted(s for s, last in self._source_seen.items() if now_us - last > self.stale_after_us)

    def stale_factors(self, now_us: int) -> list[tuple[str, str]]:
        """(source, factor) pairs whose latest tick is older than ``stale_after_us`` at ``now_us`` (sorted)."""
        return sorted(k for k, last in self._factor_seen.items() if now_us - last > self.stale_after_us)

    def last_seen_us(self, source: str, factor_id: str | None = None) -> int | None:
        if factor_id is None:
            return self._source_seen.get(source)
        return self._factor_seen.get((source, factor_id))

    def state(self) -> dict[str, Any]:
        return {
            "stale_after_us": self.stale_after_us,
            "sources": [[s, t] for s, t in sorted(self._source_seen.items())],
            "factors": [[s, f, t] for (s, f), t in sorted(self._factor_seen.items())],
            "stale": sorted(self._stale),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.stale_after_us = _positive_duration("stale_after_us", state["stale_after_us"])
        self._source_seen = {str(s): int(t) for s, t in state["sources"]}
        self._factor_seen = {(str(s), str(f)): int(t) for s, f, t in state["factors"]}
        self._stale = {str(s) for s in state["stale"]}


# ---------------------------------------------------------------------------------------------------- spikes


@dataclass(frozen=True, slots=True)
class RejectedTick:
    """A tick the quality filter refused, with the field at fault and why (it becomes a dead letter)."""

    tick: Tick
    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class SpikeResult:
    """What one `SpikeFilter.offer` released: ticks accepted (in arrival order) and ticks rejected."""

    accepted: tuple[Tick, ...] = ()
    rejected: tuple[RejectedTick, ...] = ()


def robust_daily_sigma(history: pd.DataFrame, window: int = 250) -> dict[str, float]:
    """Robust daily volatility of each factor's change (relative for EQ/FX/VOL, absolute for IR).

    1.4826 × the median absolute deviation of the last ``window`` daily changes (1.4826 makes the MAD a consistent
    estimator of σ for normal data), so the crashes inside the window do not inflate it.
    """
    chg = factor_changes(history, window).to_numpy()
    mad = np.median(np.abs(chg - np.median(chg, axis=0)), axis=0)
    return {str(f): float(1.4826 * m) for f, m in zip(history.columns, mad, strict=True)}


@dataclass
class _Suspect:
    tick: Tick
    reference: float  # the last accepted level it jumped from
    reference_us: int
    followers: list[Tick] = field(default_factory=list)


class SpikeFilter:
    """Rejects isolated spikes: moves larger than ``k`` robust sigmas that the next ticks do not confirm.

    The rule, per factor:

    1. A tick with a value that is not finite, or ≤ 0 for a price, FX rate or vol, is rejected at once.
    2. The first tick of a factor (no accepted level yet, see `seed`) is accepted.
    3. Otherwise the move from the last accepted level L (at time t_L) is measured in the factor's convention —
       relative x/L − 1 for EQ/FX/VOL, absolute x − L for IR — and compared with
       σ(Δt) = σ_daily · √(max(Δt, ``min_elapsed_us``) / 1 day), Δt = event time − t_L. If |move| ≤ k·σ(Δt)
       the tick is accepted.
    4. A larger move makes the tick a *suspect*: it is held, neither accepted nor rejected. Each of the next
       ``confirm_ticks`` ticks of the factor, from any source, is compared with the suspect by the same test
       (move from the suspect's level, time since it). If all of them pass, the suspect is confirmed: it and
       its followers are accepted, in arrival order, and the level moves. As soon as one fails, the suspect and
       the followers held with it are rejected ("spike not confirmed"), and the failing tick is judged afresh
       against L by steps 3–4.

    A factor without a daily sigma is not spike-filtered (rule 1 still applies). With ``confirm_ticks`` = 0 a
    large move is rejected at once.

    Parameters
    ----------
    sigma_daily
        Factor id → robust daily sigma of its change (e.g. `robust_daily_sigma`; relative or absolute).
    k
        Threshold in sigmas (default 8: far in the tail even for fat-tailed daily changes).
    confirm_ticks
        How many following ticks must confirm a large move (m, default 2).
    min_elapsed_us
        Floor on Δt (default 60 s) so quotes microseconds apart are not held to a microsecond's volatility.
    """

    def __init__(
        self,
        sigma_daily: Mapping[str, float],
        *,
        k: float = 8.0,
        confirm_ticks: int = 2,
        min_elapsed_us: int = 60_000_000,
    ) -> None:
        if not (math.isfinite(k) and k > 0):
            raise ConfigurationError("k", k, "must be a number of sigmas > 0")
        if int(confirm_ticks) != confirm_ticks or confirm_ticks < 0:
            raise ConfigurationError("confirm_ticks", confirm_ticks, "must be an integer ≥ 0")
        for f, s in sigma_daily.items():
            if not (math.isfinite(s) and s >= 0):
                raise ConfigurationError(f"sigma_daily[{f}]", s, "must be finite and ≥ 0")
        self.sigma_daily = dict(sigma_daily)
        self.k = float(k)
        self.confirm_ticks = int(confirm_ticks)
        self.min_elapsed_us = _positive_duration("min_elapsed_us", min_elapsed_us)
        self._level: dict[str, tuple[float, int]] = {}
        self._suspect: dict[str, _Suspect] = {}
        self._positive: dict[str, bool] = {}

    @classmethod
    def from_history(cls, history: pd.DataFrame, *, window: int = 250, **kwargs: Any) -> SpikeFilter:
        """A filter with sigmas from `robust_daily_sigma` of ``history``; other options as the constructor."""
        return cls(robust_daily_sigma(history, window), **kwargs)

    def seed(self, levels: Mapping[str, float], at_us: int) -> None:
        """Set the last accepted level of factors (e.g. from the market snapshot) as of ``at_us``."""
        for f, v in levels.items():
            self._level[f] = (float(v), int(at_us))

    def level(self, factor_id: str) -> float | None:
        """Last accepted level of a factor (None before its first)."""
        got = self._level.get(factor_id)
        return None if got is None else got[0]

    def pending(self) -> list[Tick]:
        """Ticks held while a suspect waits for confirmation, by factor then arrival."""
        return [
            t for f in sorted(self._suspect) for t in (self._suspect[f].tick, *self._suspect[f].followers)
        ]

    def _is_positive(self, factor_id: str) -> bool | None:
        if factor_id not in self._positive:
            try:
                self._positive[factor_id] = parse_factor(factor_id).positive
            except InvalidFieldError:
                return None
        return self._positive[factor_id]

    def _excess(self, factor_id: str, ref: float, ref_us: int, tick: Tick) -> str | None:
        """Why the move from ``ref`` to the tick is too large, or None if it is within k sigmas."""
        sigma = self.sigma_daily.get(factor_id)
        if sigma is None:
            return None
        relative = bool(self._positive[factor_id])
        move = tick.value / ref - 1.0 if relative else tick.value - ref
        elapsed = max(tick.event_time_us - ref_us, self.min_elapsed_us)
        bound = self.k * sigma * math.sqrt(elapsed / _US_PER_DAY)
        if abs(move) <= bound:
            return None
        kind = "relative" if relative else "absolute"
        return (
            f"{kind} move {move:+.6g} from {ref:.6g} exceeds {self.k:g} robust sigmas ({bound:.3g}) "
            f"over {elapsed / 1e6:.6g} s"
        )

    def offer(self, tick: Tick) -> SpikeResult:
        """Judge one tick; returns what it releases (possibly earlier held ticks, possibly nothing yet)."""
        f = tick.factor_id
        positive = self._is_positive(f)
        if positive is None:
            return SpikeResult(rejected=(RejectedTick(tick, "factor_id", f"unknown risk factor {f!r}"),))
        if not math.isfinite(tick.value) or (positive and tick.value <= 0):
            why = "not finite" if not math.isfinite(tick.value) else "must be > 0 for a price, FX rate or vol"
            return SpikeResult(rejected=(RejectedTick(tick, "value", f"value {tick.value!r} {why}"),))
        suspect = self._suspect.get(f)
        if suspect is not None:
            if self._excess(f, suspect.tick.value, suspect.tick.event_time_us, tick) is None:
                suspect.followers.append(tick)
                if len(suspect.followers) < self.confirm_ticks:
                    return SpikeResult()
                del self._suspect[f]
                released = (suspect.tick, *suspect.followers)
                self._level[f] = (released[-1].value, released[-1].event_time_us)
                return SpikeResult(accepted=released)
            del self._suspect[f]
            held = (suspect.tick, *suspect.followers)
            why = self._excess(f, suspect.reference, suspect.reference_us, suspect.tick) or "large move"
            rejected = tuple(
                RejectedTick(t, "value", f"spike not confirmed by the next {self.confirm_ticks} ticks: {why}")
                for t in held
            )
            rest = self.offer(tick)
            return SpikeResult(rest.accepted, rejected + rest.rejected)
        ref = self._level.get(f)
        if ref is None:
            self._level[f] = (tick.value, tick.event_time_us)
            return SpikeResult(accepted=(tick,))
        excess = self._excess(f, ref[0], ref[1], tick)
        if excess is None:
            self._level[f] = (tick.value, tick.event_time_us)
            return SpikeResult(accepted=(tick,))
        if self.confirm_ticks == 0:
            return SpikeResult(rejected=(RejectedTick(tick, "value", f"spike: {excess}"),))
        self._suspect[f] = _Suspect(tick, ref[0], ref[1])
        return SpikeResult()

    def offer_all(self, ticks: Iterable[Tick]) -> SpikeResult:
        accepted: list[Tick] = []
        rejected: list[RejectedTick] = []
        for t in ticks:
            r = self.offer(t)
            accepted.extend(r.accepted)
            rejected.extend(r.rejected)
        return SpikeResult(tuple(accepted), tuple(rejected))

    def state(self) -> dict[str, Any]:
        return {
            "levels": [[f, v, t] for f, (v, t) in sorted(self._level.items())],
            "suspects": [
                {
                    "tick": _tick_to_list(s.tick),
                    "reference": s.reference,
                    "reference_us": s.reference_us,
                    "followers": [_tick_to_list(t) for t in s.followers],
                }
                for _, s in sorted(self._suspect.items())
            ],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self._level = {str(f): (float(v), int(t)) for f, v, t in state["levels"]}
        self._suspect = {}
        for s in state["suspects"]:
            tick = _tick_from_list(s["tick"])
            self._is_positive(tick.factor_id)
            self._suspect[tick.factor_id] = _Suspect(
                tick,
                float(s["reference"]),
                int(s["reference_us"]),
                [_tick_from_list(t) for t in s["followers"]],
            )


# ---------------------------------------------------------------------------------------------------- conflation


class Conflator:
    """Keeps only the latest tick per factor while the consumer is behind; drains them in a fixed order.

    "Latest" is the tick with the greatest event time (a later arrival wins a tie); any tick it replaces, or a
    late arrival older than the one kept, counts as conflated. `drain` returns the kept ticks ordered by
    (event time, factor id) — the same order whatever the arrival interleaving of equal-time ticks.
    """

    def __init__(self) -> None:
        self._latest: dict[str, Tick] = {}
        self.conflated = 0
        self.conflated_by_factor: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._latest)

    def add(self, tick: Tick) -> None:
        kept = self._latest.get(tick.factor_id)
        if kept is not None:
            self.conflated += 1
            self.conflated_by_factor[tick.factor_id] = self.conflated_by_factor.get(tick.factor_id, 0) + 1
            if tick.event_time_us < kept.event_time_us:
                return
        self._latest[tick.factor_id] = tick

    def extend(self, ticks: Iterable[Tick]) -> None:
        for t in ticks:
            self.add(t)

    def drain(self, max_ticks: int | None = None) -> list[Tick]:
        """Remove and return up to ``max_ticks`` kept ticks (all if None), oldest first, ties by factor id."""
        order = sorted(self._latest.values(), key=lambda t: (t.event_time_us, t.factor_id))
        out = order if max_ticks is None else order[: max(0, int(max_ticks))]
        for t in out:
            del self._latest[t.factor_id]
        return out

    def state(self) -> dict[str, Any]:
        return {
            "pending": [_tick_to_list(t) for _, t in sorted(self._latest.items())],
            "conflated": self.conflated,
            "conflated_by_factor": [[f, n] for f, n in sorted(self.conflated_by_factor.items())],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self._latest = {}
        for row in state["pending"]:
            t = _tick_from_list(row)
            self._latest[t.factor_id] = t
        self.conflated = int(state["conflated"])
        self.conflated_by_factor = {str(f): int(n) for f, n in state["conflated_by_factor"]}


# ---------------------------------------------------------------------------------------------------- arbitration


@dataclass(frozen=True, slots=True)
class ArbitratedLevel:
    """The level chosen for a factor at a time, the source it came from, and whether that source is stale."""

    factor_id: str
    value: float
    source: str
    event_time_us: int
    stale: bool


@dataclass(frozen=True, slots=True)
class SourceSwitch:
    """The source used for a factor changed (failover to a lower priority, or failback to a higher one)."""

    factor_id: str
    from_source: str | None
    to_source: str
    at_us: int


class SourceArbiter:
    """One level per factor from several sources of the same instrument, by priority with failover.

    The rule, for factor f at time t: a source is *fresh* for f when its latest tick for f has an event time
    within ``stale_after_us`` of t (t − event time ≤ stale_after_us). The level used is the latest tick for f
    from the highest-priority fresh source. A lower-priority source is used only while every higher-priority
    source is stale for f (or has never ticked f); the moment a higher one ticks again it is used again
    (failback). If no source is fresh, the most recent tick of any source is used (a tie goes to the higher
    priority) and flagged ``stale``. Sources not in ``priority`` are ignored.

    Parameters
    ----------
    priority
        Source names, highest priority first.
    stale_after_us
        Age after which a source's tick no longer counts as fresh, in µs.
    """

    def __init__(self, priority: Sequence[str], stale_after_us: int) -> None:
        if not priority or len(set(priority)) != len(priority):
            raise ConfigurationError("priority", list(priority), "need one or more distinct source names")
        self.priority = tuple(priority)
        self._rank = {s: i for i, s in enumerate(self.priority)}
        self.stale_after_us = _positive_duration("stale_after_us", stale_after_us)
        self._latest: dict[str, list[Tick | None]] = {}  # factor → latest tick per source, in priority order
        self._chosen: dict[str, str] = {}
        self._switches: list[SourceSwitch] = []
        self.ignored = 0

    def _select(self, factor_id: str, now_us: int) -> ArbitratedLevel | None:
        ticks = self._latest.get(factor_id)
        if ticks is None:
            return None
        for t in ticks:
            if t is not None and now_us - t.event_time_us <= self.stale_after_us:
                return ArbitratedLevel(factor_id, t.value, t.source, t.event_time_us, False)
        best = max(
            (t for t in ticks if t is not None), key=lambda t: (t.event_time_us, -self._rank[t.source])
        )
        return ArbitratedLevel(factor_id, best.value, best.source, best.event_time_us, True)

    def _note(self, level: ArbitratedLevel, now_us: int) -> None:
        before = self._chosen.get(level.factor_id)
        if before != level.source:
            self._chosen[level.factor_id] = level.source
            self._switches.append(SourceSwitch(level.factor_id, before, level.source, int(now_us)))

    def offer(self, tick: Tick, now_us: int | None = None) -> Tick | None:
        """Record a tick; return it if its source is the one used for its factor at ``now_us`` (default its time)."""
        rank = self._rank.get(tick.source)
        if rank is None:
            self.ignored += 1
            return None
        now = int(tick.event_time_us if now_us is None else now_us)
        slots = self._latest.setdefault(tick.factor_id, [None] * len(self.priority))
        old = slots[rank]
        if old is None or tick.event_time_us >= old.event_time_us:
            slots[rank] = tick
        level = self._select(tick.factor_id, now)
        if level is None:  # unreachable: the factor has just had a tick
            return None
        self._note(level, now)
        return tick if level.source == tick.source and slots[rank] is tick else None

    def level(self, factor_id: str, now_us: int) -> ArbitratedLevel | None:
        """The level used for ``factor_id`` at ``now_us`` by the rule above (None if no source ever ticked it)."""
        return self._select(factor_id, now_us)

    def poll(self, now_us: int) -> list[SourceSwitch]:
        """Re-evaluate every factor at ``now_us``; returns the switches since the last poll, oldest first."""
        for f in sorted(self._latest):
            level = self._select(f, now_us)
            if level is not None:
                self._note(level, now_us)
        out, self._switches = self._switches, []
        return out

    def state(self) -> dict[str, Any]:
        return {
            "priority": list(self.priority),
            "stale_after_us": self.stale_after_us,
            "latest": [
                _tick_to_list(t) for f in sorted(self._latest) for t in self._latest[f] if t is not None
            ],
            "chosen": [[f, s] for f, s in sorted(self._chosen.items())],
            "switches": [asdict(s) for s in self._switches],
            "ignored": self.ignored,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        fresh = SourceArbiter(state["priority"], state["stale_after_us"])
        self.priority, self._rank, self.stale_after_us = fresh.priority, fresh._rank, fresh.stale_after_us
        self._latest = {}
        for row in state["latest"]:
            t = _tick_from_list(row)
            self._latest.setdefault(t.factor_id, [None] * len(self.priority))[self._rank[t.source]] = t
        self._chosen = {str(f): str(s) for f, s in state["chosen"]}
        self._switches = [SourceSwitch(**s) for s in state["switches"]]
        self.ignored = int(state["ignored"])
