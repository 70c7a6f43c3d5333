"""Versioned Avro schemas of the pipeline messages and codecs in the Confluent Schema Registry wire format.

Wire format of every value (what third parties produce to the topics): byte 0 is the magic byte ``0``, bytes 1–4
the big-endian schema id in the registry, then the Avro binary body (no container header). Subjects follow the
TopicNameStrategy, ``<topic>-value``.

Each schema is a record in namespace ``riskstream`` whose ``doc`` ends with ``version N``; versions only ever
evolve compatibly: before a version is registered, :func:`check_compatible` checks that the new schema can read data
written with the latest registered one (BACKWARD, the Schema Registry's default), because the in-memory
``mock://`` registry has no compatibility endpoint.

Encoding and decoding use fastavro's ``schemaless_writer``/``schemaless_reader`` with the registry's schema id:
confluent-kafka's ``AvroSerializer``/``AvroDeserializer`` produce the same bytes (a test holds them to it) but
cost several times more per message on the tick path.
"""

from __future__ import annotations

import copy
import io
import json
import struct
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from riskstream.domain import (
    Alert,
    AlertState,
    DeadLetter,
    PositionEvent,
    PositionEventKind,
    RiskSnapshot,
    Tick,
)
from riskstream.errors import BusError, ConfigurationError, InvalidFieldError, SchemaCompatibilityError

__all__ = [
    "MAGIC_BYTE",
    "SCHEMAS",
    "AvroCodec",
    "StoreEvent",
    "check_compatible",
    "codec_for",
    "registry_client",
    "subject_for",
]

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")


@dataclass(frozen=True, slots=True)
class StoreEvent:
    """The risk store committed a table version: which job, business date and scope it holds, and what it measures.

    ``scope`` maps a hierarchy level (``desk``, ``book``) to the nodes the commit covers; ``committed_at_us`` is
    microseconds since the epoch, UTC; ``business_date`` is ISO ``YYYY-MM-DD``.
    """

    namespace: str
    business_date: str
    job_id: str
    scope: Mapping[str, Sequence[str]]
    measures: Sequence[str]
    table_version: int
    committed_at_us: int
    rows: int


def _record(name: str, version: int, doc: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "record",
        "name": name,
        "namespace": "riskstream",
        "doc": f"{doc} version {version}",
        "fields": fields,
    }


_OPT_DOUBLE = {"type": ["null", "double"], "default": None}

#: message type → its schema versions, oldest first (the last is what this package writes).
SCHEMAS: dict[type, list[dict[str, Any]]] = {
    Tick: [
        _record(
            "Tick",
            1,
            "A new level of one risk factor from one source; times in microseconds since the epoch, UTC.",
            [
                {"name": "factor_id", "type": "string"},
                {"name": "value", "type": "double"},
                {"name": "source", "type": "string"},
                {"name": "sequence", "type": "long"},
                {"name": "event_time_us", "type": "long"},
                {"name": "bid", **_OPT_DOUBLE},
                {"name": "ask", **_OPT_DOUBLE},
            ],
        )
    ],
    PositionEvent: [
        _record(
            "PositionEvent",
            1,
            "A new, amended or cancelled position; quantity in units of the instrument (negative = short).",
            [
                {
                    "name": "kind",
                    "type": {
                        "type": "enum",
                        "name": "PositionEventKind",
                        "symbols": ["new", "amend", "cancel"],
                    },
                },
                {"name": "position_id", "type": "string"},
                {"name": "book", "type": "string"},
                {"name": "source", "type": "string"},
                {"name": "sequence", "type": "long"},
                {"name": "event_time_us", "type": "long"},
                {"name": "instrument_id", "type": "string", "default": ""},
                {"name": "quantity", "type": "double", "default": 0.0},
                *(
                    {"name": name, "type": "string", "default": ""}
                    for name in ("desk", "trader", "counterparty", "sector", "region", "currency")
                ),
            ],
        )
    ],
    RiskSnapshot: [
        _record(
            "RiskSnapshot",
            1,
            "Risk of one hierarchy node; measures are positive losses in the reporting currency; input_offsets "
            "maps topic:partition to the next offset to read.",
            [
                {"name": "node", "type": "string"},
                {"name": "as_of_us", "type": "long"},
                {"name": "measures", "type": {"type": "map", "values": "double"}},
                {"name": "input_offsets", "type": {"type": "map", "values": "long"}, "default": {}},
                {"name": "method", "type": "string", "default": "hs"},
                {"name": "sequence", "type": "long", "default": 0},
            ],
        )
    ],
    Alert: [
        _record(
            "Alert",
            1,
            "A limit event on one node: utilisation = value / limit crossed a threshold.",
            [
                {"name": "node", "type": "string"},
                {"name": "measure", "type": "string"},
                {
                    "name": "state",
                    "type": {"type": "enum", "name": "AlertState", "symbols": ["warning", "breach", "clear"]},
                },
                {"name": "value", "type": "double"},
                {"name": "limit", "type": "double"},
                {"name": "utilisation", "type": "double"},
                {"name": "as_of_us", "type": "long"},
                {"name": "message", "type": "string", "default": ""},
            ],
        )
    ],
    DeadLetter: [
        _record(
            "DeadLetter",
            1,
            "A message that could not be used: its origin, the reason and field, and its original key and bytes.",
            [
                {"name": "topic", "type": "string"},
                {"name": "partition", "type": "int"},
                {"name": "offset", "type": "long"},
                {"name": "reason", "type": "string"},
                {"name": "field", "type": "string"},
                {"name": "payload", "type": "bytes"},
                {"name": "key", "type": ["null", "bytes"], "default": None},
            ],
        )
    ],
    StoreEvent: [
        _record(
            "StoreEvent",
            1,
            "The risk store committed a table version; committed_at_us in microseconds since the epoch, UTC.",
            [
                {"name": "namespace", "type": "string"},
                {"name": "business_date", "type": "string"},
                {"name": "job_id", "type": "string"},
                {"name": "scope", "type": {"type": "map", "values": {"type": "array", "items": "string"}}},
                {"name": "measures", "type": {"type": "array", "items": "string"}},
                {"name": "table_version", "type": "long"},
                {"name": "committed_at_us", "type": "long"},
                {"name": "rows", "type": "long"},
            ],
        )
    ],
}

