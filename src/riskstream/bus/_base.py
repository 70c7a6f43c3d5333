"""The bus interface: topics, records, Kafka-compatible key partitioning, producer/consumer protocols, ``open_bus``.

Two implementations share this surface: the in-process log (:mod:`._memory`, the embedded default) and Kafka
(:mod:`._kafka`, on confluent-kafka). Offsets are per topic-partition, start at 0 and increase by one per record;
"position" and committed offsets always mean *the next offset to read*, as in Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from riskstream.errors import ConfigurationError

if TYPE_CHECKING:
    from ._batch import RawBatch

__all__ = [
    "Bus",
    "Consumer",
    "Producer",
    "Record",
    "TopicPartition",
    "Topics",
    "murmur2",
    "now_us",
    "open_bus",
    "partition_for",
]


def now_us() -> int:
    """Wall-clock time in microseconds since the Unix epoch, UTC."""
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class TopicPartition:
    """One partition of one topic."""

    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Record:
    """One message read from the bus: where it sits (topic, partition, offset), its key and value bytes, and the
    time it was appended (microseconds since the epoch; Kafka's millisecond timestamps are scaled by 1000)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_us: int


@dataclass(frozen=True)
class Topics:
    """Topic names of the pipeline; each is configurable so several pipelines can share one cluster."""

    ticks: str = "marketdata.ticks"
    positions: str = "positions"
    snapshots: str = "risk.snapshots"
    alerts: str = "risk.alerts"
    deadletter: str = "deadletter"
    store_events: str = "store.events"

    def all(self) -> tuple[str, ...]:
        """Every topic name, in declaration order."""
        return (self.ticks, self.positions, self.snapshots, self.alerts, self.deadletter, self.store_events)


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """32-bit murmur2 of ``data`` exactly as Kafka's ``org.apache.kafka.common.utils.Utils.murmur2`` (seed
    0x9747b28c), returned as a signed 32-bit int like Java's."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    n4 = length & ~3
    for i in range(0, n4, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[n4 + 2] << 16
    if rest >= 2:
        h ^= data[n4 + 1] << 8
    if rest >= 1:
        h ^= data[n4]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


_PARTITION_CACHE: dict[tuple[bytes, int], int] = {}
_PARTITION_CACHE_MAX = 100_000


def partition_for(key: bytes, n_partitions: int) -> int:
    """The partition Kafka's Java default partitioner (and librdkafka's ``murmur2_random``) picks for ``key``:
    ``(murmur2(key) & 0x7fffffff) % n_partitions``.

    Keys of a stream are few (factor ids, books), so results are cached.
    """
    cached = _PARTITION_CACHE.get((key, n_partitions))
    if cached is not None:
        return cached
    if n_partitions < 1:
        raise ConfigurationError("n_partitions", n_partitions, "must be >= 1")
    p = (murmur2(key) & 0x7FFFFFFF) % n_partitions
    if len(_PARTITION_CACHE) >= _PARTITION_CACHE_MAX:
        _PARTITION_CACHE.clear()
    _PARTITION_CACHE[(key, n_partitions)] = p
    return p


@runtime_checkable
class Producer(Protocol):
    """Appends records to topics. With a key and no explicit partition, the partition is ``partition_for``."""

    def produce(
        self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> None: ...

    def flush(self, timeout: float = 10.0) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Consumer(Protocol):
    """Reads records. Either group-managed (``subscribe``: partitions shared among a group's members, rebalanced
    as members join and leave, callbacks run inside ``poll``) or manual (``assign`` at given offsets)."""

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: Callable[[list[TopicPartition]], None] | None = None,
        on_revoke: Callable[[list[TopicPartition]], None] | None = None,
    ) -> None: ...

    def assign(self, offsets: Mapping[TopicPartition, int]) -> None: ...

    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    def poll(self, max_records: int = 10_000, timeout: float = 0.1) -> list[Record]: ...

    def poll_batch(self, max_records: int = 10_000, timeout: float = 0.1) -> RawBatch: ...

    def position(self, tp: TopicPartition) -> int: ...

    def assignment(self) -> list[TopicPartition]: ...

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...

    def committed(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]: ...

    def close(self) -> None: ...


@runtime_checkable
class Bus(Protocol):
    """A message bus: a factory of producers and consumers plus topic metadata."""

    url: str
    topics: Topics

    def producer(self) -> Producer: ...

    def consumer(self, group: str) -> Consumer: ...

    def partitions(self, topic: str) -> int: ...

    def end_offsets(self, topic: str) -> dict[int, int]: ...

    def close(self) -> None: ...


def open_bus(
    url: str = "memory",
    *,
    partitions: int = 4,
    topics: Topics | None = None,
    registry_url: str = "mock://",
) -> Bus:
    """Open a bus.

    ``url``: ``"memory"`` (in-process log), ``"kafka://mock"`` (librdkafka's mock cluster, started in this
    process) or ``"kafka://HOST:PORT[,HOST:PORT]"`` (a real cluster). ``partitions`` is the partition count of
    every topic the in-process log or the mock cluster creates; a real cluster's topics keep their own.
    ``registry_url`` is the Schema Registry (``mock://`` for an in-memory one, shared within the process).
    """
    if partitions < 1:
        raise ConfigurationError("partitions", partitions, "must be >= 1")
    topics = topics or Topics()
    if url == "memory":
        from ._memory import MemoryBus

        return MemoryBus(partitions=partitions, topics=topics, registry_url=registry_url)
    if url.startswith("kafka://"):
        from ._kafka import KafkaBus

        return KafkaBus(url, partitions=partitions, topics=topics, registry_url=registry_url)
    raise ConfigurationError(
        "url", url, "expected 'memory', 'kafka://mock' or 'kafka://HOST:PORT[,HOST:PORT]'"
    )
