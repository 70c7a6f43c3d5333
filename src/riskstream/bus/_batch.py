"""Columnar batches: the records of one poll as parallel arrays (:class:`RawBatch`), ticks as columns
(:class:`TickBatch`), and a vectorised decoder of Tick version 1 values into columns (:func:`decode_tick_columns`).

The per-message path builds a ``Record`` and a ``Tick`` per message and spends its time creating Python objects.
Here a poll's values stay a list of ``bytes``, are concatenated into one buffer, and every field of the Avro body
is parsed for all rows at once with numpy: a row is one message, a field is one array operation over the batch.
Low-cardinality strings (factor ids, sources) become an index into a per-batch universe, decoded once per distinct
value. Anything the vectorised parser does not expect — another schema id, a truncated body, a string longer than
64 bytes, invalid UTF-8, an over-long varint, a union index other than 0 or 1 — goes row by row through the codec's
generic fastavro decoder, which is the reference: it decodes the row or names why it cannot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskstream.domain import Tick
from riskstream.errors import ConfigurationError, InvalidFieldError

from ._base import Record, TopicPartition
from ._schemas import AvroCodec, DecodeFailure, _decode_tick_v1, _tick_from, codec_for

__all__ = ["RawBatch", "TickBatch", "decode_tick_columns"]

_I64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True, eq=False, slots=True)
class RawBatch:
    """The records of one poll as parallel columns, in the order ``poll`` would return them.

    ``tps`` are the distinct topic-partitions of the batch and ``tp_index[i]`` (int32) the one row ``i`` came from;
    ``offset`` (int64) its offset; ``keys``/``values`` the key and value bytes; ``timestamp_us`` (int64) the
    append time in microseconds since the epoch.
    """

    tps: tuple[TopicPartition, ...]
    tp_index: np.ndarray
    offset: np.ndarray
    keys: list[bytes | None]
    values: list[bytes]
    #: the timestamps, or a function computing them when first asked (Kafka: reading them costs ~70 ns a message)
    timestamps: np.ndarray | Callable[[], np.ndarray]

    @property
    def timestamp_us(self) -> np.ndarray:
        """Append time of each row (int64, microseconds since the epoch)."""
        stamps = self.timestamps
        return stamps() if callable(stamps) else stamps

    def __post_init__(self) -> None:
        n = len(self.values)
        for name in ("tp_index", "offset", "keys"):
            if len(getattr(self, name)) != n:
                raise InvalidFieldError(
                    name, len(getattr(self, name)), f"expected {n} entries, one per value"
                )

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def empty(cls) -> RawBatch:
        """A batch of no records."""
        return cls((), np.empty(0, np.int32), np.empty(0, np.int64), [], [], np.empty(0, np.int64))

    @property
    def partition(self) -> np.ndarray:
        """Partition of each row (int32)."""
        parts = np.fromiter((tp.partition for tp in self.tps), np.int32, len(self.tps))
        return parts[self.tp_index]

    def topic(self, i: int) -> str:
        """Topic of row ``i``."""
        return self.tps[int(self.tp_index[i])].topic

    def next_offsets(self) -> dict[TopicPartition, int]:
        """Topic-partition → the offset after the last row of it in this batch (what to commit or checkpoint)."""
        if not self.values:
            return {}
        last = np.full(len(self.tps), -1, np.int64)
        np.maximum.at(last, self.tp_index, self.offset)
        return {tp: int(o) + 1 for tp, o in zip(self.tps, last.tolist(), strict=True) if o >= 0}

    def split(self) -> dict[TopicPartition, RawBatch]:
        """One batch per topic-partition (rows in their order), for state kept per partition."""
        if len(self.tps) <= 1:
            return {self.tps[0]: self} if self.tps else {}
        out: dict[TopicPartition, RawBatch] = {}
        stamps = self.timestamp_us
        for k, tp in enumerate(self.tps):
            rows = np.flatnonzero(self.tp_index == k)
            picked = rows.tolist()
            out[tp] = RawBatch(
                (tp,),
                np.zeros(len(rows), np.int32),
                self.offset[rows],
                [self.keys[i] for i in picked],
                [self.values[i] for i in picked],
                stamps[rows],
            )
        return out

    def records(self) -> list[Record]:
        """The rows as ``Record`` objects (what ``poll`` returns)."""
        tps = self.tps
        return [
            Record(tps[t].topic, tps[t].partition, o, k, v, ts)
            for t, o, k, v, ts in zip(
                self.tp_index.tolist(),
                self.offset.tolist(),
                self.keys,
                self.values,
                self.timestamp_us.tolist(),
                strict=True,
            )
        ]


@dataclass(frozen=True, eq=False, slots=True)
class TickBatch:
    """Ticks as columns, one row per tick.

    ``factors``/``sources`` are the distinct ids of the batch and ``factor_index``/``source_index`` (int32) index
    them per row (``factor_id``/``source`` give the object arrays). ``value`` (float64) in the units of
    ``MarketSnapshot``; ``bid``/``ask`` (float64) NaN where absent, with ``has_bid``/``has_ask`` (bool) telling an
    absent quote from a present NaN (which only a not-yet-validated batch can hold). ``sequence`` and
    ``event_time_us`` (int64, microseconds since the epoch, UTC); ``partition`` (int32) and ``offset`` (int64) of
    the message each row came from (-1 when not known).
    """

    factors: tuple[str, ...]
    factor_index: np.ndarray
    value: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    has_bid: np.ndarray
    has_ask: np.ndarray
    sources: tuple[str, ...]
    source_index: np.ndarray
    sequence: np.ndarray
    event_time_us: np.ndarray
    partition: np.ndarray
    offset: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.value)
        for name in (
            "factor_index",
            "bid",
            "ask",
            "has_bid",
            "has_ask",
            "source_index",
            "sequence",
            "event_time_us",
            "partition",
            "offset",
        ):
            if len(getattr(self, name)) != n:
                raise InvalidFieldError(name, len(getattr(self, name)), f"expected {n} entries, one per tick")

    def __len__(self) -> int:
        return len(self.value)

    @property
    def factor_id(self) -> np.ndarray:
        """Factor id of each row (object array of str)."""
        return _objects(self.factors)[self.factor_index]

    @property
    def source(self) -> np.ndarray:
        """Source of each row (object array of str)."""
        return _objects(self.sources)[self.source_index]

    def select(self, rows: np.ndarray) -> TickBatch:
        """The rows picked by a boolean mask or an index array, in that order (same universes)."""
        return TickBatch(
            self.factors,
            self.factor_index[rows],
            self.value[rows],
            self.bid[rows],
            self.ask[rows],
            self.has_bid[rows],
            self.has_ask[rows],
            self.sources,
            self.source_index[rows],
            self.sequence[rows],
            self.event_time_us[rows],
            self.partition[rows],
            self.offset[rows],
        )

    def to_ticks(self) -> list[Tick]:
        """The rows as ``Tick`` objects (``bid``/``ask`` None where absent)."""
        factors, sources = self.factors, self.sources
        bids = [b if h else None for b, h in zip(self.bid.tolist(), self.has_bid.tolist(), strict=True)]
        asks = [a if h else None for a, h in zip(self.ask.tolist(), self.has_ask.tolist(), strict=True)]
        return [
            Tick(factors[f], v, sources[s], q, t, b, a)
            for f, v, s, q, t, b, a in zip(
                self.factor_index.tolist(),
                self.value.tolist(),
                self.source_index.tolist(),
                self.sequence.tolist(),
                self.event_time_us.tolist(),
                bids,
                asks,
                strict=True,
            )
        ]

    @classmethod
    def from_ticks(
        cls,
        ticks: Sequence[Tick],
        partition: np.ndarray | None = None,
        offset: np.ndarray | None = None,
    ) -> TickBatch:
        """Columns of ``ticks`` (reference constructor; partitions and offsets -1 unless given)."""
        n = len(ticks)
        factor_codes: dict[str, int] = {}
        source_codes: dict[str, int] = {}
        fidx = np.fromiter(
            (factor_codes.setdefault(t.factor_id, len(factor_codes)) for t in ticks), np.int32, n
        )
        sidx = np.fromiter((source_codes.setdefault(t.source, len(source_codes)) for t in ticks), np.int32, n)
        bid = np.array([np.nan if t.bid is None else t.bid for t in ticks], np.float64).reshape(n)
        ask = np.array([np.nan if t.ask is None else t.ask for t in ticks], np.float64).reshape(n)
        return cls(
            tuple(factor_codes),
            fidx,
            np.array([t.value for t in ticks], np.float64).reshape(n),
            bid,
            ask,
            np.array([t.bid is not None for t in ticks], bool).reshape(n),
            np.array([t.ask is not None for t in ticks], bool).reshape(n),
            tuple(source_codes),
            sidx,
            np.array([t.sequence for t in ticks], np.int64).reshape(n),
            np.array([t.event_time_us for t in ticks], np.int64).reshape(n),
            np.full(n, -1, np.int32) if partition is None else np.asarray(partition, np.int32),
            np.full(n, -1, np.int64) if offset is None else np.asarray(offset, np.int64),
        )


def _objects(strings: tuple[str, ...]) -> np.ndarray:
    out = np.empty(len(strings), dtype=object)
    out[:] = strings
    return out


# -- vectorised Avro parsing of Tick version 1 -------------------------------------------------------------------

_MAX_STRING = 64  # longer strings are legal but rare: such rows take the row-by-row path
_PAD = 80  # zero bytes after the buffer so fixed-width reads past a (bad) row's end stay inside it
_SHIFTS = (7 * np.arange(10, dtype=np.uint64)).astype(np.uint64)
_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)
_HIGH_BITS = np.uint64(0x8080808080808080)
_ONE = np.uint64(1)
# keep the bytes of a string below its length: _BYTE_MASKS[k] keeps the low k bytes of a little-endian word
_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
# pack the 7-bit groups of up to 8 varint bytes into 56 bits: pairs, then quads, then the whole word
_PACK = [
    (np.uint64(0x007F007F007F007F), np.uint64(0x7F007F007F007F00), np.uint64(1)),
    (np.uint64(0x00003FFF00003FFF), np.uint64(0x3FFF00003FFF0000), np.uint64(2)),
    (np.uint64(0x000000000FFFFFFF), np.uint64(0x0FFFFFFF00000000), np.uint64(4)),
]


def _zigzag(n: np.ndarray) -> np.ndarray:
    return (n >> _ONE).view(np.int64) ^ -(n & _ONE).view(np.int64)


class _Parser:
    """Field-by-field parser over the rows ``pos`` (start of each row's next field) of one buffer; a row whose
    bytes are not what the fast path expects is cleared in ``ok`` and left to the reference decoder.

    ``words``/``doubles`` view the buffer as unaligned little-endian 8-byte words starting at every byte, so
    reading a field of all rows is one gather."""

    def __init__(self, padded: bytes, limit: int, pos: np.ndarray, end: np.ndarray) -> None:
        count = len(padded) - 8
        self.bytes = np.frombuffer(padded, np.uint8)
        self.words = np.ndarray((count,), "<u8", buffer=padded, strides=(1,))
        self.doubles = np.ndarray((count,), "<f8", buffer=padded, strides=(1,))
        self.limit = limit  # reads start at most here: _PAD bytes of padding follow
        self.pos = pos
        self.end = end
        self.ok = np.ones(len(pos), bool)

    def _at(self) -> np.ndarray:
        return np.minimum(self.pos, self.limit)

    def varint(self) -> np.ndarray:
        """Zig-zag varint longs (int64); at most 10 bytes and within 64 bits, else the row is cleared."""
        at = self._at()
        x = self.words[at]
        if not (x & np.uint64(0x80)).any():  # every value in one byte (string lengths, small numbers)
            self.pos = self.pos + 1
            self.ok &= self.pos <= self.end
            return _zigzag(x & np.uint64(0x7F))
        term = ~x & _HIGH_BITS  # high bit clear: the last byte of a varint
        lowest = term & (~term + _ONE)  # 0x80 << 8k for a varint of k + 1 bytes; 0 if longer than 8
        nbytes = ((np.log2(np.maximum(lowest, _ONE).astype(np.float64)).astype(np.int64) - 7) >> 3) + 1
        v = x & ((lowest << _ONE) - _ONE)  # k = 7: the shift wraps to 0 and 0 - 1 keeps every byte
        for low, high, shift in _PACK:
            v = (v & low) | ((v & high) >> shift)
        longer = lowest == 0
        if longer.any():
            nbytes[longer], v[longer] = self._long_varints(at[longer])
        self.pos = self.pos + nbytes
        self.ok &= self.pos <= self.end
        return _zigzag(v)

    def _long_varints(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(length, value) of varints of 9 or more bytes, byte by byte; more than 10 bytes, or a 10th byte above 1
        (beyond 64 bits: fastavro wraps it), clear the row for the reference decoder."""
        raw = self.bytes[at[:, None] + np.arange(10)]
        term = raw < 0x80
        nbytes = term.argmax(axis=1) + 1
        fine = term.any(axis=1) & ((nbytes < 10) | (raw[:, 9] <= 1))
        low = (raw & 0x7F).astype(np.uint64)
        low[np.arange(10)[None, :] >= nbytes[:, None]] = 0
        value = np.bitwise_or.reduce(low << _SHIFTS, axis=1)
        nbytes[~fine] = 1 << 40  # past any row's end
        return nbytes, value

    def string(self) -> tuple[np.ndarray, np.ndarray]:
        """(start, length) of each row's string; strings longer than ``_MAX_STRING`` clear the row."""
        length = self.varint()
        self.ok &= (length >= 0) & (length <= _MAX_STRING)
        length = np.where(self.ok, length, 0)
        start = self.pos
        self.pos = self.pos + length
        self.ok &= self.pos <= self.end
        return start, length

    def double(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Little-endian doubles at each row's position (only ``rows`` when given; the others read as NaN)."""
        out = self.doubles[self._at()]
        if rows is None:
            self.pos = self.pos + 8
        else:
            out[~rows] = np.nan
            self.pos = self.pos + 8 * rows
        self.ok &= self.pos <= self.end
        return out

    def optional_double(self) -> tuple[np.ndarray, np.ndarray]:
        """(value, present) of a ``["null", "double"]`` union: branch byte 0 (null) or 2 (index 1, zig-zag)."""
        branch = self.bytes[self._at()]
        self.ok &= (branch == 0) | (branch == 2)
        self.pos = self.pos + 1
        present = branch == 2
        return self.double(present), present

    def factorize(self, start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, list[bytes]]:
        """Code of each row's string among the distinct strings of the batch (in order of first appearance) and
        their bytes; rows not ``ok`` share one code of whatever they hold."""
        n = len(start)
        if n == 0:
            return np.zeros(0, np.int64), []
        n_words = -(-int(length.max()) // 8)
        at = np.minimum(start, self.limit)
        words = [self.words[at + 8 * j] & _BYTE_MASKS[np.clip(length - 8 * j, 0, 8)] for j in range(n_words)]
        if n_words == 1:
            h = words[0].copy()  # short ids: the word itself (the check below tells "a" from "a\0")
        else:
            h = length.astype(np.uint64) * _HASH_MUL
            for w in words:
                h = (h ^ w) * _HASH_MUL
                h ^= h >> np.uint64(29)
        h[~self.ok] = 0
        codes, uniques = pd.factorize(h)
        first = np.full(len(uniques), n, np.int64)
        np.minimum.at(first, codes, np.arange(n))
        rep = first[codes]
        # a hash collision would merge two strings: confirm every row equals its group's first row
        same = length == length[rep]
        for w in words:
            same &= w == w[rep]
        data = self.bytes
        if not same[self.ok].all():
            keys = [data[s : s + k].tobytes() for s, k in zip(at.tolist(), length.tolist(), strict=True)]
            codes, uniq = pd.factorize(pd.Series(keys, dtype=object))
            return codes.astype(np.int64), list(uniq)
        return codes.astype(np.int64), [data[at[i] : at[i] + length[i]].tobytes() for i in first.tolist()]


def _decode_strings(p: _Parser, start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(code per row, distinct decoded strings); rows whose bytes are not UTF-8 are cleared in ``p.ok``."""
    codes, raw = p.factorize(start, length)
    strings: list[str] = []
    bad: list[int] = []
    for k, b in enumerate(raw):
        try:
            strings.append(b.decode())
        except UnicodeDecodeError:
            strings.append("")
            bad.append(k)
    if bad:
        p.ok &= ~np.isin(codes, bad)
    return codes, strings


def _compact(codes: np.ndarray, universe: list[str]) -> tuple[np.ndarray, list[str]]:
    used, inverse = np.unique(codes, return_inverse=True)
    return inverse.reshape(len(codes)), [universe[k] for k in used.tolist()]


def decode_tick_columns(
    values: Sequence[bytes | None],
    codec: AvroCodec[Tick] | None = None,
    *,
    partition: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> tuple[TickBatch, list[DecodeFailure]]:
    """Decode wire-format Tick values into columns; never raises on bad bytes.

    Returns the :class:`TickBatch` of the values that decode (in order; ``partition``/``offset`` per value carried
    over when given) and ``(index, "schema", field)`` for every other, with the fields of ``AvroCodec.decode_many``
    (``value``, ``magic_byte``, ``schema_id``, ``payload``). Values written with the codec's own Tick version 1
    schema are parsed vectorised; others (a newer compatible version, anything malformed) by the codec's fastavro
    decoder row by row, so the result equals decoding each value with ``codec.decode``.
    """
    codec = codec if codec is not None else codec_for(Tick)
    if codec.message_type is not Tick or codec._from is not _tick_from:
        raise ConfigurationError("codec", codec.subject, "decode_tick_columns needs a Tick codec")
    n = len(values)
    vals: Sequence[bytes | None] = values
    if n and values.count(None):
        vals = [b"" if v is None else v for v in values]
    lens = np.fromiter(map(len, vals), np.int64, n)  # type: ignore[arg-type]
    blob = b"".join(vals)  # type: ignore[arg-type]
    total = len(blob)
    padded = blob + bytes(_PAD)
    starts = np.cumsum(lens) - lens
    fast = lens >= 6  # header + at least one body byte
    everything = _Parser(padded, total, starts, starts + lens)
    if codec._fast is _decode_tick_v1 and fast.any():
        header = np.uint64(int.from_bytes(codec._header, "little"))
        fast &= (everything.words[np.minimum(starts, total)] & _BYTE_MASKS[5]) == header
    else:
        fast[:] = False
    rows = np.flatnonzero(fast)
    p = _Parser(padded, total, starts[rows] + 5, starts[rows] + lens[rows])
    f_start, f_len = p.string()
    value = p.double()
    s_start, s_len = p.string()
    sequence = p.varint()
    event_time = p.varint()
    bid, has_bid = p.optional_double()
    ask, has_ask = p.optional_double()
    p.ok &= p.pos == p.end
    f_code, factors = _decode_strings(p, f_start, f_len)
    s_code, sources = _decode_strings(p, s_start, s_len)

    # rows the fast path did not take or gave up on: the reference decoder, one by one
    slow_mask = np.ones(n, bool)
    slow_mask[rows[p.ok]] = False
    failures: list[DecodeFailure] = []
    slow_ticks: dict[int, Tick] = {}
    for i in np.flatnonzero(slow_mask).tolist():
        try:
            slow_ticks[i] = codec.decode(vals[i])  # type: ignore[arg-type]
        except InvalidFieldError as exc:
            failures.append((i, "schema", exc.field or "payload"))
        except Exception:  # one bad value never stops the batch
            failures.append((i, "schema", "payload"))

    took = rows[p.ok]
    if len(took) == n:  # the common case: every row parsed vectorised, in order
        columns = [f_code, value, bid, ask, has_bid, has_ask, s_code, sequence, event_time]
        good: Any = slice(None)
    else:
        good = np.ones(n, bool)
        good[[i for i, _, _ in failures]] = False
        kept = [f_code, value, bid, ask, has_bid, has_ask, s_code, sequence, event_time]
        columns = []
        for col in kept:
            full = np.zeros(n, col.dtype)
            full[took] = col[p.ok]
            columns.append(full)
        # the fast universes may repeat a string (rejected rows share one code): merge through dictionaries
        fmap: dict[str, int] = {}
        smap: dict[str, int] = {}
        fremap = np.array([fmap.setdefault(f, len(fmap)) for f in factors], np.int64)
        sremap = np.array([smap.setdefault(s, len(smap)) for s in sources], np.int64)
        if len(took):
            columns[0][took] = fremap[columns[0][took]]
            columns[6][took] = sremap[columns[6][took]]
        if slow_ticks:
            for i, t in slow_ticks.items():
                fmap.setdefault(t.factor_id, len(fmap))
                smap.setdefault(t.source, len(smap))
                row = (
                    fmap[t.factor_id],
                    t.value,
                    np.nan if t.bid is None else t.bid,
                    np.nan if t.ask is None else t.ask,
                    t.bid is not None,
                    t.ask is not None,
                    smap[t.source],
                    t.sequence,
                    t.event_time_us,
                )
                for col, x in zip(columns, row, strict=True):
                    col[i] = x
        factors, sources = list(fmap), list(smap)
        columns = [col[good] for col in columns]
        # drop universe entries only rejected rows referred to
        columns[0], factors = _compact(columns[0], factors)
        columns[6], sources = _compact(columns[6], sources)
    f_code, value, bid, ask, has_bid, has_ask, s_code, sequence, event_time = columns
    m = len(value)
    batch = TickBatch(
        tuple(factors),
        f_code.astype(np.int32),
        value,
        bid,
        ask,
        has_bid,
        has_ask,
        tuple(sources),
        s_code.astype(np.int32),
        sequence,
        event_time,
        np.full(m, -1, np.int32) if partition is None else np.asarray(partition, np.int32)[good],
        np.full(m, -1, np.int64) if offset is None else np.asarray(offset, np.int64)[good],
    )
    return batch, failures