_TOPIC_ATTR = {
    Tick: "ticks",
    PositionEvent: "positions",
    RiskSnapshot: "snapshots",
    Alert: "alerts",
    DeadLetter: "deadletter",
    StoreEvent: "store_events",
}


def subject_for(topic: str) -> str:
    """TopicNameStrategy subject of a topic's values."""
    return f"{topic}-value"


# -- conversions between the dataclasses and Avro datums ---------------------------------------------------------


def _tick_to(t: Tick) -> dict[str, Any]:
    return {
        "factor_id": t.factor_id,
        "value": t.value,
        "source": t.source,
        "sequence": t.sequence,
        "event_time_us": t.event_time_us,
        "bid": t.bid,
        "ask": t.ask,
    }


def _tick_from(d: dict[str, Any]) -> Tick:
    return Tick(
        d["factor_id"], d["value"], d["source"], d["sequence"], d["event_time_us"], d["bid"], d["ask"]
    )


def _position_to(e: PositionEvent) -> dict[str, Any]:
    return {
        "kind": e.kind.value,
        "position_id": e.position_id,
        "book": e.book,
        "source": e.source,
        "sequence": e.sequence,
        "event_time_us": e.event_time_us,
        "instrument_id": e.instrument_id,
        "quantity": e.quantity,
        "desk": e.desk,
        "trader": e.trader,
        "counterparty": e.counterparty,
        "sector": e.sector,
        "region": e.region,
        "currency": e.currency,
    }


def _position_from(d: dict[str, Any]) -> PositionEvent:
    return PositionEvent(
        kind=PositionEventKind(d["kind"]),
        position_id=d["position_id"],
        book=d["book"],
        source=d["source"],
        sequence=d["sequence"],
        event_time_us=d["event_time_us"],
        instrument_id=d["instrument_id"],
        quantity=d["quantity"],
        desk=d["desk"],
        trader=d["trader"],
        counterparty=d["counterparty"],
        sector=d["sector"],
        region=d["region"],
        currency=d["currency"],
    )


def _snapshot_to(s: RiskSnapshot) -> dict[str, Any]:
    return {
        "node": s.node,
        "as_of_us": s.as_of_us,
        "measures": dict(s.measures),
        "input_offsets": dict(s.input_offsets),
        "method": s.method,
        "sequence": s.sequence,
    }


def _snapshot_from(d: dict[str, Any]) -> RiskSnapshot:
    return RiskSnapshot(
        d["node"], d["as_of_us"], d["measures"], d["input_offsets"], d["method"], d["sequence"]
    )


