"""The columnar tick path against its references: ``decode_tick_columns`` equals fastavro (``codec.decode``) value
by value on generated ticks and malformed bytes, ``TickValidator.validate_batch`` equals ``validate`` (ticks, dead
letters, counters, sequence state), and ``poll_batch`` returns what ``poll`` returns on both buses."""

from __future__ import annotations

import copy
import itertools
import math
import struct
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from riskstream.bus import (
    SCHEMAS,
    AvroCodec,
    Bus,
    RawBatch,
    Record,
    TickBatch,
    TickValidator,
    TopicPartition,
    codec_for,
    decode_tick_columns,
    registry_client,
)
from riskstream.domain import Tick
from riskstream.errors import InvalidFieldError

NOW_US = 1_700_000_000_000_000
FACTORS = ("EQ.AAPL", "FX.EUR", "VOL.SPX", "IR.USD.5Y")

text = st.text(max_size=12) | st.text(min_size=60, max_size=80)  # past the 64-byte fast-path limit too
longs = st.integers(-(2**63), 2**63 - 1) | st.integers(0, 2**20)
floats = st.floats() | st.sampled_from([0.0, -0.0, math.nan, math.inf])
ticks = st.builds(Tick, text, floats, text, longs, longs, st.none() | floats, st.none() | floats)


# a registry of this module's own: the newer Tick version registered below must not become the latest version
# of the default subject that other tests (in the same process) read from the shared ``mock://`` registry
REGISTRY = "mock://bus-columnar-tests"


def _codec() -> AvroCodec[Tick]:
    return codec_for(Tick, registry_url=REGISTRY)


def _v2_codec() -> AvroCodec[Tick]:
    """A newer compatible Tick schema (an added optional field) on the same subject as the default codec."""
    schema = copy.deepcopy(SCHEMAS[Tick][0])
    schema["fields"].append({"name": "venue", "type": ["null", "string"], "default": None})
    schema["doc"] = schema["doc"].replace("version 1", "version 2")
    return AvroCodec(
        Tick,
        _codec().subject,
        registry_client(REGISTRY),
        schema=schema,
        to_dict=lambda t: {**_codec()._to(t), "venue": "XNAS"},
        from_dict=lambda d: d,
    )


def _bits(x: float | None) -> bytes | None:
    return None if x is None else struct.pack("<d", x)  # NaN payloads and -0.0 compared exactly


def _key(t: Tick) -> tuple[Any, ...]:
    return (t.factor_id, _bits(t.value), t.source, t.sequence, t.event_time_us, _bits(t.bid), _bits(t.ask))


@st.composite
def wire_values(draw: st.DrawFn) -> bytes | None:
    """A wire-format tick, intact or damaged the ways a stream damages it."""
    codec = _codec()
    value = codec.encode(draw(ticks))
    body_start = 5
    how = draw(
        st.sampled_from(
            ["intact"] * 6
            + [
                "truncate",
                "magic",
                "unknown_id",
                "bad_varint",
                "union",
                "flip",
                "trailing",
                "v2",
                "none",
                "empty",
            ]
        )
    )
    if how == "truncate":
        return value[: draw(st.integers(0, len(value) - 1))]
    if how == "magic":
        return bytes([draw(st.integers(1, 255))]) + value[1:]
    if how == "unknown_id":
        return b"\x00" + (2**31 - 7).to_bytes(4, "big") + value[body_start:]
    if how == "bad_varint":  # the factor length as an endless or over-long varint
        return value[:body_start] + b"\xff" * draw(st.integers(1, 12)) + value[body_start + 1 :]
    if how == "union":  # the bid's union index out of range (the byte before the ask branch)
        return value[:-1] + bytes([draw(st.sampled_from([1, 3, 4, 0x80]))])
    if how == "flip":
        i = draw(st.integers(body_start, len(value) - 1))
        return value[:i] + bytes([value[i] ^ draw(st.integers(1, 255))]) + value[i + 1 :]
    if how == "trailing":
        return value + draw(st.binary(min_size=1, max_size=3))
    if how == "v2":
        return _v2_codec().encode(draw(ticks))
    if how == "none":
        return None
    if how == "empty":
        return b""
    return value


def _reference(values: list[bytes | None]) -> tuple[list[Tick], list[tuple[int, str, str]]]:
    """fastavro, value by value (``codec.decode``), with decode_many's failure fields."""
    codec = _codec()
    good: list[Tick] = []
    bad: list[tuple[int, str, str]] = []
    for i, v in enumerate(values):
        try:
            good.append(codec.decode(v))  # type: ignore[arg-type]
        except InvalidFieldError as exc:
            bad.append((i, "schema", exc.field or "payload"))
    return good, bad


@settings(max_examples=150, deadline=None)
@given(values=st.lists(wire_values(), max_size=40))
def test_columns_equal_fastavro_value_by_value(values: list[bytes | None]) -> None:
    batch, bad = decode_tick_columns(values, _codec())
    good, expected_bad = _reference(values)
    assert bad == expected_bad
    assert [_key(t) for t in batch.to_ticks()] == [_key(t) for t in good]
    # and decode_many (the hand-written decoder first) agrees with both
    many, many_bad = _codec().decode_many(values)  # type: ignore[arg-type]
    assert many_bad == expected_bad and [_key(t) for t in many] == [_key(t) for t in good]
    assert len(batch) == len(good) and len(set(batch.factors)) == len(batch.factors)


