"""The risk worker: consumes ticks and position events, runs one streaming engine per owned positions partition,
publishes snapshots, leaf P&L vectors and alerts per micro-batch, and checkpoints for exactly-once recovery.

Partitioning
    Positions (and their snapshots) are keyed by book, ticks by factor id. A worker joins a consumer group on the
    ``positions`` topic (group-managed: partitions move between workers as they join and leave) and so owns the
    books hashing to its partitions. Every engine needs the whole market, so each owned partition ``p`` reads
    *all* ``marketdata.ticks`` partitions with its own manually assigned consumer. One reader per owned partition
    (rather than one per worker) makes each partition's state a function of its own input offsets only: a
    partition checkpoints, moves and recovers on its own. Owned partitions whose tick input is in the same state
    (offsets and validator states) still read, decode and validate each poll once (``share_tick_reads``).

Tick path
    Columnar: ``poll_batch`` → ``validate_batch`` per ticks partition → pending `TickBatch` columns, cut at window
    boundaries by index → ``apply_levels`` by factor position. ``WorkerConfig(columnar=False)`` is the per-message
    reference (``poll`` → ``validate`` → ``apply_ticks``); both publish the same records and checkpoints.

Micro-batches (windows)
    *simulation* (replay under a simulated clock; what tests use): window ``k`` covers event times
    ``[kW, (k+1)W)``. It closes once every input (each ticks partition, positions partition ``p``) has delivered
    a *valid* record with event time ≥ ``(k+1)W`` or has reached its end offset. A record arriving late (event
    time before its window) joins the open window. Since the engine conflates to the latest level per factor and
    a factor lives in one partition, what a window contains — and so every number it publishes — depends only on
    the input offsets: a restarted worker reproduces exactly the windows of an uninterrupted one. Records read
    past a window's boundary are held validated-but-pending (and saved with a checkpoint).
    *live*: a window closes every ``trigger_ms`` or ``trigger_ticks`` ticks, whichever comes first.

Validation
    decode → `TickValidator` / `PositionEventValidator` → the engine. Rejected records become `DeadLetter`s on
    the ``deadletter`` topic (reason, field, original bytes); engine `BadRecord`s (a cancel of an unknown
    position, ...) too. Each ticks partition ``q``'s dead letters are published by the owner of positions
    partition ``q mod n`` only, so a bad tick is reported once. Counts per topic and reason:
    ``riskstream_worker_deadletter_total`` on `riskstream.bus.METRICS_REGISTRY`.

Output per closed window ``k`` (``as_of_us`` = the window's end in simulation, wall time in live mode)
    - `RiskSnapshot`s of the nodes partition ``p`` owns entirely (books and the traders under them) to
      ``risk.snapshots`` partition ``p``, with ``sequence = k`` and the input offsets the window reflects;
    - limit `Alert`s of those nodes to ``risk.alerts`` partition ``p``;
    - the leaf P&L vectors, one record per window (see `VectorBatch`), to ``risk.vectors`` partition ``p`` —
      last, so a window's vectors record says the window is complete. The `Aggregator` sums them into desk and
      firm snapshots once every partition's record of window ``k`` is in.

Checkpoints and exactly-once output
    Every ``checkpoint_every_windows`` windows (simulation) or ``checkpoint_every_s`` seconds (live), and on
    revocation, the partition's engine, validators, limit states, pending records, input offsets, window index and
    output end offsets are saved atomically (`CheckpointStore`). A partition's new owner restores it and seeks to
    the saved offsets (from the beginning without a checkpoint), then recomputes the windows after the
    checkpoint. *Output fencing* keeps those from being published twice: before resuming, the owner reads its
    output partitions from the checkpointed output offsets to their end and notes, per output partition, the last
    window already there and how many of that window's records made it; recomputed records up to that point are
    dropped, the rest published. Dead letters are fenced by their source ``(topic, partition, offset, reason)``.
    Kafka transactions would give the same guarantee on Kafka (librdkafka's mock cluster supports them), but not
    on the in-process bus, and the checkpoint lives outside Kafka anyway; fencing works on every bus and costs one
    read of the tail of the output at start-up.

    In live mode the windows after a restart are cut at other instants than the original ones; the *state* is
    still exactly-once (every input record counted once) and window indices are never published twice.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import struct
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from prometheus_client import CollectorRegistry, Counter

from ..bus import (
    METRICS_REGISTRY,
    AvroCodec,
    Bus,
    PositionEventValidator,
    RawBatch,
    Record,
    TickBatch,
    TickValidator,
    TopicPartition,
    codec_for,
    now_us,
    open_bus,
    partition_for,
)
from ..domain import Alert, DeadLetter, Portfolio, PositionEvent, RiskSnapshot, Tick, parse_factor
from ..domain import MarketSnapshot as _MarketSnapshot
from ..errors import ConfigurationError, InputError, RiskstreamError
from ._checkpoint import Checkpoint, CheckpointStore, PartitionLease
from ._limits import LimitMonitor, limits_from_values, with_limit
from ._stream import StreamingEngine
from ._stream_config import StreamConfig

__all__ = [
    "VECTORS_TOPIC",
    "Codecs",
    "RiskWorker",
    "VectorBatch",
    "WorkerConfig",
    "books_by_partition",
    "ensure_vectors_topic",
    "main",
    "node_book",
    "partition_list",
    "serve",
    "stop_on_signals",
]

#: internal topic of leaf P&L vectors, worker → aggregator
VECTORS_TOPIC = "risk.vectors"

_US = 1_000_000


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker forms micro-batches, checkpoints and publishes.

    Parameters
    ----------
    group
        Consumer group of the workers (and the checkpoint sub-directory).
    checkpoint_dir
        Root of the checkpoints (shared by the group's workers).
    mode
        ``simulation``: deterministic event-time windows of ``window_us``; ``live``: wall-clock triggers.
    window_us
        Simulation window W in µs of event time.
    start_us, end_us
        Simulation: the first window is ``start_us // W``, the last ``(end_us − 1) // W``; every window in
        between is published, empty or not (the aggregator waits for each one from every partition).
    trigger_ms, trigger_ticks
        Live: close a window after this many milliseconds or ticks, whichever comes first.
    checkpoint_every_windows, checkpoint_every_s
        Checkpoint cadence in simulation (windows) and live mode (seconds of wall time).
    max_future_us
        Ticks later than the validation clock by more than this are dead letters (simulation clock: ``end_us``).
    stream
        What the engines compute (the slow-measure thread is off by default: its timing is not deterministic).
    limit_multiple
        Default limits: this multiple of each book's start-of-day VaR.
    poll_records
        Most records read per poll.
    assigned
        ``None``: join the consumer group on ``positions`` (partitions move between the group's workers). A tuple
        of partitions: own exactly those, manually assigned, with no group membership — for a single worker (no
        rebalance to wait for after a crash) or a fixed split between workers.
    columnar
        ``True`` (default): ticks go through the bus's columnar path (``poll_batch`` → ``validate_batch`` →
        ``apply_levels``) and stay columns while pending. ``False``: the per-message reference path (``poll`` →
        ``validate`` → ``apply_ticks``, a ``Tick`` and a ``Record`` per message). Both publish the same records
        and write the same checkpoints; either restores the other's checkpoint.
    share_tick_reads
        Columnar path: owned partitions at the same ticks offsets with the same validator state read, decode and
        validate each poll once (one of them polls; the others take its columns and validator state and their
        own consumers stand unassigned until they read on their own again). ``False``: each partition reads alone.
    """

    group: str = "risk-workers"
    checkpoint_dir: Path = Path(".riskstream/checkpoints")
    mode: Literal["simulation", "live"] = "live"
    window_us: int = _US
    start_us: int = 0
    end_us: int | None = None
    trigger_ms: float = 200.0
    trigger_ticks: int = 50_000
    checkpoint_every_windows: int = 10
    checkpoint_every_s: float = 5.0
    max_future_us: int = 5 * _US
    stream: StreamConfig = field(default_factory=lambda: StreamConfig(slow_every_s=0.0))
    limit_multiple: float = 1.25
    poll_records: int = 5_000
    assigned: tuple[int, ...] | None = None
    columnar: bool = True
    share_tick_reads: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("simulation", "live"):
            raise ConfigurationError("mode", self.mode, "must be 'simulation' or 'live'")
        if int(self.window_us) != self.window_us or self.window_us < 1:
            raise ConfigurationError("window_us", self.window_us, "must be an integer ≥ 1 µs")
        if self.mode == "simulation":
            if self.end_us is None or self.end_us <= self.start_us:
                raise ConfigurationError(
                    "end_us", self.end_us, f"simulation needs an end after {self.start_us}"
                )
        for name in ("checkpoint_every_windows", "trigger_ticks", "poll_records"):
            if int(getattr(self, name)) < 1:
                raise ConfigurationError(name, getattr(self, name), "must be ≥ 1")
        for name in ("trigger_ms", "checkpoint_every_s", "limit_multiple"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ConfigurationError(name, v, "must be a finite number > 0")
        object.__setattr__(self, "checkpoint_dir", Path(self.checkpoint_dir))
        if self.assigned is not None:
            parts = tuple(sorted({int(p) for p in self.assigned}))
            if not parts or parts[0] < 0:
                raise ConfigurationError("assigned", self.assigned, "must name partitions ≥ 0")
            object.__setattr__(self, "assigned", parts)

    @property
    def first_window(self) -> int:
        return self.start_us // self.window_us

    @property
    def last_window(self) -> int:
        assert self.end_us is not None
        return (self.end_us - 1) // self.window_us


# ---------------------------------------------------------------------------------------------------------------
# wire formats and helpers


class Codecs:
    """The pipeline's Avro codecs, registered in one fixed order.

    The ``mock://`` registry is per process and numbers schemas in registration order, so every process of a
    pipeline (test, feed, subprocess workers) builds its codecs through this class to agree on the schema ids.
    """

    def __init__(self, bus: Bus, registry_url: str | None = None) -> None:
        t = bus.topics
        registry_url = registry_url or str(getattr(bus, "registry_url", "mock://"))
        self.tick: AvroCodec[Tick] = codec_for(Tick, t.ticks, registry_url)
        self.position: AvroCodec[PositionEvent] = codec_for(PositionEvent, t.positions, registry_url)
        self.snapshot: AvroCodec[RiskSnapshot] = codec_for(RiskSnapshot, t.snapshots, registry_url)
        self.alert: AvroCodec[Alert] = codec_for(Alert, t.alerts, registry_url)
        self.dead: AvroCodec[DeadLetter] = codec_for(DeadLetter, t.deadletter, registry_url)


_VEC_MAGIC = b"RSVEC1"
_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class VectorBatch:
    """The leaf P&L vectors of one positions partition after one window (the value of a ``risk.vectors`` record).

    Wire form: ``b"RSVEC1"`` | header length (4 bytes, big-endian) | JSON header (window, as_of_us, partition,
    leaves, leaf additive values, input offsets) | float64 little-endian matrix, leaves × scenarios. One record
    per partition and window (not one per book) so that the aggregator knows a partition's window is complete
    without knowing its books.
    """

    window: int
    as_of_us: int
    partition: int
    vectors: Mapping[str, np.ndarray]
    values: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    n_scenarios: int = 0

    def encode(self) -> bytes:
        leaves = sorted(self.vectors)
        header = {
            "window": int(self.window),
            "as_of_us": int(self.as_of_us),
            "partition": int(self.partition),
            "leaves": leaves,
            "values": {k: dict(self.values.get(k, {})) for k in leaves},
            "n_scenarios": int(self.n_scenarios),
        }
        head = json.dumps(header, sort_keys=True).encode()
        body = (
            np.stack([np.asarray(self.vectors[k], dtype="<f8") for k in leaves]).tobytes() if leaves else b""
        )
        return _VEC_MAGIC + _U32.pack(len(head)) + head + body

    @classmethod
    def decode(cls, value: bytes) -> VectorBatch:
        if not value.startswith(_VEC_MAGIC):
            raise InputError("not a vector batch", field="value", value=value[:8])
        (n,) = _U32.unpack_from(value, len(_VEC_MAGIC))
        start = len(_VEC_MAGIC) + _U32.size
        header = json.loads(value[start : start + n])
        leaves = header["leaves"]
        s = int(header["n_scenarios"])
        matrix = np.frombuffer(value[start + n :], dtype="<f8").reshape(len(leaves), s)
        return cls(
            window=int(header["window"]),
            as_of_us=int(header["as_of_us"]),
            partition=int(header["partition"]),
            vectors={k: matrix[i].astype(np.float64) for i, k in enumerate(leaves)},
            values=header["values"],
            n_scenarios=s,
        )


def ensure_vectors_topic(bus: Bus) -> None:
    """Create ``risk.vectors`` where the bus needs topics created (the Kafka mock cluster)."""
    ensure = getattr(bus, "ensure_topic", None)
    if ensure is not None:
        ensure(VECTORS_TOPIC)


def node_book(node: str) -> str | None:
    """The book of a node id ``FIRM/<desk>/<book>[/<trader>]``, or None above the book level."""
    parts = node.split("/")
    return parts[2] if len(parts) >= 3 else None


def books_by_partition(portfolio: Portfolio, n_partitions: int) -> dict[int, list[str]]:
    """Books of the portfolio by ``positions`` partition (``partition_for(book, n)``, Kafka's murmur2)."""
    books = sorted(set(portfolio.positions.attribute("book").tolist()))
    out: dict[int, list[str]] = {p: [] for p in range(n_partitions)}
    for b in books:
        out[partition_for(b.encode(), n_partitions)].append(b)
    return out


_DEAD_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()
_DEAD_LOCK = threading.Lock()


def _dead_counter(registry: CollectorRegistry) -> Counter:
    with _DEAD_LOCK:
        counter = _DEAD_COUNTERS.get(registry)
        if counter is None:
            counter = Counter(
                "riskstream_worker_deadletter_total",
                "Records a risk worker published to the dead-letter topic, by source topic and reason.",
                ["topic", "reason"],
                registry=registry,
            )
            _DEAD_COUNTERS[registry] = counter
        return counter


def _key(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"


def _record_json(r: Record) -> list[Any]:
    return [r.offset, r.key.hex() if r.key is not None else None, r.value.hex(), r.timestamp_us]


def _record_from(tp: TopicPartition, row: Sequence[Any]) -> Record:
    key = bytes.fromhex(row[1]) if row[1] is not None else None
    return Record(tp.topic, tp.partition, int(row[0]), key, bytes.fromhex(row[2]), int(row[3]))


def _pair(
    records: Sequence[Record], good: Sequence[Any], dead: Sequence[DeadLetter]
) -> list[tuple[Any, Record]]:
    """Pair each validated message with the record it came from (validators keep order and drop the dead)."""
    if not dead:
        return list(zip(good, records, strict=True))
    bad = {d.offset for d in dead}
    kept = [r for r in records if r.offset not in bad]
    return list(zip(good, kept, strict=True))


class _RecordPending:
    """Validated-but-pending messages of one input as (message, record) pairs, in arrival order (position events;
    ticks on the per-message reference path)."""

    def __init__(self, items: Iterable[tuple[Any, Record]] = ()) -> None:
        self.items: list[tuple[Any, Record]] = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def extend(self, records: Sequence[Record], good: Sequence[Any], dead: Sequence[DeadLetter]) -> None:
        self.items.extend(_pair(records, good, dead))

    def first_at_or_after(self, bound_us: int) -> int | None:
        """Index of the first pending message with event time ≥ ``bound_us``."""
        return next((j for j, (m, _) in enumerate(self.items) if m.event_time_us >= bound_us), None)

    def take(self, n: int) -> list[tuple[Any, Record]]:
        """Remove and return the first ``n`` pending messages."""
        taken, self.items = self.items[:n], self.items[n:]
        return taken

    def first_offset(self) -> int | None:
        return self.items[0][1].offset if self.items else None

    def rows(self) -> list[list[Any]]:
        """Checkpoint form: ``[offset, key hex, value hex, timestamp µs]`` per pending record."""
        return [_record_json(r) for _, r in self.items]


class _TickPending:
    """Validated-but-pending ticks of one ticks partition as columns: chunks of (accepted ticks, the raw batch they
    came from), in arrival order. The raw batch is kept only to write the pending records into a checkpoint."""

    def __init__(self) -> None:
        self.chunks: list[tuple[TickBatch, RawBatch]] = []
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def extend(self, ticks: TickBatch, raw: RawBatch) -> None:
        if len(ticks):
            self.chunks.append((ticks, raw))
            self.n += len(ticks)

    def first_at_or_after(self, bound_us: int) -> int | None:
        """Index (over all chunks) of the first pending tick with event time ≥ ``bound_us``."""
        before = 0
        for ticks, _ in self.chunks:
            hit = np.flatnonzero(ticks.event_time_us >= bound_us)
            if hit.size:
                return before + int(hit[0])
            before += len(ticks)
        return None

    def take(self, n: int) -> list[TickBatch]:
        """Remove and return the first ``n`` pending ticks (a chunk straddling ``n`` is split by index)."""
        out: list[TickBatch] = []
        while n > 0:
            ticks, raw = self.chunks[0]
            if len(ticks) <= n:
                out.append(ticks)
                self.chunks.pop(0)
                n -= len(ticks)
                self.n -= len(ticks)
            else:
                out.append(ticks.select(np.arange(n)))
                self.chunks[0] = (ticks.select(np.arange(n, len(ticks))), raw)
                self.n -= n
                n = 0
        return out

    def first_offset(self) -> int | None:
        return int(self.chunks[0][0].offset[0]) if self.chunks else None

    def rows(self) -> list[list[Any]]:
        """Checkpoint form, the same as `_RecordPending.rows` of the same records."""
        out: list[list[Any]] = []
        for ticks, raw in self.chunks:
            # offsets increase within a partition: each pending tick's raw row by binary search
            idx = np.searchsorted(raw.offset, ticks.offset).tolist()
            stamps = raw.timestamp_us
            for i in idx:
                key = raw.keys[i]
                out.append(
                    [
                        int(raw.offset[i]),
                        key.hex() if key is not None else None,
                        raw.values[i].hex(),
                        int(stamps[i]),
                    ]
                )
        return out

    @classmethod
    def from_records(
        cls, tp: TopicPartition, records: Sequence[Record], codec: AvroCodec[Tick]
    ) -> _TickPending:
        """Pending ticks restored from a checkpoint (validated before it was written: decoded, not re-validated)."""
        out = cls()
        if records:
            offsets = np.array([r.offset for r in records], np.int64)
            ticks = TickBatch.from_ticks(
                [codec.decode(r.value) for r in records],
                np.full(len(records), tp.partition, np.int32),
                offsets,
            )
            raw = RawBatch(
                (tp,),
                np.zeros(len(records), np.int32),
                offsets,
                [r.key for r in records],
                [r.value for r in records],
                np.array([r.timestamp_us for r in records], np.int64),
            )
            out.extend(ticks, raw)
        return out


def _split(raw: RawBatch) -> dict[TopicPartition, RawBatch]:
    """`RawBatch.split` leaving the timestamps unread until asked (only a checkpoint of pending ticks needs them;
    on Kafka reading them costs a call per message)."""
    if len(raw.tps) <= 1:
        return raw.split()
    read: list[np.ndarray] = []

    def stamps(k: int) -> Callable[[], np.ndarray]:
        def get() -> np.ndarray:
            if not read:
                read.append(raw.timestamp_us)
            return read[0][raw.tp_index == k]

        return get

    # split with the offsets standing in for the timestamps, then give each part its own, read when asked
    parts = replace(raw, timestamps=raw.offset).split()
    return {tp: replace(part, timestamps=stamps(raw.tps.index(tp))) for tp, part in parts.items()}


def _rows_from(raw: RawBatch, first: int) -> RawBatch:
    """The rows of a one-partition batch at offsets ≥ ``first`` (a rebalance may redeliver records already held)."""
    keep = np.flatnonzero(raw.offset >= first)
    if keep.size == len(raw):
        return raw
    picked = keep.tolist()
    return RawBatch(
        raw.tps,
        raw.tp_index[keep],
        raw.offset[keep],
        [raw.keys[i] for i in picked],
        [raw.values[i] for i in picked],
        lambda: raw.timestamp_us[keep],
    )


# ---------------------------------------------------------------------------------------------------------------
# output fencing


class _Fence:
    """What a partition already published after its checkpoint: per output partition, the last window found and how
    many of its records; dead letters by source. `allow` says whether the i-th record of window k is new."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[int, int]] = {}
        self.dead: set[tuple[str, int, int, str]] = set()
        self.as_of: dict[int, int] = {}

    def note(self, out: str, window: int) -> None:
        w, n = self.last.get(out, (-(2**62), 0))
        if window > w:
            self.last[out] = (window, 1)
        elif window == w:
            self.last[out] = (w, n + 1)

    def allow(self, out: str, window: int, index: int) -> bool:
        w, n = self.last.get(out, (-(2**62), 0))
        return window > w or (window == w and index >= n)

    @property
    def max_window(self) -> int:
        return max((w for w, _ in self.last.values()), default=-(2**62))


# ---------------------------------------------------------------------------------------------------------------
# one positions partition


class _PartitionRunner:
    """State and windows of one owned positions partition."""

    def __init__(self, worker: RiskWorker, partition: int, lease: PartitionLease) -> None:
        self.w = worker
        self.p = partition
        cfg = worker.config
        bus = worker.bus
        topics = bus.topics
        self.books = worker.books[partition]
        self.book_set = frozenset(self.books)
        self.tick_tps = [TopicPartition(topics.ticks, q) for q in range(worker.n_ticks)]
        self.pos_tp = TopicPartition(topics.positions, partition)
        self.inputs = [*self.tick_tps, self.pos_tp]
        self.outputs = {
            "snapshots": TopicPartition(topics.snapshots, partition),
            "alerts": TopicPartition(topics.alerts, partition),
            "vectors": TopicPartition(VECTORS_TOPIC, partition),
            "dead": TopicPartition(topics.deadletter, partition),
        }
        self.owned_tick_partitions = {q for q in range(worker.n_ticks) if q % worker.n_positions == partition}
        clock: Callable[[], int] = (lambda: int(cfg.end_us or 0)) if cfg.mode == "simulation" else now_us
        private = CollectorRegistry()  # validators' own counters: the worker counts what it publishes, once
        # sequences increase per source across the whole feed, but partitions interleave freely: one validator
        # (one sequence state) per ticks partition
        self.tick_validators = {
            tp: TickValidator(
                worker.known_factors,
                max_future_us=cfg.max_future_us,
                clock=clock,
                codec=worker.codecs.tick,
                registry=private,
            )
            for tp in self.tick_tps
        }
        self.pos_validator = PositionEventValidator(
            worker.known_instruments, self.book_set, codec=worker.codecs.position, registry=private
        )
        self.columnar = cfg.columnar
        self.pending: dict[TopicPartition, _RecordPending | _TickPending] = {
            tp: _TickPending() if self.columnar and tp != self.pos_tp else _RecordPending()
            for tp in self.inputs
        }
        self.offsets: dict[TopicPartition, int] = {tp: 0 for tp in self.inputs}
        self.fence = _Fence()
        self.windows_since_ckpt = 0
        self.last_ckpt_s = time.monotonic()
        self.last_close_s = time.monotonic()
        self.ticks_since_close = 0
        self.done = False
        # the previous owner has checkpointed and let go (the caller holds the lease: `CheckpointStore.try_lease`)
        self.lease = lease
        try:
            self._start()
        except BaseException:
            self.lease.release()
            raise

    def _start(self) -> None:
        worker, cfg, partition, bus = self.w, self.w.config, self.p, self.w.bus
        ckpt = worker.store.load(partition)
        if ckpt is None:
            self.engine = StreamingEngine(
                worker.portfolio, worker.snapshot, worker.history, cfg.stream, books=self.books
            )
            start = self.engine.all_snapshots(0)
            var_name = cfg.stream.var_name
            self.limit_values = {
                s.node: s.measures[var_name]
                for s in start
                if node_book(s.node) in self.book_set and s.node.count("/") == 2 and s.measures[var_name] > 0
            }
            self.limits = LimitMonitor(
                limits_from_values(self.limit_values, measure=var_name, multiple=cfg.limit_multiple)
            )
            self.window = cfg.first_window if cfg.mode == "simulation" else 0
            output_from: Mapping[str, int] = {}
        else:
            self._restore(ckpt)
            output_from = ckpt.output_offsets
        # per factor id: (position in the engine's universe or -1, a well-formed id, levels must be > 0), for
        # `_apply_tick_columns` (the universe is fixed per engine; ids outside it are added as they come)
        self.factor_tables: dict[int, tuple[tuple[str, ...], np.ndarray]] = {}
        self.factor_info: dict[str, tuple[int, bool, bool]] = {
            f: (j, True, parse_factor(f).positive) for j, f in enumerate(self.engine.factor_ids)
        }
        self.tick_consumer = bus.consumer(f"{cfg.group}.ticks.p{partition}")
        self.tick_reader_idle = False
        self.tick_consumer.assign({tp: self.offsets[tp] for tp in self.tick_tps})
        self._read_fence(output_from)

    # -- restore and checkpoint --------------------------------------------------------------------------------

    def _restore(self, ckpt: Checkpoint) -> None:
        w = self.w
        self.engine = StreamingEngine.from_state(
            ckpt.blobs["engine"], w.portfolio, w.snapshot, w.history, w.config.stream
        )
        meta = json.loads(ckpt.blobs["meta"])
        for tp, v in self.tick_validators.items():
            v.restore(meta["ticks"][_key(tp)])
        self.pos_validator.restore(meta["positions"])
        self.limit_values = {str(k): float(v) for k, v in meta["limit_values"].items()}
        self.limits = LimitMonitor(
            limits_from_values(
                self.limit_values, measure=w.config.stream.var_name, multiple=w.config.limit_multiple
            )
        )
        self.limits.restore(meta["limits"])
        for tp in self.inputs:
            self.offsets[tp] = int(ckpt.input_offsets.get(_key(tp), 0))
            codec = w.codecs.position if tp == self.pos_tp else w.codecs.tick
            rows = meta["pending"].get(_key(tp), [])
            records = [_record_from(tp, row) for row in rows]
            if isinstance(self.pending[tp], _TickPending):
                self.pending[tp] = _TickPending.from_records(tp, records, w.codecs.tick)
            else:
                self.pending[tp] = _RecordPending((codec.decode(r.value), r) for r in records)
        self.window = ckpt.window + 1
        self.done = w.config.mode == "simulation" and ckpt.window >= w.config.last_window

    def checkpoint(self) -> None:
        """Save this partition's state (flushes the producer first so the output offsets are final)."""
        w = self.w
        w.producer.flush()
        output_offsets = {}
        for tp in self.outputs.values():
            output_offsets[_key(tp)] = int(w.bus.end_offsets(tp.topic).get(tp.partition, 0))
        meta = {
            "ticks": {_key(tp): v.state() for tp, v in self.tick_validators.items()},
            "positions": self.pos_validator.state(),
            "limits": self.limits.state(),
            "limit_values": self.limit_values,
            "pending": {_key(tp): self.pending[tp].rows() for tp in self.inputs},
        }
        w.store.save(
            Checkpoint(
                group=w.config.group,
                partition=self.p,
                window=self.window - 1,
                window_end_us=self._as_of(self.window - 1) if w.config.mode == "simulation" else now_us(),
                input_offsets={_key(tp): off for tp, off in self.offsets.items()},
                output_offsets=output_offsets,
                blobs={"engine": self.engine.state(), "meta": json.dumps(meta, sort_keys=True).encode()},
            )
        )
        self.windows_since_ckpt = 0
        self.last_ckpt_s = time.monotonic()
        w.checkpoints_written += 1

    def _read_fence(self, output_from: Mapping[str, int]) -> None:
        """Learn what this partition already published after its checkpoint (see the module docstring)."""
        w = self.w
        codecs = w.codecs
        reader = w.bus.consumer(f"{w.config.group}.fence.p{self.p}")
        try:
            for name in ("vectors", "snapshots", "alerts", "dead"):
                tp = self.outputs[name]
                start = int(output_from.get(_key(tp), 0))
                end = int(w.bus.end_offsets(tp.topic).get(tp.partition, 0))
                if end <= start:
                    continue
                for r in _read_range(reader, tp, start, end):
                    self._note_output(name, r, codecs)
        finally:
            reader.close()

    def _note_output(self, name: str, r: Record, codecs: Codecs) -> None:
        out = _key(self.outputs[name])
        try:
            if name == "vectors":
                vb = VectorBatch.decode(r.value)
                if vb.partition == self.p:
                    self.fence.note(out, vb.window)
                    self.fence.as_of[vb.as_of_us] = vb.window
            elif name == "snapshots":
                s = codecs.snapshot.decode(r.value)
                if node_book(s.node) in self.book_set:
                    self.fence.note(out, s.sequence)
            elif name == "alerts":
                a = codecs.alert.decode(r.value)
                if node_book(a.node) in self.book_set:
                    self.fence.note(out, self._window_of(a.as_of_us))
            else:
                d = codecs.dead.decode(r.value)
                self.fence.dead.add((d.topic, d.partition, d.offset, d.reason))
        except (InputError, ValueError):
            return  # a record this worker did not write: not ours to fence

    def _as_of(self, window: int) -> int:
        if self.w.config.mode == "simulation":
            return (window + 1) * self.w.config.window_us
        return self.fence_as_of.get(window) or now_us()

    @property
    def fence_as_of(self) -> dict[int, int]:
        return {k: a for a, k in self.fence.as_of.items()}

    def _window_of(self, as_of_us: int) -> int:
        if self.w.config.mode == "simulation":
            return as_of_us // self.w.config.window_us - 1
        return self.fence.as_of.get(as_of_us, -(2**62))

    # -- input ---------------------------------------------------------------------------------------------------

    def add_position_records(self, records: Sequence[Record]) -> None:
        self._validate(self.pos_tp, records)

    def reads_like(self, other: _PartitionRunner) -> bool:
        """Whether this partition's ticks input is in the state of ``other``'s: the same offset and the same
        validator state on every ticks partition (then validating a poll once serves both exactly)."""
        return self.columnar and all(
            self.offsets[tp] == other.offsets[tp]
            and self.tick_validators[tp].state() == other.tick_validators[tp].state()
            for tp in self.tick_tps
        )

    def poll_ticks(self, timeout: float, followers: Sequence[_PartitionRunner] = ()) -> int:
        """Read, validate and hold one poll of ticks; ``followers`` (partitions that `reads_like` this one) take
        the same validated columns and validator state instead of reading themselves."""
        if self.columnar:
            if self.tick_reader_idle:
                # a follower until now: its consumer stood unassigned; read on from its own offsets
                self.tick_consumer.assign({tp: self.offsets[tp] for tp in self.tick_tps})
                self.tick_reader_idle = False
            for f in followers:
                if not f.tick_reader_idle:
                    f.tick_consumer.assign({})  # no fetching into a queue nobody reads
                    f.tick_reader_idle = True
            raw = self.tick_consumer.poll_batch(self.w.config.poll_records, timeout)
            if not len(raw):
                return 0
            for tp, part in _split(raw).items():
                self._validate_columns(tp, part, followers)
            return len(raw)
        records = self.tick_consumer.poll(self.w.config.poll_records, timeout)
        by_tp: dict[TopicPartition, list[Record]] = {}
        for r in records:
            by_tp.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
        for tp, rs in by_tp.items():
            self._validate(tp, rs)
        return len(records)

    def _validate(self, tp: TopicPartition, records: Sequence[Record]) -> None:
        # a rebalance may redeliver records we already hold: keep only the new ones
        records = [r for r in records if r.offset >= self.offsets[tp]]
        if not records:
            return
        pending = self.pending[tp]
        assert isinstance(pending, _RecordPending)
        if tp == self.pos_tp:
            events, dead = self.pos_validator.validate(records)
            pending.extend(records, events, dead)
            self._publish_dead(dead)
        else:
            ticks, dead = self.tick_validators[tp].validate(records)
            pending.extend(records, ticks, dead)
            if tp.partition in self.owned_tick_partitions:
                self._publish_dead(dead)
            self.ticks_since_close += len(ticks)
        self.offsets[tp] = records[-1].offset + 1

    def _validate_columns(
        self, tp: TopicPartition, raw: RawBatch, followers: Sequence[_PartitionRunner] = ()
    ) -> None:
        # a rebalance may redeliver records we already hold: keep only the new ones
        if int(raw.offset[0]) < self.offsets[tp]:
            raw = _rows_from(raw, self.offsets[tp])
            if not len(raw):
                return
        validator = self.tick_validators[tp]
        ticks, dead = validator.validate_batch(raw)
        self._hold_columns(tp, raw, ticks, dead)
        if followers:
            state = validator.state()
            for f in followers:
                f.tick_validators[tp].restore(state)
                f._hold_columns(tp, raw, ticks, dead)

    def _hold_columns(
        self, tp: TopicPartition, raw: RawBatch, ticks: TickBatch, dead: list[DeadLetter]
    ) -> None:
        pending = self.pending[tp]
        assert isinstance(pending, _TickPending)
        pending.extend(ticks, raw)
        if dead and tp.partition in self.owned_tick_partitions:
            self._publish_dead(dead)
        self.ticks_since_close += len(ticks)
        self.offsets[tp] = int(raw.offset[-1]) + 1

    def _factor(self, factor_id: str) -> tuple[int, bool, bool]:
        info = self.factor_info.get(factor_id)
        if info is None:
            try:
                info = (-1, True, parse_factor(factor_id).positive)
            except RiskstreamError:
                info = (-1, False, False)
            self.factor_info[factor_id] = info
        return info

    def _factor_table(self, factors: tuple[str, ...]) -> np.ndarray:
        """`_factor` of each id of a batch universe as an (n, 3) int64 array; the chunks of one poll share their
        universe, so it is built once per poll (a few are kept, the tuple held so its id stays its own)."""
        hit = self.factor_tables.get(id(factors))
        if hit is not None and hit[0] is factors:
            return hit[1]
        table = np.array([self._factor(f) for f in factors], dtype=np.int64).reshape(len(factors), 3)
        if len(self.factor_tables) >= 64:
            self.factor_tables.clear()
        self.factor_tables[id(factors)] = (factors, table)
        return table

    def _apply_tick_columns(self, ticks: TickBatch) -> int:
        """`StreamingEngine.apply_ticks` on columns; returns how many ticks the engine rejected.

        The engine takes a tick whose id is well formed and whose level is finite (and > 0 for prices, FX and
        vols), and rejects the others; a taken tick sets its universe factor's level (``apply_levels``, by
        position) or, outside the universe, the level the market keeps for it — for those only the last tick of
        each factor is handed over (as an object), since a later level replaces an earlier one. Rejected ticks set
        nothing, so every factor ends at the level of the per-message path."""
        if not len(ticks):
            return 0
        per_row = self._factor_table(ticks.factors)[ticks.factor_index]
        cols, well_formed, positive = per_row[:, 0], per_row[:, 1] == 1, per_row[:, 2] == 1
        value = ticks.value
        taken = well_formed & np.isfinite(value) & ((value > 0) | ~positive)
        universe = cols >= 0
        if taken.all() and universe.all():
            self.engine.apply_levels(cols, value)
            return 0
        levels = taken & universe
        self.engine.apply_levels(cols[levels], value[levels])
        other = np.flatnonzero(taken & ~universe)
        if other.size:
            # the last row of each factor outside the universe
            codes = ticks.factor_index[other][::-1]
            _, first = np.unique(codes, return_index=True)
            # every one passed the engine's own checks above: none comes back rejected
            last = self.engine.apply_ticks(ticks.select(np.sort(other[::-1][first])).to_ticks())
            return int(len(ticks) - np.count_nonzero(taken)) + len(last)
        return int(len(ticks) - np.count_nonzero(taken))

    def _publish_dead(self, dead: Iterable[DeadLetter]) -> None:
        w = self.w
        tp = self.outputs["dead"]
        counter = _dead_counter(METRICS_REGISTRY)
        for d in dead:
            ident = (d.topic, d.partition, d.offset, d.reason)
            if ident in self.fence.dead:
                continue
            self.fence.dead.add(ident)
            w.producer.produce(tp.topic, w.codecs.dead.encode(d), key=d.key, partition=tp.partition)
            counter.labels(d.topic, d.reason).inc()
            w.dead_letters += 1

    # -- windows ----------------------------------------------------------------------------------------------------

    def at_end(self, tp: TopicPartition) -> bool:
        return self.offsets[tp] >= self.w.final_ends.get(tp, 0)

    def advance(self) -> int:
        """Close every window that can close now; returns how many closed."""
        if self.done:
            return 0
        cfg = self.w.config
        closed = 0
        if cfg.mode == "live":
            due = (time.monotonic() - self.last_close_s) * 1000 >= cfg.trigger_ms
            if due or self.ticks_since_close >= cfg.trigger_ticks:
                self._close({tp: len(self.pending[tp]) for tp in self.inputs})
                closed = 1
            return closed
        while not self.done:
            last = self.window >= cfg.last_window
            bound = (self.window + 1) * cfg.window_us
            cut: dict[TopicPartition, int] = {}
            for tp in self.inputs:
                pending = self.pending[tp]
                i = None if last else pending.first_at_or_after(bound)
                if i is not None:
                    cut[tp] = i
                elif self.at_end(tp):
                    cut[tp] = len(pending)
                else:
                    return closed
            self._close(cut)
            closed += 1
        return closed

    def _close(self, cut: Mapping[TopicPartition, int]) -> None:
        w = self.w
        cfg = w.config
        k = self.window
        as_of = self._as_of(k)
        ticks: list[Tick] = []
        columns: list[TickBatch] = []
        events: list[tuple[PositionEvent, Record]] = []
        offsets: dict[str, int] = {}
        for tp in self.inputs:
            pending = self.pending[tp]
            taken = pending.take(cut[tp])
            first = pending.first_offset()
            offsets[_key(tp)] = first if first is not None else self.offsets[tp]
            if tp == self.pos_tp:
                events.extend(taken)  # type: ignore[arg-type]
            elif isinstance(pending, _TickPending):
                columns.extend(taken)  # type: ignore[arg-type]
            else:
                ticks.extend(m for m, _ in taken)  # type: ignore[misc]
        engine = self.engine
        # ticks in input order, the latest level per factor winning: applying the chunks one after the other in
        # that order sets the same levels as one call on all of them
        rejects = len(engine.apply_ticks(ticks)) if ticks else 0
        for chunk in columns:
            rejects += self._apply_tick_columns(chunk)
        dead: list[DeadLetter] = []
        w.engine_rejects += rejects
        for ev, rec in events:
            for bad in engine.apply_position_events([ev]):
                dead.append(
                    DeadLetter(rec.topic, rec.partition, rec.offset, "engine", bad.reason, rec.value, rec.key)
                )
        self._publish_dead(dead)
        snapshots = [
            replace(s, sequence=k) for s in engine.step(as_of, offsets) if node_book(s.node) in self.book_set
        ]
        alerts: list[Alert] = []
        var_name = cfg.stream.var_name
        for s in snapshots:
            with contextlib.suppress(InputError):
                alerts.extend(self.limits.update(s.node, var_name, s.measures[var_name], as_of))
        snapshots = [with_limit(s, self.limits, var_name) for s in snapshots]
        vb = VectorBatch(k, as_of, self.p, engine.leaf_vectors(), engine.leaf_values(), engine.n_scenarios)
        # vectors last: a window's vectors record says all of the window's other records were produced before it
        self._produce("alerts", k, [(a.node.encode(), w.codecs.alert.encode(a)) for a in alerts])
        self._produce("snapshots", k, [(s.node.encode(), w.codecs.snapshot.encode(s)) for s in snapshots])
        self._produce("vectors", k, [(f"p{self.p}".encode(), vb.encode())])
        w.windows_closed += 1
        w.on_window(self.p, k, snapshots)
        self.window = k + 1
        self.windows_since_ckpt += 1
        self.ticks_since_close = 0
        self.last_close_s = time.monotonic()
        if cfg.mode == "simulation":
            if k >= cfg.last_window:
                self.done = True
                self.checkpoint()
            elif self.windows_since_ckpt >= cfg.checkpoint_every_windows:
                self.checkpoint()
        elif time.monotonic() - self.last_ckpt_s >= cfg.checkpoint_every_s:
            self.checkpoint()

    def _produce(self, name: str, window: int, items: Sequence[tuple[bytes, bytes]]) -> None:
        w = self.w
        tp = self.outputs[name]
        out = _key(tp)
        for i, (key, value) in enumerate(items):
            if self.fence.allow(out, window, i):
                w.producer.produce(tp.topic, value, key=key, partition=tp.partition)
                w.records_published += 1
            else:
                w.records_fenced += 1

    def close(self) -> None:
        self.tick_consumer.close()
        self.lease.release()


def _read_range(
    consumer: Any, tp: TopicPartition, start: int, end: int, timeout_s: float = 30.0
) -> list[Record]:
    """Records ``[start, end)`` of one partition, read with a manually assigned consumer."""
    consumer.assign({tp: start})
    out: list[Record] = []
    deadline = time.monotonic() + timeout_s
    nxt = start
    while nxt < end and time.monotonic() < deadline:
        for r in consumer.poll(10_000, 0.2):
            if r.topic == tp.topic and r.partition == tp.partition and start <= r.offset < end:
                out.append(r)
                nxt = max(nxt, r.offset + 1)
    return out


# ---------------------------------------------------------------------------------------------------------------
# the worker


class RiskWorker:
    """A member of the risk worker group: owns positions partitions, one `StreamingEngine` per partition.

    Parameters
    ----------
    bus
        The bus (`riskstream.bus.open_bus`).
    portfolio, snapshot, history
        Start-of-day portfolio (every book; the worker keeps those of its partitions), market and history.
    config
        See `WorkerConfig`.
    name
        For logs.
    on_window
        Called after each closed window with (partition, window index, published snapshots).
    """

    def __init__(
        self,
        bus: Bus,
        portfolio: Portfolio,
        snapshot: _MarketSnapshot,
        history: Any,
        config: WorkerConfig,
        *,
        name: str = "worker",
        on_window: Callable[[int, int, list[RiskSnapshot]], None] | None = None,
    ) -> None:
        self.bus = bus
        self.portfolio = portfolio
        self.snapshot = snapshot
        self.history = history
        self.config = config
        self.name = name
        self.codecs = Codecs(bus)
        ensure_vectors_topic(bus)
        self.store = CheckpointStore(config.checkpoint_dir, config.group)
        self.n_ticks = bus.partitions(bus.topics.ticks)
        self.n_positions = bus.partitions(bus.topics.positions)
        self.books = books_by_partition(portfolio, self.n_positions)
        self.known_factors = frozenset(snapshot.values) | frozenset(history.columns.astype(str))
        self.known_instruments = frozenset(i.instrument_id for i in portfolio.instruments)
        self.producer = bus.producer()
        self.runners: dict[int, _PartitionRunner] = {}
        self._callback = on_window
        self.final_ends: dict[TopicPartition, int] = {}
        if config.mode == "simulation":
            for topic in (bus.topics.ticks, bus.topics.positions):
                for q, end in bus.end_offsets(topic).items():
                    self.final_ends[TopicPartition(topic, q)] = int(end)
        self.windows_closed = 0
        self.records_published = 0
        self.records_fenced = 0
        self.dead_letters = 0
        self.engine_rejects = 0
        self.checkpoints_written = 0
        self._consumer = bus.consumer(config.group)
        self._assigned: list[TopicPartition] = []
        self._waiting: dict[int, TopicPartition] = {}

    def on_window(self, partition: int, window: int, snapshots: list[RiskSnapshot]) -> None:
        if self._callback is not None:
            self._callback(partition, window, snapshots)

    # -- group membership ----------------------------------------------------------------------------------------

    def _on_assign(self, tps: list[TopicPartition]) -> None:
        # runners start in `_start_waiting`, once each partition's lease is free: the group may assign a partition
        # here before its previous owner has seen the rebalance, checkpointed and let go
        self._waiting = {tp.partition: tp for tp in tps if tp.partition not in self.runners}
        self._assigned = list(tps)

    def _on_revoke(self, tps: list[TopicPartition]) -> None:
        self._waiting = {}
        for tp in tps:
            runner = self.runners.pop(tp.partition, None)
            if runner is not None:
                runner.checkpoint()
                runner.close()

    def _start_waiting(self) -> None:
        for p, tp in list(self._waiting.items()):
            lease = self.store.try_lease(p)
            if lease is None:
                continue
            del self._waiting[p]
            runner = _PartitionRunner(self, p, lease)
            self.runners[p] = runner
            self._consumer.seek(tp, runner.offsets[runner.pos_tp])

    # -- running ---------------------------------------------------------------------------------------------------

    def all_done(self) -> bool:
        """Simulation: every positions partition (ours or not) has a checkpoint of the last window."""
        last = self.config.last_window
        for p in range(self.n_positions):
            runner = self.runners.get(p)
            if runner is not None:
                if not runner.done:
                    return False
                continue
            ckpt = self.store.load(p)
            if ckpt is None or ckpt.window < last:
                return False
        return True

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        until_end: bool = False,
        timeout_s: float | None = None,
        max_windows: int | None = None,
    ) -> None:
        """Consume and close windows until ``stop`` is set, ``timeout_s`` passes, ``max_windows`` windows closed,
        or (``until_end``, simulation) every partition of the group reached the last window."""
        positions = self.bus.topics.positions
        if self.config.assigned is None:
            self._consumer.subscribe([positions], self._on_assign, self._on_revoke)
        else:
            bad = [p for p in self.config.assigned if p >= self.n_positions]
            if bad:
                raise ConfigurationError(
                    "assigned", bad, f"topic {positions!r} has {self.n_positions} partitions"
                )
            tps = [TopicPartition(positions, p) for p in self.config.assigned]
            # each runner seeks to its checkpointed offset once its lease is held (`_start_waiting`)
            self._consumer.assign({tp: 0 for tp in tps})
            self._on_assign(tps)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while True:
                if stop is not None and stop.is_set():
                    break
                if deadline is not None and time.monotonic() > deadline:
                    break
                if max_windows is not None and self.windows_closed >= max_windows:
                    break
                if until_end and self.config.mode == "simulation" and self._assigned and self.all_done():
                    break
                self.step()
        finally:
            self.close()

    def step(self, timeout: float = 0.05) -> int:
        """One poll of the group consumer and of each partition's ticks; closes what can close."""
        records = self._consumer.poll(self.config.poll_records, 0.0 if self.runners else timeout)
        if self._waiting:
            self._start_waiting()
        by_p: dict[int, list[Record]] = {}
        for r in records:
            by_p.setdefault(r.partition, []).append(r)
        for p, rs in by_p.items():
            runner = self.runners.get(p)
            if runner is not None:
                runner.add_position_records(rs)
        closed = 0
        got = self._poll_ticks()
        for runner in list(self.runners.values()):
            closed += runner.advance()
        if not closed and not got and not records:
            time.sleep(min(timeout, 0.01))
        return closed

    def _poll_ticks(self) -> int:
        """One poll of ticks for every owned partition; with `WorkerConfig.share_tick_reads`, partitions whose
        ticks input is in the same state (`_PartitionRunner.reads_like`) read, decode and validate it once."""
        runners = list(self.runners.values())
        if len(runners) < 2 or not (self.config.columnar and self.config.share_tick_reads):
            return sum(r.poll_ticks(0.0) for r in runners)
        groups: list[list[_PartitionRunner]] = []
        for r in runners:
            group = next((g for g in groups if r.reads_like(g[0])), None)
            if group is None:
                groups.append([r])
            else:
                group.append(r)
        # the group's leader: one whose consumer is reading (no re-assignment while the group stays together)
        got = 0
        for g in groups:
            g.sort(key=lambda r: r.tick_reader_idle)
            got += g[0].poll_ticks(0.0, g[1:])
        return got

    def close(self) -> None:
        """Checkpoint every owned partition and leave the group."""
        for runner in list(self.runners.values()):
            with contextlib.suppress(Exception):
                runner.checkpoint()
            runner.close()
        self.runners.clear()
        self.producer.flush()
        self._consumer.close()
        self.producer.close()

    def stats(self) -> dict[str, int]:
        return {
            "windows_closed": self.windows_closed,
            "records_published": self.records_published,
            "records_fenced": self.records_fenced,
            "dead_letters": self.dead_letters,
            "checkpoints_written": self.checkpoints_written,
        }


# ---------------------------------------------------------------------------------------------------------------
# subprocess entry point


def serve(
    bus_url: str,
    portfolio: Path,
    config: WorkerConfig,
    *,
    partitions: int = 4,
    registry_url: str = "mock://",
    session_timeout_ms: int | None = None,
    until_end: bool = False,
    timeout_s: float | None = None,
    stop: threading.Event | None = None,
) -> dict[str, int]:
    """Run one worker process's worker until ``stop``, ``timeout_s`` or (``until_end``) the last window; returns
    its counters. ``session_timeout_ms`` sets the group session timeout on Kafka (how long a crashed member keeps
    its partitions before the group reassigns them; a broker accepts its ``group.min.session.timeout.ms`` and
    up, 6 s by default)."""
    from ..refdata import load_portfolio

    loaded = load_portfolio(portfolio)
    bus = open_bus(bus_url, partitions=partitions, registry_url=registry_url)
    try:
        timing = getattr(bus, "group_timing", None)
        if session_timeout_ms is not None and isinstance(timing, dict):
            if session_timeout_ms < 1:
                raise ConfigurationError("session_timeout_ms", session_timeout_ms, "must be ≥ 1")
            timing["session.timeout.ms"] = int(session_timeout_ms)
            timing["heartbeat.interval.ms"] = max(1, int(session_timeout_ms) // 5)
        worker = RiskWorker(
            bus, loaded.portfolio, loaded.snapshot, loaded.history, config, name=f"pid{os.getpid()}"
        )
        worker.run(stop=stop, until_end=until_end, timeout_s=timeout_s)
        return worker.stats()
    finally:
        bus.close()


def partition_list(text: str) -> tuple[int, ...]:
    """``"0,1,3"`` → ``(0, 1, 3)`` (the ``--own`` option)."""
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigurationError("own", text, "expected partitions like '0,1,3'") from None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT while the block runs (the worker then checkpoints its partitions and leaves
    the group); the previous handlers come back afterwards. Off the main thread, an event nothing sets."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m riskstream.engine._worker --bus URL --portfolio DIR ...``: one worker process (prints its
    counters as one JSON line when it stops)."""
    ap = argparse.ArgumentParser(prog="riskstream-worker", description=main.__doc__)
    ap.add_argument("--bus", required=True, help="memory | kafka://mock | kafka://HOST:PORT")
    ap.add_argument("--portfolio", required=True, type=Path)
    ap.add_argument("--group", default="risk-workers")
    ap.add_argument("--checkpoint-dir", type=Path, default=Path(".riskstream/checkpoints"))
    ap.add_argument("--mode", choices=("simulation", "live"), default="live")
    ap.add_argument("--window-us", type=int, default=_US, help="simulation window, µs of event time")
    ap.add_argument("--start-us", type=int, default=0)
    ap.add_argument("--end-us", type=int, default=None)
    ap.add_argument("--trigger-ms", type=float, default=200.0, help="live window, ms")
    ap.add_argument("--checkpoint-every", type=int, default=10, help="windows (simulation)")
    ap.add_argument("--checkpoint-every-s", type=float, default=5.0, help="seconds (live)")
    ap.add_argument("--window", type=int, default=500, help="historical scenarios")
    ap.add_argument("--partitions", type=int, default=4, help="partition count of topics the mock creates")
    ap.add_argument("--own", type=partition_list, default=None, help="manual assignment, e.g. 0,1,2,3")
    ap.add_argument("--session-timeout-ms", type=int, default=None)
    ap.add_argument("--registry-url", default="mock://")
    ap.add_argument("--until-end", action="store_true")
    ap.add_argument("--timeout", type=float, default=None)
    args = ap.parse_args(argv)
    config = WorkerConfig(
        group=args.group,
        checkpoint_dir=args.checkpoint_dir,
        mode=args.mode,
        window_us=args.window_us,
        start_us=args.start_us,
        end_us=args.end_us,
        trigger_ms=args.trigger_ms,
        checkpoint_every_windows=args.checkpoint_every,
        checkpoint_every_s=args.checkpoint_every_s,
        stream=StreamConfig(window=args.window, slow_every_s=0.0),
        assigned=args.own,
    )
    with stop_on_signals() as stop:
        stats = serve(
            args.bus,
            args.portfolio,
            config,
            partitions=args.partitions,
            registry_url=args.registry_url,
            session_timeout_ms=args.session_timeout_ms,
            until_end=args.until_end,
            timeout_s=args.timeout,
            stop=stop,
        )
    sys.stdout.write(json.dumps(stats) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