def _alert_to(a: Alert) -> dict[str, Any]:
    return {
        "node": a.node,
        "measure": a.measure,
        "state": a.state.value,
        "value": a.value,
        "limit": a.limit,
        "utilisation": a.utilisation,
        "as_of_us": a.as_of_us,
        "message": a.message,
    }


def _alert_from(d: dict[str, Any]) -> Alert:
    return Alert(
        d["node"],
        d["measure"],
        AlertState(d["state"]),
        d["value"],
        d["limit"],
        d["utilisation"],
        d["as_of_us"],
        d["message"],
    )


def _dead_to(x: DeadLetter) -> dict[str, Any]:
    return {
        "topic": x.topic,
        "partition": x.partition,
        "offset": x.offset,
        "reason": x.reason,
        "field": x.field,
        "payload": bytes(x.payload),
        "key": None if x.key is None else bytes(x.key),
    }


def _dead_from(d: dict[str, Any]) -> DeadLetter:
    return DeadLetter(
        d["topic"], d["partition"], d["offset"], d["reason"], d["field"], d["payload"], d["key"]
    )


def _store_to(e: StoreEvent) -> dict[str, Any]:
    return {
        "namespace": e.namespace,
        "business_date": e.business_date,
        "job_id": e.job_id,
        "scope": {k: list(v) for k, v in e.scope.items()},
        "measures": list(e.measures),
        "table_version": e.table_version,
        "committed_at_us": e.committed_at_us,
        "rows": e.rows,
    }


def _store_from(d: dict[str, Any]) -> StoreEvent:
    return StoreEvent(
        d["namespace"],
        d["business_date"],
        d["job_id"],
        {k: tuple(v) for k, v in d["scope"].items()},
        tuple(d["measures"]),
        d["table_version"],
        d["committed_at_us"],
        d["rows"],
    )


_CONVERTERS: dict[type, tuple[Callable[[Any], dict[str, Any]], Callable[[dict[str, Any]], Any]]] = {
    Tick: (_tick_to, _tick_from),
    PositionEvent: (_position_to, _position_from),
    RiskSnapshot: (_snapshot_to, _snapshot_from),
    Alert: (_alert_to, _alert_from),
    DeadLetter: (_dead_to, _dead_from),
    StoreEvent: (_store_to, _store_from),
}


# -- registry and compatibility ----------------------------------------------------------------------------------

_REGISTRIES: dict[str, SchemaRegistryClient] = {}
_REGISTRIES_LOCK = threading.Lock()


def registry_client(url: str = "mock://") -> SchemaRegistryClient:
    """The Schema Registry client for ``url``, one per URL in the process (so every ``mock://`` user shares one
    in-memory registry and schema ids mean the same thing to all of them)."""
    with _REGISTRIES_LOCK:
        client = _REGISTRIES.get(url)
        if client is None:
            client = _REGISTRIES[url] = SchemaRegistryClient.new_client({"url": url})
        return client


_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}


