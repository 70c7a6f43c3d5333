"""Semantic validation of decoded messages: what makes a tick or a position event usable, and dead letters.

A validator takes the records of one poll, decodes them with a codec and returns the good messages and, for every
bad record, a :class:`DeadLetter` with a reason, the offending field and the original key and bytes — it never
raises on bad input, so one bad message never stops the stream. Per-source sequence state is plain data
(``state()``/``restore()``) so a checkpoint can save it with the input offsets.

Dead-letter reasons (the ``reason`` field and the ``reason`` label of ``riskstream_deadletter_total``):

========================  ====================================================================================
``schema``                the bytes are not a wire-format Avro value of a registered schema
``not_finite``            NaN or ±inf in ``value``/``bid``/``ask`` (ticks) or ``quantity`` (position events)
``non_positive_price``    ``value <= 0`` (or a bid/ask ``<= 0``) for a price-like factor: ``EQ.``, ``FX.``,
                          ``VOL.``; rates (``IR.``) may be zero or negative
``bid_ask_crossed``       ``bid > ask``
``unknown_factor``        the factor is not in the known set
``future_event_time``     event time more than ``max_future_us`` ahead of the clock
``out_of_order_sequence`` sequence lower than the last accepted one of the same source and key
``duplicate_sequence``    sequence equal to the last accepted one of the same source and key
``missing_field``         an empty ``position_id``, ``book``, ``source`` or (new/amend) ``instrument_id``
``unknown_instrument``    the instrument of a new/amend event is not in the known set
``unknown_book``          the book is not in the known set (when one is given)
========================  ====================================================================================
"""

from __future__ import annotations

import math
import weakref
from collections import Counter as _Tally
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from riskstream.domain import DeadLetter, PositionEvent, PositionEventKind, Tick

from ._base import Producer, Record, Topics, now_us
from ._schemas import AvroCodec, codec_for

__all__ = [
    "DEADLETTER_REASONS",
    "METRICS_REGISTRY",
    "PositionEventValidator",
    "TickValidator",
    "publish_dead_letters",
]

DEADLETTER_REASONS = (
    "schema",
    "not_finite",
    "non_positive_price",
    "bid_ask_crossed",
    "unknown_factor",
    "future_event_time",
    "out_of_order_sequence",
    "duplicate_sequence",
    "missing_field",
    "unknown_instrument",
    "unknown_book",
)

#: default registry of the bus metrics (pass your own to a validator to keep tests independent)
METRICS_REGISTRY = CollectorRegistry()

_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()

PRICE_LIKE_PREFIXES = ("EQ.", "FX.", "VOL.")


def _deadletter_counter(registry: CollectorRegistry) -> Counter:
    """One ``riskstream_deadletter_total`` counter per registry, shared by every validator using it."""
    counter = _COUNTERS.get(registry)
    if counter is None:
        counter = Counter(
            "riskstream_deadletter_total",
            "Messages rejected to the dead-letter topic, by source topic and reason.",
            ["topic", "reason"],
            registry=registry,
        )
        _COUNTERS[registry] = counter
    return counter


class _SequenceState:
    """Last accepted sequence per source and partition key (factor id of a tick, book of a position event).

    A source's sequence increases over all its messages, so it increases over those of any one key too; and Kafka
    keeps order per key (one key, one partition) but not across partitions. Checking per (source, key) therefore
    catches every duplicate and reordering the bus can see, without flagging the interleaving of partitions.
    """

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], int] = {}

    def state(self) -> dict[str, Any]:
        nested: dict[str, dict[str, int]] = {}
        for (source, key), seq in self.last.items():
            nested.setdefault(source, {})[key] = seq
        return {"last_sequence": nested}

    def restore(self, state: dict[str, Any]) -> None:
        self.last = {
            (str(source), str(key)): int(seq)
            for source, per_key in state.get("last_sequence", {}).items()
            for key, seq in per_key.items()
        }