def test_overlong_varints_read_as_fastavro_reads_them() -> None:
    codec = _codec()
    head = codec.encode(Tick("EQ.A", 1.0, "s", 0, 0))[:5] + b"\x08EQ.A" + struct.pack("<d", 1.0) + b"\x02s"
    tail = b"\x02\x00\x00"
    values = [
        head + b"\xff" * 9 + b"\x01" + tail,  # 10 bytes, within 64 bits: -2**63 (zig-zag of 2**64 - 1)
        head + b"\xff" * 9 + b"\x7f" + tail,  # 10th byte beyond 64 bits
        head + b"\xff" * 10 + b"\x01" + tail,  # 11 bytes
        head + b"\x80\x80\x00" + tail,  # a non-minimal 0
    ]
    batch, bad = decode_tick_columns(values, _codec())
    good, expected_bad = _reference(values)  # type: ignore[arg-type]
    assert bad == expected_bad and batch.to_ticks() == good
    assert batch.sequence[0] == -(2**63) and batch.sequence[-1] == 0  # zig-zag: Avro spec, "Binary Encoding"


def test_tick_batch_round_trips_and_selects() -> None:
    ticks_ = [Tick("EQ.A", 1.0, "s", 1, 2, None, 1.5), Tick("FX.B", 2.0, "t", 3, 4, 1.9, None)]
    batch = TickBatch.from_ticks(ticks_)
    assert batch.to_ticks() == ticks_ and len(batch) == 2
    assert list(batch.factor_id) == ["EQ.A", "FX.B"] and list(batch.source) == ["s", "t"]
    assert math.isnan(batch.bid[0]) and math.isnan(batch.ask[1])
    assert batch.select(np.array([False, True])).to_ticks() == ticks_[1:]
    decoded, bad = decode_tick_columns([_codec().encode(t) for t in ticks_], _codec())
    assert not bad and decoded.to_ticks() == ticks_
    assert decode_tick_columns([], _codec())[0].to_ticks() == []


# -- validate_batch against validate -----------------------------------------------------------------------------


@st.composite
def tick_records(draw: st.DrawFn) -> list[Record]:
    """A poll's worth of records: good ticks and every kind of bad one, over a few sources and factors with
    sequences that repeat, go back and jump, across two partitions and two topics."""
    codec = _codec()
    n = draw(st.integers(0, 60))
    out: list[Record] = []
    offsets: Counter[tuple[str, int]] = Counter()
    for _ in range(n):
        factor = draw(st.sampled_from([*FACTORS, "EQ.NOPE", "IR.NOPE"]))
        level = draw(st.sampled_from([1.5, 0.0, -2.0, math.nan, math.inf, 100.0]))
        quote = st.none() | st.sampled_from([0.5, 1.0, 2.0, -1.0, math.nan, 150.0])
        tick = Tick(
            factor,
            level,
            draw(st.sampled_from(["a", "b"])),
            draw(st.integers(0, 8)),
            NOW_US + draw(st.sampled_from([-1, 0, 5_000_000, 5_000_001])),
            draw(quote),
            draw(quote),
        )
        value = codec.encode(tick) if draw(st.integers(0, 9)) else draw(wire_values())
        topic, partition = draw(st.sampled_from([("ticks", 0), ("ticks", 1), ("other", 0)]))
        offset = offsets[(topic, partition)]
        offsets[(topic, partition)] += 1
        out.append(Record(topic, partition, offset, draw(st.none() | st.just(factor.encode())), value, 7))  # type: ignore[arg-type]
    return out


def _raw(records: list[Record]) -> RawBatch:
    codes: dict[TopicPartition, int] = {}
    index = [codes.setdefault(TopicPartition(r.topic, r.partition), len(codes)) for r in records]
    return RawBatch(
        tuple(codes),
        np.array(index, np.int32),
        np.array([r.offset for r in records], np.int64),
        [r.key for r in records],
        [r.value for r in records],
        np.array([r.timestamp_us for r in records], np.int64),
    )


def _counts(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.labels["topic"], s.labels["reason"]): s.value
        for m in registry.collect()
        for s in m.samples
        if s.name == "riskstream_deadletter_total"
    }