def _kind(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    kind = schema["type"]
    return kind if isinstance(kind, str) else _kind(kind)


def _incompatibility(writer: Any, reader: Any, path: str, named: dict[str, Any]) -> str | None:
    """Why data written with ``writer`` cannot be read with ``reader`` (Avro schema resolution rules), naming the
    field path; None when it can."""
    if isinstance(writer, str) and writer in named:
        writer = named[writer]
    if isinstance(reader, str) and reader in named:
        reader = named[reader]
    if isinstance(writer, dict) and isinstance(writer.get("type"), (dict, list)):
        writer = writer["type"]
    if isinstance(reader, dict) and isinstance(reader.get("type"), (dict, list)):
        reader = reader["type"]
    wk, rk = _kind(writer), _kind(reader)
    if wk == "union":
        for branch in writer:
            why = _incompatibility(branch, reader, path, named)
            if why:
                return why
        return None
    if rk == "union":
        if any(_incompatibility(writer, branch, path, named) is None for branch in reader):
            return None
        return f"field {path!r}: {wk} is in none of the reader's union branches {[_kind(b) for b in reader]}"
    if wk in _PROMOTIONS or wk in ("null", "boolean", "double"):
        if wk == rk or rk in _PROMOTIONS.get(wk, set()):
            return None
        return f"field {path!r} changed type from {wk} to {rk}"
    if wk != rk:
        return f"field {path!r} changed type from {wk} to {rk}"
    if wk == "record":
        named[f"{writer.get('namespace', '')}.{writer['name']}"] = writer
        named[writer["name"]] = writer
        wfields = {f["name"]: f for f in writer["fields"]}
        for f in reader["fields"]:
            sub = f"{path}.{f['name']}" if path else f["name"]
            if f["name"] in wfields:
                why = _incompatibility(wfields[f["name"]]["type"], f["type"], sub, named)
                if why:
                    return why
            elif "default" not in f:
                return f"field {sub!r} was added without a default, so data written before cannot be read"
        return None
    if wk == "enum":
        missing = set(writer["symbols"]) - set(reader["symbols"])
        if missing and "default" not in reader:
            return f"field {path!r} enum lost symbols {sorted(missing)}"
        return None
    if wk == "array":
        return _incompatibility(writer["items"], reader["items"], f"{path}[]", named)
    if wk == "map":
        return _incompatibility(writer["values"], reader["values"], f"{path}{{}}", named)
    if wk == "fixed" and writer["size"] != reader["size"]:
        return f"field {path!r} fixed size changed from {writer['size']} to {reader['size']}"
    return None


def _sample(schema: Any, named: dict[str, Any]) -> Any:
    """A datum of ``schema`` (used to confirm a verdict with fastavro's own resolution)."""
    if isinstance(schema, str) and schema in named:
        return _sample(named[schema], named)
    if isinstance(schema, list):
        return _sample(schema[-1], named)
    if isinstance(schema, dict) and isinstance(schema.get("type"), (dict, list)):
        return _sample(schema["type"], named)
    kind = schema if isinstance(schema, str) else schema["type"]
    simple = {"null": None, "boolean": True, "int": 1, "long": 1, "float": 1.0, "double": 1.0}
    if kind in simple:
        return simple[kind]
    if kind == "string":
        return "x"
    if kind == "bytes":
        return b"x"
    if kind == "record":
        named[schema["name"]] = schema
        named[f"{schema.get('namespace', '')}.{schema['name']}"] = schema
        return {f["name"]: _sample(f["type"], named) for f in schema["fields"]}
    if kind == "enum":
        return schema["symbols"][0]
    if kind == "array":
        return [_sample(schema["items"], named)]
    if kind == "map":
        return {"k": _sample(schema["values"], named)}
    if kind == "fixed":
        return b"\0" * schema["size"]
    raise ConfigurationError("schema", kind, "unknown Avro type")


def check_compatible(subject: str, writer: Mapping[str, Any], reader: Mapping[str, Any]) -> None:
    """Raise SchemaCompatibilityError unless ``reader`` (the new version) can read data written with ``writer``
    (the latest registered version): BACKWARD compatibility.

    The rules of Avro schema resolution are walked field by field to name the offending field; a sample datum of
    the writer schema is then read with fastavro under the new schema, as a second opinion.
    """
    why = _incompatibility(copy.deepcopy(dict(writer)), copy.deepcopy(dict(reader)), "", {})
    if why is None:
        parsed_writer = fastavro.parse_schema(copy.deepcopy(dict(writer)))
        parsed_reader = fastavro.parse_schema(copy.deepcopy(dict(reader)))
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed_writer, _sample(copy.deepcopy(dict(writer)), {}))
        buf.seek(0)
        try:
            fastavro.schemaless_reader(buf, parsed_writer, parsed_reader)
        except Exception as exc:  # fastavro signals resolution failures with several exception types
            why = f"fastavro schema resolution failed: {exc}"
    if why is not None:
        raise SchemaCompatibilityError(subject, why)


def _register(client: SchemaRegistryClient, subject: str, schema: Mapping[str, Any]) -> int:
    """Register ``schema`` under ``subject`` after checking it against the latest registered version."""
    text = json.dumps(schema, sort_keys=True)
    try:
        latest = client.get_latest_version(subject)
    except SchemaRegistryError as exc:
        if exc.http_status_code != 404:
            raise BusError(f"schema registry failed for subject {subject!r}: {exc}") from exc
        latest = None
    if latest is not None:
        old = json.loads(latest.schema.schema_str or "null")
        if old != json.loads(text):
            check_compatible(subject, old, schema)
    try:
        return int(client.register_schema(subject, Schema(text, "AVRO")))
    except SchemaRegistryError as exc:
        if exc.http_status_code == 409:
            raise SchemaCompatibilityError(subject, str(exc)) from exc
        raise BusError(f"schema registry failed for subject {subject!r}: {exc}") from exc


