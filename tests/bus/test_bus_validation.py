"""Validation: thousands of generated malformed ticks and position events all become dead letters with the right
reason, valid ones pass, the dead-letter counters add up, and sequence state survives a checkpoint."""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from riskstream.bus import (
    DEADLETTER_REASONS,
    PositionEventValidator,
    Record,
    TickValidator,
    Topics,
    codec_for,
    open_bus,
    publish_dead_letters,
)
from riskstream.domain import DeadLetter, PositionEvent, PositionEventKind, Tick

NOW_US = 1_700_000_000_000_000
FACTORS = ("EQ.AAPL", "FX.EUR", "VOL.SPX", "IR.USD.5Y")
TICK_KINDS = (
    "valid",
    "schema",
    "not_finite",
    "non_positive_price",
    "bid_ask_crossed",
    "unknown_factor",
    "future_event_time",
    "out_of_order_sequence",
    "duplicate_sequence",
)


def _counts(registry: CollectorRegistry) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "riskstream_deadletter_total":
                out[(sample.labels["topic"], sample.labels["reason"])] += int(sample.value)
    return out


@st.composite
def tick_case(draw: st.DrawFn) -> tuple[str, float, str, bytes | None]:
    """(kind, level, factor, garbage): what to make of one generated tick."""
    kind = draw(st.sampled_from(TICK_KINDS))
    level = draw(st.floats(0.01, 1e6))
    factor = draw(st.sampled_from(FACTORS))
    garbage = draw(st.binary(max_size=30)) if kind == "schema" else None
    return kind, level, factor, garbage


