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

import numpy as np
from prometheus_client import CollectorRegistry, Counter

from riskstream.domain import DeadLetter, PositionEvent, PositionEventKind, Tick

from ._base import Producer, Record, Topics, now_us
from ._batch import RawBatch, TickBatch, decode_tick_columns
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

    def validate_batch(self, raw: RawBatch) -> tuple[TickBatch, list[DeadLetter]]:
        """Columnar :meth:`validate`: the valid ticks of ``raw`` as a :class:`TickBatch` in arrival order and a
        dead letter for every other record — the same ticks, dead letters (reasons, fields, order), counters and
        sequence state as ``validate(raw.records())``, with the checks done on whole columns."""
        horizon = min(self.clock() + self.max_future_us, _I64_MAX)
        n = len(raw)
        batch, failures = decode_tick_columns(
            raw.values, self.codec, partition=raw.partition, offset=raw.offset
        )
        if failures:
            bad = np.zeros(n, bool)
            bad[[i for i, _, _ in failures]] = True
            source_row = np.flatnonzero(~bad)  # batch row → raw row
        else:
            source_row = np.arange(n)
        factors = batch.factors
        known = np.fromiter((f in self.known_factors for f in factors), bool, len(factors))
        price = np.fromiter((f.startswith(PRICE_LIKE_PREFIXES) for f in factors), bool, len(factors))
        fi = batch.factor_index
        value, bid, ask, has_bid, has_ask = batch.value, batch.bid, batch.ask, batch.has_bid, batch.has_ask
        is_price = price[fi]
        # the checks of `check`, in its order: np.select takes the first that holds
        problem = np.select(
            [
                ~np.isfinite(value),
                has_bid & ~np.isfinite(bid),
                has_ask & ~np.isfinite(ask),
                is_price & (value <= 0),
                is_price & has_bid & (bid <= 0),
                is_price & has_ask & (ask <= 0),
                has_bid & has_ask & (bid > ask),
                ~known[fi],
                batch.event_time_us > horizon,
            ],
            np.arange(1, len(_TICK_PROBLEMS) - 2, dtype=np.int8),
            np.int8(0),
        )
        passed = np.flatnonzero(problem == 0)
        if len(passed):
            problem[passed] = self._sequence_problems(batch, passed)
        accepted = problem == 0
        dead = [_dead_at(raw, i, reason, field) for i, reason, field in failures]
        rejected = np.flatnonzero(~accepted)
        for row, code in zip(rejected.tolist(), problem[rejected].tolist(), strict=True):
            dead.append(_dead_at(raw, int(source_row[row]), *_TICK_PROBLEMS[code]))
        if dead:
            dead.sort(key=lambda d: (d.partition, d.offset))
            self._count(dead)
        return (batch if not len(rejected) else batch.select(accepted)), dead

    def _sequence_problems(self, batch: TickBatch, rows: np.ndarray) -> np.ndarray:
        """Problem codes (0, duplicate, out of order) of ``rows`` (passing every other check, in arrival order)
        against the last accepted sequence per (source, factor); advances that state by the accepted rows.

        A row is accepted iff its sequence exceeds every earlier passing row of its group and the group's state:
        a rejected row never exceeded that maximum, so the running maximum of all passing rows is the running
        last-accepted sequence."""
        n_factors = max(len(batch.factors), 1)
        group = batch.source_index[rows].astype(np.int64) * n_factors + batch.factor_index[rows]
        seq = batch.sequence[rows]
        order = np.argsort(group, kind="stable")  # groups together, arrival order within each
        g, q = group[order], seq[order]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        last = self._sequences.last
        factors, sources = batch.factors, batch.sources
        keys = [(sources[k // n_factors], factors[k % n_factors]) for k in g[starts].tolist()]
        initial = [last.get(key) for key in keys]
        codes = np.zeros(len(rows), np.int8)
        first_in_group = np.zeros(len(q), bool)
        first_in_group[starts] = True
        rising = np.r_[True, q[1:] > q[:-1]] | first_in_group
        has_initial = np.array([x is not None for x in initial], bool)
        init_values = np.array([0 if x is None else x for x in initial], np.int64)
        if rising.all() and (q[starts][has_initial] > init_values[has_initial]).all():
            sorted_codes = np.zeros(len(q), np.int8)  # the usual case: every group rises throughout
        else:
            sorted_codes = _grouped_sequence_codes(q, starts, has_initial, init_values)
        codes[order] = sorted_codes
        # the new state: the last (= highest) accepted sequence of every group that accepted one
        ok = sorted_codes == 0
        if ok.any():
            group_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(q)]))
            took = np.zeros(len(starts), bool)
            took[group_of[ok]] = True
            best = np.full(len(starts), np.iinfo(np.int64).min, np.int64)
            np.maximum.at(best, group_of[ok], q[ok])  # accepted sequences rise: the highest is the last
            for k, b in zip(np.flatnonzero(took).tolist(), best[took].tolist(), strict=True):
                last[keys[k]] = b
        return codes