T = TypeVar("T")

#: (index in the batch, reason, field) of a value that could not be decoded
DecodeFailure = tuple[int, str, str]


class AvroCodec(Generic[T]):
    """Encode and decode one message type in the Confluent wire format under one subject.

    ``schema`` defaults to the latest version this package ships for ``message_type``; it is registered (after the
    compatibility check) on construction, and its id goes into every encoded value. Values written with any other
    registered schema id are read with Avro schema resolution into the codec's schema.
    """

    def __init__(
        self,
        message_type: type[T],
        subject: str,
        registry: SchemaRegistryClient,
        *,
        schema: Mapping[str, Any] | None = None,
        to_dict: Callable[[T], dict[str, Any]] | None = None,
        from_dict: Callable[[dict[str, Any]], T] | None = None,
    ) -> None:
        if message_type not in _CONVERTERS and (to_dict is None or from_dict is None):
            raise ConfigurationError("message_type", message_type, "no Avro schema and converters for it")
        self.message_type = message_type
        self.subject = subject
        self.registry = registry
        self.schema: dict[str, Any] = copy.deepcopy(dict(schema or SCHEMAS[message_type][-1]))
        default_to, default_from = _CONVERTERS.get(message_type, (None, None))
        self._to = to_dict or default_to
        self._from = from_dict or default_from
        assert self._to is not None and self._from is not None
        self.schema_id = _register(registry, subject, self.schema)
        self._parsed = fastavro.parse_schema(copy.deepcopy(self.schema))
        self._header = _HEADER.pack(MAGIC_BYTE, self.schema_id)
        # writer schema id → reader schema argument for fastavro (None: same schema, no resolution needed)
        self._readers: dict[int, Any] = {self.schema_id: None}
        self._writers: dict[int, Any] = {self.schema_id: self._parsed}
        self._fast: Callable[[bytes], T] = self._fastavro_decode
        if message_type is Tick and self.schema == SCHEMAS[Tick][0] and to_dict is None and from_dict is None:
            self._fast = _decode_tick_v1  # type: ignore[assignment]

    def encode(self, message: T) -> bytes:
        """Wire-format bytes of ``message``."""
        buf = io.BytesIO()
        buf.write(self._header)
        fastavro.schemaless_writer(buf, self._parsed, self._to(message))  # type: ignore[misc]
        return buf.getvalue()

    def encode_many(self, messages: Iterable[T]) -> list[bytes]:
        return [self.encode(m) for m in messages]

    def _writer(self, schema_id: int) -> tuple[Any, Any]:
        writer = self._writers.get(schema_id)
        if writer is None:
            try:
                text = self.registry.get_schema(schema_id).schema_str
            except SchemaRegistryError as exc:
                raise InvalidFieldError("schema_id", schema_id, f"not in the registry: {exc}") from None
            writer = self._writers[schema_id] = fastavro.parse_schema(json.loads(text or "null"))
            self._readers[schema_id] = self._parsed
        return writer, self._readers[schema_id]

    def decode_dict(self, value: bytes) -> dict[str, Any]:
        """The Avro datum of one wire-format value; InvalidFieldError names what is wrong."""
        if value is None or len(value) < 5:
            raise InvalidFieldError("value", value, "shorter than the 5-byte wire-format header")
        if value[0] != MAGIC_BYTE:
            raise InvalidFieldError("magic_byte", value[0], f"expected {MAGIC_BYTE}")
        schema_id = int.from_bytes(value[1:5], "big")
        writer, reader = self._writer(schema_id)
        buf = io.BytesIO(value)
        buf.seek(5)
        try:
            datum = fastavro.schemaless_reader(buf, writer, reader)
        except Exception as exc:  # truncated bytes, bad UTF-8, a union index out of range, ...
            raise InvalidFieldError(
                "payload", value[5:37], f"not Avro of schema id {schema_id}: {exc!r}"
            ) from None
        if buf.tell() != len(value):
            raise InvalidFieldError("payload", len(value) - buf.tell(), "trailing bytes after the Avro body")
        return datum  # type: ignore[return-value]

    def decode(self, value: bytes) -> T:
        """The message of one wire-format value; InvalidFieldError names what is wrong."""
        datum = self.decode_dict(value)
        try:
            return self._from(datum)  # type: ignore[misc]
        except (KeyError, ValueError) as exc:
            raise InvalidFieldError(
                "payload", datum, f"does not make a {self.message_type.__name__}: {exc}"
            ) from None

    def decode_many(self, values: Sequence[bytes]) -> tuple[list[T], list[DecodeFailure]]:
        """Decode a batch; never raises. Returns the messages of the good values (in order) and, for each bad
        one, ``(index, "schema", field)`` with field one of ``value``, ``magic_byte``, ``schema_id``, ``payload``."""
        out: list[T] = []
        failures: list[DecodeFailure] = []
        own = self._header
        fast = self._fast
        append = out.append
        for i, value in enumerate(values):
            # fast path: our own schema id; anything unexpected goes to the slow path, which names the field
            if value is not None and value[:5] == own:
                try:
                    append(fast(value))
                    continue
                except Exception:
                    pass
            try:
                append(self.decode(value))
            except InvalidFieldError as exc:
                failures.append((i, "schema", exc.field or "payload"))
            except Exception:  # decode_many never raises: one bad value must not stop the batch
                failures.append((i, "schema", "payload"))
        return out, failures

    def _fastavro_decode(self, value: bytes) -> T:
        """Decode a value written with the codec's own schema (reference path for every type)."""
        buf = io.BytesIO(value)
        buf.seek(5)
        datum = fastavro.schemaless_reader(buf, self._parsed, None)
        if buf.tell() != len(value):
            raise ValueError("trailing bytes")
        return self._from(datum)  # type: ignore[misc,arg-type]


