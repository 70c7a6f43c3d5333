"""Avro codecs: round trips of every message type, the Confluent wire format byte by byte, agreement with
confluent-kafka's AvroSerializer/AvroDeserializer and fastavro, and schema evolution rules."""

from __future__ import annotations

import copy
import itertools
import math
import struct

import pytest
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from hypothesis import given, settings
from hypothesis import strategies as st

from riskstream.bus import SCHEMAS, AvroCodec, StoreEvent, codec_for, registry_client
from riskstream.bus._schemas import _decode_tick_v1
from riskstream.domain import (
    Alert,
    AlertState,
    DeadLetter,
    PositionEvent,
    PositionEventKind,
    RiskSnapshot,
    Tick,
)
from riskstream.errors import SchemaCompatibilityError

text = st.text(max_size=12)
longs = st.integers(-(2**63), 2**63 - 1)
finite = st.floats(allow_nan=False)
opt = st.none() | finite

MESSAGES = {
    Tick: st.builds(Tick, text, finite, text, longs, longs, opt, opt),
    PositionEvent: st.builds(
        PositionEvent,
        st.sampled_from(PositionEventKind),
        text,
        text,
        text,
        longs,
        longs,
        text,
        finite,
        text,
        text,
    ),
    RiskSnapshot: st.builds(
        RiskSnapshot, text, longs, st.dictionaries(text, finite), st.dictionaries(text, longs), text, longs
    ),
    Alert: st.builds(Alert, text, text, st.sampled_from(AlertState), finite, finite, finite, longs, text),
    DeadLetter: st.builds(
        DeadLetter, text, st.integers(0, 2**31 - 1), longs, text, text, st.binary(), st.none() | st.binary()
    ),
    StoreEvent: st.builds(
        StoreEvent,
        text,
        text,
        text,
        st.dictionaries(text, st.lists(text).map(tuple)),
        st.lists(text).map(tuple),
        longs,
        longs,
        longs,
    ),
}