@settings(max_examples=25, deadline=None)
@given(
    cases=st.lists(tick_case(), min_size=50, max_size=200),
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_generated_malformed_ticks_become_dead_letters(cases, bad: float) -> None:  # type: ignore[no-untyped-def]
    codec = codec_for(Tick)
    registry = CollectorRegistry()
    validator = TickValidator(FACTORS, clock=lambda: NOW_US, registry=registry)
    seq = 10  # one source, already seen up to 10; valid ticks advance it, the sequence cases refer back to it
    validator.restore({"last_sequence": {"feed": {FACTORS[0]: seq}}})
    records: list[Record] = []
    expected: list[str] = []
    for offset, (kind, level, factor, garbage) in enumerate(cases):
        if kind in ("valid", "out_of_order_sequence", "duplicate_sequence"):
            factor = FACTORS[0]  # sequences are checked per source and factor
        t = Tick(factor, level, "feed", seq + 1, NOW_US - 1000)
        if kind == "schema":
            value = b"\x01" + (garbage or b"")  # a wrong magic byte can never decode
        else:
            if kind == "valid":
                seq += 1
            elif kind == "not_finite":
                t = Tick(factor, bad, "feed", seq + 1, NOW_US)
            elif kind == "non_positive_price":
                t = Tick("EQ.AAPL", -level, "feed", seq + 1, NOW_US)
            elif kind == "bid_ask_crossed":
                t = Tick(factor, level, "feed", seq + 1, NOW_US, bid=level * 1.01, ask=level)
            elif kind == "unknown_factor":
                t = Tick("EQ.NOPE", level, "feed", seq + 1, NOW_US)
            elif kind == "future_event_time":
                t = Tick(factor, level, "feed", seq + 1, NOW_US + 5_000_001)
            elif kind == "out_of_order_sequence":
                t = Tick(factor, level, "feed", seq - 1, NOW_US)
            elif kind == "duplicate_sequence":
                t = Tick(factor, level, "feed", seq, NOW_US)
            value = codec.encode(t)
        records.append(Record("marketdata.ticks", 0, offset, factor.encode(), value, NOW_US))
        expected.append(kind)
    ticks, dead = validator.validate(records)
    reasons = {d.offset: d.reason for d in dead}
    for offset, kind in enumerate(expected):
        if kind == "valid":
            assert offset not in reasons
        else:
            assert reasons.get(offset) == kind, (offset, kind, reasons.get(offset))
    assert len(ticks) + len(dead) == len(records)
    for d in dead:  # original bytes and key travel with the dead letter
        assert d.payload == records[d.offset].value and d.key == records[d.offset].key
        assert d.reason in DEADLETTER_REASONS and d.field
    assert _counts(registry) == Counter(("marketdata.ticks", d.reason) for d in dead)


def test_rates_may_be_zero_or_negative_prices_may_not() -> None:
    codec = codec_for(Tick)
    validator = TickValidator(FACTORS, clock=lambda: NOW_US, registry=CollectorRegistry())
    ticks = [
        Tick("IR.USD.5Y", -0.005, "a", 1, NOW_US),
        Tick("IR.USD.5Y", 0.0, "a", 2, NOW_US),
        Tick("FX.EUR", 0.0, "a", 3, NOW_US),
        Tick("VOL.SPX", -0.1, "a", 4, NOW_US),
        Tick("EQ.AAPL", 10.0, "a", 5, NOW_US, bid=0.0, ask=10.1),
    ]
    records = [Record("t", 0, i, None, codec.encode(t), 0) for i, t in enumerate(ticks)]
    good, dead = validator.validate(records)
    assert good == ticks[:2]
    assert [(d.offset, d.reason, d.field) for d in dead] == [
        (2, "non_positive_price", "value"),
        (3, "non_positive_price", "value"),
        (4, "non_positive_price", "bid"),
    ]


def test_sequence_state_survives_a_checkpoint() -> None:
    codec = codec_for(Tick)
    first = TickValidator(FACTORS, clock=lambda: NOW_US, registry=CollectorRegistry())
    batch = [
        Record("t", 0, i, None, codec.encode(Tick("EQ.AAPL", 1.0, src, s, NOW_US)), 0)
        for i, (src, s) in enumerate([("a", 5), ("b", 9)])
    ]
    assert len(first.validate(batch)[0]) == 2
    state = first.state()
    assert state == {"last_sequence": {"a": {"EQ.AAPL": 5}, "b": {"EQ.AAPL": 9}}}
    restarted = TickValidator(FACTORS, clock=lambda: NOW_US, registry=CollectorRegistry())
    restarted.restore(state)
    replay = [
        Record("t", 0, 2 + i, None, codec.encode(Tick("EQ.AAPL", 1.0, src, s, NOW_US)), 0)
        for i, (src, s) in enumerate([("a", 5), ("b", 8), ("a", 6)])
    ]
    good, dead = restarted.validate(replay)
    assert [t.sequence for t in good] == [6]
    assert [d.reason for d in dead] == ["duplicate_sequence", "out_of_order_sequence"]


def test_position_events_and_dead_letter_topic() -> None:
    codec = codec_for(PositionEvent)
    registry = CollectorRegistry()
    validator = PositionEventValidator(["AAPL", "UST10Y"], ["B1", "B2"], registry=registry)
    new = PositionEventKind.NEW
    events = [
        PositionEvent(new, "P1", "B1", "oms", 1, NOW_US, "AAPL", 100.0),
        PositionEvent(new, "P2", "B1", "oms", 2, NOW_US, "NOPE", 1.0),
        PositionEvent(new, "P3", "B1", "oms", 3, NOW_US, "AAPL", math.nan),
        PositionEvent(new, "", "B1", "oms", 4, NOW_US, "AAPL", 1.0),
        PositionEvent(new, "P5", "B9", "oms", 5, NOW_US, "AAPL", 1.0),
        PositionEvent(new, "P6", "B2", "oms", 6, NOW_US, "", 1.0),
        PositionEvent(
            PositionEventKind.CANCEL, "P-never-seen", "B1", "oms", 7, NOW_US
        ),  # the engine's business
        PositionEvent(PositionEventKind.AMEND, "P1", "B1", "oms", 7, NOW_US, "AAPL", 50.0),
    ]
    records = [Record("positions", 1, i, e.book.encode(), codec.encode(e), 0) for i, e in enumerate(events)]
    good, dead = validator.validate(records)
    assert good == [events[0], events[6]]
    assert [(d.offset, d.reason, d.field) for d in dead] == [
        (1, "unknown_instrument", "instrument_id"),
        (2, "not_finite", "quantity"),
        (3, "missing_field", "position_id"),
        (4, "unknown_book", "book"),
        (5, "missing_field", "instrument_id"),
        (7, "duplicate_sequence", "sequence"),
    ]
    assert sum(_counts(registry).values()) == 6

    bus = open_bus("memory", partitions=2)
    topics = Topics()
    dl_codec = codec_for(DeadLetter)
    assert publish_dead_letters(bus.producer(), topics, dead, dl_codec) == 6
    consumer = bus.consumer("dl")
    consumer.subscribe([topics.deadletter])
    back = sorted((dl_codec.decode(r.value) for r in consumer.poll(100, 0.5)), key=lambda d: d.offset)
    assert back == dead