_unpack_double = struct.Struct("<d").unpack_from


def _decode_tick_v1(v: bytes) -> Tick:
    """Decode the Avro body of a Tick version 1 value (after the 5-byte header) by hand.

    Same result as fastavro's ``schemaless_reader`` (a test holds them to it), ~40 % faster on this path: strings
    and longs are zig-zag varints, doubles 8 bytes little-endian, the optional quotes a union index (0 null,
    1 double, zig-zag encoded as 0 and 2). Raises on anything unexpected; the caller then takes the fastavro path.
    """
    pos = 5
    fields: list[Any] = []
    for kind in (
        0,
        1,
        0,
        2,
        2,
    ):  # 0 string, 1 double, 2 long: factor_id, value, source, sequence, event_time_us
        if kind == 1:
            fields.append(_unpack_double(v, pos)[0])
            pos += 8
            continue
        b = v[pos]
        pos += 1
        n = b & 0x7F
        shift = 7
        while b & 0x80:
            b = v[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
        if shift > 70 or n >> 64:  # beyond 10 bytes or 64 bits: fastavro wraps such values, so defer to it
            raise ValueError("varint longer than 64 bits")
        n = (n >> 1) ^ -(n & 1)
        if kind == 0:
            if n < 0 or pos + n > len(v):
                raise ValueError("string length out of range")
            fields.append(v[pos : pos + n].decode())
            pos += n
        else:
            fields.append(n)
    quotes: list[float | None] = []
    for _ in range(2):
        branch = v[pos]
        pos += 1
        if branch == 2:
            quotes.append(_unpack_double(v, pos)[0])
            pos += 8
        elif branch == 0:
            quotes.append(None)
        else:
            raise ValueError("union branch out of range")
    if pos != len(v):
        raise ValueError("trailing bytes")
    return Tick(fields[0], fields[1], fields[2], fields[3], fields[4], quotes[0], quotes[1])


def codec_for(
    message_type: type[T], topic: str | None = None, registry_url: str = "mock://", *, topics: Any = None
) -> AvroCodec[T]:
    """The codec of ``message_type`` on ``topic`` (default: the pipeline topic it travels on, from ``topics`` or
    the default :class:`Topics`), with schemas in the registry at ``registry_url``."""
    if topic is None:
        if message_type not in _TOPIC_ATTR:
            raise ConfigurationError("message_type", message_type, "no default topic; pass topic=")
        if topics is None:
            from ._base import Topics

            topics = Topics()
        topic = getattr(topics, _TOPIC_ATTR[message_type])
    key = (message_type, topic, registry_url)
    with _CODECS_LOCK:
        codec = _CODECS.get(key)
        if codec is None:
            codec = _CODECS[key] = AvroCodec(message_type, subject_for(topic), registry_client(registry_url))
        return codec


_CODECS: dict[tuple[type, str, str], AvroCodec[Any]] = {}
_CODECS_LOCK = threading.Lock()