def _grouped_sequence_codes(
    q: np.ndarray, starts: np.ndarray, has_initial: np.ndarray, init_values: np.ndarray
) -> np.ndarray:
    """Problem codes of sequences ``q`` sorted by group (groups begin at ``starts``; arrival order within), each
    group starting from its initial last sequence where it has one: a running maximum per group, computed on
    dense ranks offset by group so one cumulative maximum over the whole array never crosses groups."""
    n_groups = len(starts)
    group_of = np.repeat(np.arange(n_groups), np.diff(np.r_[starts, len(q)]))
    # one virtual row per group ahead of its rows, holding the initial state (or nothing: rank -1)
    values = np.concatenate([init_values[has_initial], q])
    _, ranks = np.unique(values, return_inverse=True)
    ranks = ranks.reshape(len(values)).astype(np.int64)
    init_rank = np.full(n_groups, -1, np.int64)
    init_rank[has_initial] = ranks[: int(has_initial.sum())]
    q_rank = ranks[int(has_initial.sum()) :]
    span = len(values) + 1
    keyed = group_of * span + q_rank
    # exclusive running maximum within the group, seeded with the initial rank
    running = np.maximum.accumulate(keyed)
    before = np.empty(len(q), np.int64)
    before[1:] = running[:-1]
    before[starts] = np.iinfo(np.int64).min
    seed = group_of * span + init_rank[group_of]
    before = np.maximum(before, seed)
    previous = before - group_of * span  # rank of the last accepted sequence; -1: none yet
    codes = np.zeros(len(q), np.int8)
    codes[(previous >= 0) & (q_rank == previous)] = _DUPLICATE
    codes[(previous >= 0) & (q_rank < previous)] = _OUT_OF_ORDER
    return codes


_I64_MAX = int(np.iinfo(np.int64).max)
#: problem code → (reason, field) of a tick, in the order of TickValidator.check; then the two sequence reasons
_TICK_PROBLEMS: tuple[tuple[str, str], ...] = (
    ("", ""),
    ("not_finite", "value"),
    ("not_finite", "bid"),
    ("not_finite", "ask"),
    ("non_positive_price", "value"),
    ("non_positive_price", "bid"),
    ("non_positive_price", "ask"),
    ("bid_ask_crossed", "bid"),
    ("unknown_factor", "factor_id"),
    ("future_event_time", "event_time_us"),
    ("duplicate_sequence", "sequence"),
    ("out_of_order_sequence", "sequence"),
)
_DUPLICATE = len(_TICK_PROBLEMS) - 2
_OUT_OF_ORDER = len(_TICK_PROBLEMS) - 1


def _dead_at(raw: RawBatch, i: int, reason: str, field: str) -> DeadLetter:
    tp = raw.tps[int(raw.tp_index[i])]
    value = raw.values[i]
    return DeadLetter(
        tp.topic, tp.partition, int(raw.offset[i]), reason, field, bytes(value or b""), raw.keys[i]
    )


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