@settings(max_examples=120, deadline=None)
@given(polls=st.lists(tick_records(), min_size=1, max_size=3), seeded=st.booleans())
def test_validate_batch_equals_validate(polls: list[list[Record]], seeded: bool) -> None:
    registries = CollectorRegistry(), CollectorRegistry()
    reference, columnar = (
        TickValidator(FACTORS, clock=lambda: NOW_US, registry=r, codec=_codec()) for r in registries
    )
    if seeded:
        state = {"last_sequence": {"a": {"EQ.AAPL": 3, "IR.USD.5Y": -1}, "b": {"FX.EUR": 8}}}
        reference.restore(state)
        columnar.restore(state)
    for records in polls:  # several polls: state carries from one to the next
        good, dead = reference.validate(records)
        batch, dead_columnar = columnar.validate_batch(_raw(records))
        assert [_key(t) for t in batch.to_ticks()] == [_key(t) for t in good]
        assert dead_columnar == dead
        kept = [
            i
            for i, r in enumerate(records)
            if all(r.offset != d.offset or r.topic != d.topic or r.partition != d.partition for d in dead)
        ]
        assert batch.offset.tolist() == [records[i].offset for i in kept]
        assert batch.partition.tolist() == [records[i].partition for i in kept]
        assert np.isfinite(batch.bid[batch.has_bid]).all()
    assert columnar.state() == reference.state()
    assert _counts(registries[1]) == _counts(registries[0])


def test_validate_batch_many_ticks_of_one_key_in_a_batch() -> None:
    codec = _codec()
    # sequences of one (source, factor) within one batch; expected by hand from the rule "accepted iff above the
    # last accepted": 5 ok, 7 ok, 6 out of order, 7 duplicate, 9 ok, 9 duplicate, 10 ok
    seqs = [5, 7, 6, 7, 9, 9, 10]
    records = [
        Record("t", 0, i, b"EQ.AAPL", codec.encode(Tick("EQ.AAPL", 1.0, "a", s, NOW_US)), 0)
        for i, s in enumerate(seqs)
    ]
    validator = TickValidator(FACTORS, clock=lambda: NOW_US, registry=CollectorRegistry(), codec=_codec())
    batch, dead = validator.validate_batch(_raw(records))
    assert batch.sequence.tolist() == [5, 7, 9, 10]
    assert [(d.offset, d.reason) for d in dead] == [
        (2, "out_of_order_sequence"),
        (3, "duplicate_sequence"),
        (5, "duplicate_sequence"),
    ]
    assert validator.state() == {"last_sequence": {"a": {"EQ.AAPL": 10}}}


# -- poll_batch against poll -------------------------------------------------------------------------------------

_groups = itertools.count()


def test_poll_batch_returns_what_poll_returns(bus: Bus, topic: str) -> None:
    codec = _codec()
    producer = bus.producer()
    sent = [Tick(f"EQ.S{i % 7}", 1.0 + i, "feed", i, NOW_US) for i in range(300)]
    for t in sent:
        producer.produce(topic, codec.encode(t), key=t.factor_id.encode())
    producer.produce(topic, b"not avro", key=None, partition=1)
    producer.flush()
    n = len(sent) + 1
    by_poll = bus.consumer(f"poll-{next(_groups)}")
    by_batch = bus.consumer(f"batch-{next(_groups)}")
    start = {TopicPartition(topic, p): 0 for p in range(bus.partitions(topic))}
    by_poll.assign(start)
    by_batch.assign(start)
    records: list[Record] = []
    raws: list[RawBatch] = []
    for _ in range(200):
        if len(records) < n:
            records.extend(by_poll.poll(100, 0.2))
        if sum(map(len, raws)) < n:
            raws.append(by_batch.poll_batch(100, 0.2))
        if len(records) >= n and sum(map(len, raws)) >= n:
            break

    def where(r: Record) -> tuple[str, int, int, bytes | None, bytes, int]:
        return r.topic, r.partition, r.offset, r.key, r.value, r.timestamp_us

    from_batches = [r for raw in raws for r in raw.records()]
    from_parts = [r for raw in raws for part in raw.split().values() for r in part.records()]
    assert sorted(map(where, from_parts)) == sorted(map(where, from_batches))
    assert sorted(map(where, from_batches)) == sorted(map(where, records))
    assert len(from_batches) == n
    for raw in raws:  # within a partition, offset order
        for tp_i in range(len(raw.tps)):
            offsets = raw.offset[raw.tp_index == tp_i]
            assert (np.diff(offsets) == 1).all()
    assert all(by_batch.position(tp) == by_poll.position(tp) for tp in start)
    assert {tp: o for raw in raws for tp, o in raw.next_offsets().items()} == {
        tp: by_poll.position(tp) for tp in start if by_poll.position(tp) > 0
    }
    validator = TickValidator(
        {t.factor_id for t in sent}, clock=lambda: NOW_US, registry=CollectorRegistry(), codec=_codec()
    )
    accepted = [t for raw in raws for t in validator.validate_batch(raw)[0].to_ticks()]
    assert sorted(accepted, key=lambda t: t.sequence) == sent
    by_poll.close()
    by_batch.close()


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_polls(n: int) -> None:
    from riskstream.bus import open_bus

    bus = open_bus("memory", partitions=2)
    if n:
        bus.producer().produce("t", _codec().encode(Tick("EQ.AAPL", 1.0, "a", 1, NOW_US)), key=b"k")
    consumer = bus.consumer("g")
    consumer.subscribe(["t"])
    raw = consumer.poll_batch(10, 0.0)
    assert len(raw) == n and len(raw.records()) == n
    batch, dead = TickValidator(
        FACTORS, clock=lambda: NOW_US, registry=CollectorRegistry(), codec=_codec()
    ).validate_batch(raw)
    assert len(batch) == n and dead == []
