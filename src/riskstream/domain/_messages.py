"""Messages that flow through the real-time pipeline: ticks, position events, risk snapshots and alerts.

They are plain, frozen values. Their wire form (Avro in the Confluent Schema Registry format, versioned) lives in
the bus adapter; their meaning (what makes a tick valid) is checked where they are consumed, so that a bad message
becomes a dead letter with a reason instead of an exception.

Conventions:
- times are integers, microseconds since the Unix epoch, UTC (``*_us``);
- a tick carries the level of one risk factor (``EQ.AAPL`` spot, ``FX.EUR`` in USD per unit, ``IR.USD.5Y`` zero
  rate as a decimal, ``VOL.SPX`` implied vol as a decimal) — the same units as :class:`MarketSnapshot`;
- risk measures in a snapshot are positive losses in the reporting currency, named ``var_99_1d``, ``es_975_1d``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "Alert",
    "AlertState",
    "DeadLetter",
    "PositionEvent",
    "PositionEventKind",
    "RiskSnapshot",
    "Tick",
]


@dataclass(frozen=True, slots=True)
class Tick:
    """A new level for one risk factor from one source.

    ``sequence`` increases strictly per ``source``; ``bid``/``ask`` are optional quotes around ``value``.
    """

    factor_id: str
    value: float
    source: str
    sequence: int
    event_time_us: int
    bid: float | None = None
    ask: float | None = None


class PositionEventKind(enum.StrEnum):
    NEW = "new"
    AMEND = "amend"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class PositionEvent:
    """An intraday trade event: a new position, an amended quantity, or a cancellation.

    ``new`` and ``amend`` carry the full position (its quantity replaces the previous one); ``cancel`` needs only
    ``position_id`` and ``book`` (the partition key). ``sequence`` increases strictly per ``source``.
    """

    kind: PositionEventKind
    position_id: str
    book: str
    source: str
    sequence: int
    event_time_us: int
    instrument_id: str = ""
    quantity: float = 0.0
    desk: str = ""
    trader: str = ""
    counterparty: str = ""
    sector: str = ""
    region: str = ""
    currency: str = ""


@dataclass(frozen=True, slots=True)
class RiskSnapshot:
    """Risk of one hierarchy node at one instant, and the input offsets it reflects.

    ``measures`` maps measure names (``var_99_1d``, ``es_975_1d``, ``pv``, ``limit_utilisation``, ...) to values;
    ``input_offsets`` maps ``topic:partition`` to the next offset to read, so a snapshot says exactly which input
    it includes.
    """

    node: str
    as_of_us: int
    measures: Mapping[str, float]
    input_offsets: Mapping[str, int] = field(default_factory=dict)
    method: str = "hs"
    sequence: int = 0


class AlertState(enum.StrEnum):
    WARNING = "warning"
    BREACH = "breach"
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class Alert:
    """A limit event on one node: utilisation = value / limit crossed a threshold (with hysteresis)."""

    node: str
    measure: str
    state: AlertState
    value: float
    limit: float
    utilisation: float
    as_of_us: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be used: where it came from, why, and its original bytes."""

    topic: str
    partition: int
    offset: int
    reason: str
    field: str
    payload: bytes
    key: bytes | None = None