@pytest.mark.parametrize("message_type", list(MESSAGES), ids=lambda t: t.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_every_message_type(message_type: type, data: st.DataObject) -> None:
    codec = codec_for(message_type)
    message = data.draw(MESSAGES[message_type])
    value = codec.encode(message)
    assert codec.decode(value) == message
    decoded, failures = codec.decode_many([value, value])
    assert decoded == [message, message] and failures == []


def test_wire_format_header_byte_by_byte() -> None:
    codec = codec_for(Tick)
    value = codec.encode(Tick("EQ.AAPL", 187.25, "feed", 7, 1_700_000_000_000_000))
    # Confluent wire format: magic byte 0, then the schema id as a 4-byte big-endian int, then the Avro body
    assert value[0] == 0
    assert value[1:5] == codec.schema_id.to_bytes(4, "big")
    body = value[5:]
    # Avro binary (spec "Binary Encoding"): string = zig-zag varint length + UTF-8 (len 7 → 0x0e)
    assert body[:8] == b"\x0eEQ.AAPL"
    assert struct.unpack("<d", body[8:16])[0] == 187.25  # double: 8 bytes little-endian
    assert body[16:21] == b"\x08feed"  # len 4 → 0x08
    assert body[21] == 14  # long 7 → zig-zag 14
    assert body[-2:] == b"\x00\x00"  # bid, ask: union branch 0 (null)
    assert codec.registry.get_latest_version("marketdata.ticks-value").schema_id == codec.schema_id


def _ctx(topic: str) -> SerializationContext:
    return SerializationContext(topic, MessageField.VALUE)


@settings(max_examples=50, deadline=None)
@given(tick=MESSAGES[Tick])
def test_confluent_serializer_and_hand_decoder_agree(tick: Tick) -> None:
    """Reference paths: confluent-kafka's AvroSerializer writes the same bytes, AvroDeserializer reads ours, and the
    hand-written tick decoder equals fastavro."""
    codec = codec_for(Tick)
    registry = registry_client("mock://")
    conf = {"auto.register.schemas": False, "use.latest.version": True}
    serializer = AvroSerializer(registry, None, lambda t, _ctx: codec._to(t), conf=conf)
    deserializer = AvroDeserializer(registry)
    ours = codec.encode(tick)
    assert serializer(tick, _ctx("marketdata.ticks")) == ours
    assert deserializer(ours, _ctx("marketdata.ticks")) == codec._to(tick)
    assert _decode_tick_v1(ours) == codec._fastavro_decode(ours) == tick


def test_decode_many_reports_bad_values_and_never_raises() -> None:
    codec = codec_for(Tick)
    good = codec.encode(Tick("EQ.A", 1.0, "s", 1, 2, 0.5, 1.5))
    unknown_id = b"\x00" + (2**31 - 1).to_bytes(4, "big") + good[5:]
    values = [good, b"", b"\x01" + good[1:], good[:-3], good + b"\x00", unknown_id, None, good]
    decoded, failures = codec.decode_many(values)  # type: ignore[arg-type]
    assert decoded == [codec.decode(good)] * 2
    assert failures == [
        (1, "schema", "value"),
        (2, "schema", "magic_byte"),
        (3, "schema", "payload"),
        (4, "schema", "payload"),
        (5, "schema", "schema_id"),
        (6, "schema", "value"),
    ]


_subjects = itertools.count()


def _tick_schema_with(change) -> dict:  # type: ignore[no-untyped-def]
    schema = copy.deepcopy(SCHEMAS[Tick][0])
    change(schema["fields"])
    return schema


def test_compatible_evolution_registers_version_2_and_old_bytes_still_decode() -> None:
    subject = f"evolution.{next(_subjects)}-value"
    registry = registry_client("mock://")
    v1 = AvroCodec(Tick, subject, registry)
    old = v1.encode(Tick("EQ.A", 2.0, "s", 1, 5, None, 2.5))
    v2_schema = _tick_schema_with(
        lambda f: f.append({"name": "venue", "type": ["null", "string"], "default": None})
    )
    v2_schema["doc"] = v2_schema["doc"].replace("version 1", "version 2")
    v2 = AvroCodec(
        Tick,
        subject,
        registry,
        schema=v2_schema,
        to_dict=lambda t: {**codec_for(Tick)._to(t), "venue": "XNAS"},
        from_dict=lambda d: (
            Tick(
                d["factor_id"], d["value"], d["source"], d["sequence"], d["event_time_us"], d["bid"], d["ask"]
            ),
            d["venue"],
        ),
    )
    latest = registry.get_latest_version(subject)
    assert latest.version == 2 and latest.schema_id == v2.schema_id != v1.schema_id
    # data written with version 1 reads under version 2: the new field takes its default
    assert v2.decode(old) == (Tick("EQ.A", 2.0, "s", 1, 5, None, 2.5), None)
    assert v2.decode(v2.encode(Tick("EQ.B", 3.0, "s", 2, 6))) == (Tick("EQ.B", 3.0, "s", 2, 6), "XNAS")
    # and the version-1 codec reads version-2 data too (the extra field is skipped)
    assert v1.decode(v2.encode(Tick("EQ.B", 3.0, "s", 2, 6))) == Tick("EQ.B", 3.0, "s", 2, 6)


@pytest.mark.parametrize(
    ("change", "field", "why"),
    [
        (lambda f: f.append({"name": "venue", "type": "string"}), "venue", "without a default"),
        (
            lambda f: f.__setitem__(3, {"name": "sequence", "type": "string"}),
            "sequence",
            "from long to string",
        ),
        (lambda f: f.__setitem__(1, {"name": "value", "type": "int"}), "value", "from double to int"),
        (
            lambda f: f.__setitem__(5, {"name": "bid", "type": "double", "default": 0.0}),
            "bid",
            "from null to double",
        ),
    ],
    ids=["added-without-default", "long-to-string", "double-to-int", "optional-made-mandatory"],
)
def test_incompatible_evolution_is_refused_naming_subject_and_field(change, field: str, why: str) -> None:  # type: ignore[no-untyped-def]
    subject = f"evolution.{next(_subjects)}-value"
    registry = registry_client("mock://")
    AvroCodec(Tick, subject, registry)
    with pytest.raises(SchemaCompatibilityError) as err:
        AvroCodec(Tick, subject, registry, schema=_tick_schema_with(change))
    message = str(err.value)
    assert subject in message and repr(field) in message and why in message
    assert registry.get_latest_version(subject).version == 1


def test_decoded_floats_keep_nan_and_infinity() -> None:
    codec = codec_for(Tick)
    tick = codec.decode(codec.encode(Tick("EQ.A", math.nan, "s", 1, 2, math.inf, -math.inf)))
    assert math.isnan(tick.value) and tick.bid == math.inf and tick.ask == -math.inf