class _Validator:
    def __init__(self, codec: AvroCodec[Any], registry: CollectorRegistry | None) -> None:
        self.codec = codec
        self._sequences = _SequenceState()
        self._counter = _deadletter_counter(registry if registry is not None else METRICS_REGISTRY)

    def state(self) -> dict[str, Any]:
        """The validator's state as plain data, ``{"last_sequence": {source: {key: sequence}}}``, for a checkpoint."""
        return self._sequences.state()

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from a ``state()`` taken at a checkpoint."""
        self._sequences.restore(state)

    def _count(self, dead: list[DeadLetter]) -> None:
        for (topic, reason), n in _Tally((d.topic, d.reason) for d in dead).items():
            self._counter.labels(topic, reason).inc(n)

    def _validate(
        self,
        records: Sequence[Record],
        check: Callable[[Any], tuple[str, str] | None],
        key_of: Callable[[Any], str],
    ) -> tuple[list[Any], list[DeadLetter]]:
        """Decode ``records``, apply ``check`` then the per-source sequence rule; accepted messages advance the
        sequence state. Dead letters come back in (partition, offset) order and are counted."""
        messages, failures = self.codec.decode_many([r.value for r in records])
        dead = [_dead(records[i], reason, field) for i, reason, field in failures]
        bad = {i for i, _, _ in failures}
        good = [r for i, r in enumerate(records) if i not in bad] if bad else records
        last = self._sequences.last
        accepted: list[Any] = []
        for record, message in zip(good, messages, strict=True):
            problem = check(message)
            if problem is None:
                source_key = (message.source, key_of(message))
                previous = last.get(source_key)
                if previous is None or message.sequence > previous:
                    last[source_key] = message.sequence
                    accepted.append(message)
                    continue
                reason = "duplicate_sequence" if message.sequence == previous else "out_of_order_sequence"
                problem = (reason, "sequence")
            dead.append(_dead(record, *problem))
        if dead:
            dead.sort(key=lambda d: (d.partition, d.offset))
            self._count(dead)
        return accepted, dead


def _factor_of(tick: Tick) -> str:
    return tick.factor_id


def _book_of(event: PositionEvent) -> str:
    return event.book


def _dead(record: Record, reason: str, field: str) -> DeadLetter:
    return DeadLetter(
        record.topic, record.partition, record.offset, reason, field, bytes(record.value or b""), record.key
    )


class TickValidator(_Validator):
    """Decode and check ticks (see the module doc for the reasons, checked in that order).

    ``known_factors``: risk factor ids accepted; ``max_future_us``: how far ahead of ``clock()`` (microseconds
    since the epoch) an event time may be; ``codec``: the tick codec (default: ``marketdata.ticks`` on the
    ``mock://`` registry); ``registry``: where the dead-letter counter lives (default ``METRICS_REGISTRY``).
    """

    def __init__(
        self,
        known_factors: Collection[str],
        *,
        max_future_us: int = 5_000_000,
        clock: Callable[[], int] = now_us,
        codec: AvroCodec[Tick] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(codec if codec is not None else codec_for(Tick), registry)
        self.known_factors = frozenset(known_factors)
        self.max_future_us = max_future_us
        self.clock = clock

    def check(self, tick: Tick, horizon_us: int) -> tuple[str, str] | None:
        """(reason, field) of the first problem of ``tick`` other than its sequence, or None."""
        value, bid, ask = tick.value, tick.bid, tick.ask
        if not math.isfinite(value):
            return "not_finite", "value"
        if bid is not None and not math.isfinite(bid):
            return "not_finite", "bid"
        if ask is not None and not math.isfinite(ask):
            return "not_finite", "ask"
        factor = tick.factor_id
        if factor.startswith(PRICE_LIKE_PREFIXES):
            if value <= 0:
                return "non_positive_price", "value"
            if bid is not None and bid <= 0:
                return "non_positive_price", "bid"
            if ask is not None and ask <= 0:
                return "non_positive_price", "ask"
        if bid is not None and ask is not None and bid > ask:
            return "bid_ask_crossed", "bid"
        if factor not in self.known_factors:
            return "unknown_factor", "factor_id"
        if tick.event_time_us > horizon_us:
            return "future_event_time", "event_time_us"
        return None

    def validate(self, records: Sequence[Record]) -> tuple[list[Tick], list[DeadLetter]]:
        """The valid ticks of ``records`` in order, and a dead letter for every other record."""
        horizon = self.clock() + self.max_future_us
        return self._validate(records, lambda tick: self.check(tick, horizon), _factor_of)


class PositionEventValidator(_Validator):
    """Decode and check position events: mandatory ids, a known finite-quantity instrument for new/amend, a known
    book (when ``known_books`` is given), strictly increasing sequence per source.

    Whether a cancel refers to a position that exists is the engine's business, not the validator's.
    """

    def __init__(
        self,
        known_instruments: Collection[str],
        known_books: Collection[str] | None = None,
        *,
        codec: AvroCodec[PositionEvent] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(codec if codec is not None else codec_for(PositionEvent), registry)
        self.known_instruments = frozenset(known_instruments)
        self.known_books = None if known_books is None else frozenset(known_books)

    def check(self, event: PositionEvent) -> tuple[str, str] | None:
        """(reason, field) of the first problem of ``event`` other than its sequence, or None."""
        for name in ("position_id", "book", "source"):
            if not getattr(event, name):
                return "missing_field", name
        if self.known_books is not None and event.book not in self.known_books:
            return "unknown_book", "book"
        if event.kind is not PositionEventKind.CANCEL:
            if not event.instrument_id:
                return "missing_field", "instrument_id"
            if not math.isfinite(event.quantity):
                return "not_finite", "quantity"
            if event.instrument_id not in self.known_instruments:
                return "unknown_instrument", "instrument_id"
        return None

    def validate(self, records: Sequence[Record]) -> tuple[list[PositionEvent], list[DeadLetter]]:
        """The valid events of ``records`` in order, and a dead letter for every other record."""
        return self._validate(records, self.check, _book_of)


def publish_dead_letters(
    producer: Producer, topics: Topics, dead_letters: Iterable[DeadLetter], codec: AvroCodec[DeadLetter]
) -> int:
    """Write dead letters to ``topics.deadletter`` (keyed by the original key); returns how many."""
    n = 0
    for dead in dead_letters:
        producer.produce(topics.deadletter, codec.encode(dead), key=dead.key)
        n += 1
    return n
