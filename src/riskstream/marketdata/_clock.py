"""Clocks: where feeds and quality monitors read "now", so that replay and tests are deterministic.

Times are integers, microseconds since the Unix epoch, UTC — the convention of every pipeline message.
`WallClock` reads the system clock; `SimulatedClock` moves only when told to, so a replay driven by it produces
the same ticks, in the same batches, on every run.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from ..errors import ConfigurationError

__all__ = ["Clock", "SimulatedClock", "WallClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of the current time, in microseconds since the Unix epoch (UTC)."""

    def now_us(self) -> int: ...


class WallClock:
    """The system's real-time clock (``time.time_ns() // 1000``)."""

    def now_us(self) -> int:
        return time.time_ns() // 1000

    def __repr__(self) -> str:
        return "WallClock()"


class SimulatedClock:
    """A clock that moves only through `advance` and `set`; it never goes backwards.

    Parameters
    ----------
    start_us
        Initial time, microseconds since the Unix epoch (UTC); ≥ 0.
    """

    __slots__ = ("_now",)

    def __init__(self, start_us: int = 0) -> None:
        if int(start_us) != start_us or start_us < 0:
            raise ConfigurationError("start_us", start_us, "must be an integer ≥ 0 (µs since the epoch)")
        self._now = int(start_us)

    def now_us(self) -> int:
        return self._now

    def advance(self, us: int) -> int:
        """Move forward by ``us`` microseconds (≥ 0); returns the new time."""
        if int(us) != us or us < 0:
            raise ConfigurationError("us", us, "a simulated clock advances by an integer ≥ 0 of µs")
        self._now += int(us)
        return self._now

    def set(self, us: int) -> int:
        """Jump to ``us`` microseconds since the epoch; it must not be earlier than now (time is monotone)."""
        if int(us) != us or us < self._now:
            raise ConfigurationError("us", us, f"must be an integer ≥ the current time {self._now}")
        self._now = int(us)
        return self._now

    def __repr__(self) -> str:
        return f"SimulatedClock({self._now})"
