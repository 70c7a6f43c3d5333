"""The embedded bus: an in-process, thread-safe, append-only log per topic-partition, with consumer groups.

It behaves like Kafka where the pipeline can tell: offsets per partition from 0, keyed records partitioned with
Kafka's murmur2 partitioner, consumer groups whose coordinator range-assigns partitions and rebalances when a
member subscribes or closes (the eager protocol: each member sees ``on_revoke`` of its whole old assignment, then
``on_assign`` of its new one, both from inside its own ``poll``), committed group offsets, manual assignment.
After a rebalance a member resumes each partition at the group's committed offset (0 if none), as a Kafka consumer
does with ``auto.offset.reset=earliest``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from riskstream.errors import BusError, ConfigurationError

from ._base import Record, TopicPartition, Topics, now_us, partition_for
from ._batch import RawBatch

__all__ = ["MemoryBus"]

_Callback = Callable[[list[TopicPartition]], None]


class _Partition:
    """One partition's log as parallel lists (a record's offset is its index), so a poll takes slices."""

    __slots__ = ("keys", "timestamps", "values")

    def __init__(self) -> None:
        self.keys: list[bytes | None] = []
        self.values: list[bytes] = []
        self.timestamps: list[int] = []

    def __len__(self) -> int:
        return len(self.values)

    def append(self, key: bytes | None, value: bytes, timestamp_us: int) -> None:
        self.keys.append(key)
        self.values.append(value)
        self.timestamps.append(timestamp_us)


class _Group:
    """Coordinator state of one consumer group: members, their subscriptions, the assignment, committed offsets."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, tuple[str, ...]] = {}
        self.assignment: dict[str, list[TopicPartition]] = {}
        self.generation = 0
        self.committed: dict[TopicPartition, int] = {}


class MemoryBus:
    """In-process bus (``open_bus("memory")``). Every topic has ``partitions`` partitions, created on first use."""

    def __init__(
        self, *, partitions: int = 4, topics: Topics | None = None, registry_url: str = "mock://"
    ) -> None:
        if partitions < 1:
            raise ConfigurationError("partitions", partitions, "must be >= 1")
        self.url = "memory"
        self.topics = topics or Topics()
        self.registry_url = registry_url
        self._n = partitions
        # one lock guards the logs and the groups; the condition wakes consumers blocked in poll
        self._lock = threading.Lock()
        self._appended = threading.Condition(self._lock)
        # topic → partition → its log
        self._logs: dict[str, list[_Partition]] = {}
        self._groups: dict[str, _Group] = {}
        self._member_ids = itertools.count()
        self._closed = False

    def _log(self, topic: str) -> list[_Partition]:
        log = self._logs.get(topic)
        if log is None:
            log = self._logs[topic] = [_Partition() for _ in range(self._n)]
        return log

    def producer(self) -> _MemoryProducer:
        return _MemoryProducer(self)

    def consumer(self, group: str) -> _MemoryConsumer:
        if not group:
            raise ConfigurationError("group", group, "a consumer needs a group id")
        return _MemoryConsumer(self, group)

    def partitions(self, topic: str) -> int:
        """Partition count of ``topic`` (every topic has the bus's count)."""
        return self._n

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Partition → offset the next appended record will get."""
        with self._lock:
            return {p: len(records) for p, records in enumerate(self._log(topic))}

    def close(self) -> None:
        self._closed = True

    # -- coordinator ---------------------------------------------------------------------------------------------

    def _rebalance(self, group: _Group) -> None:
        """Range assignment (Kafka's ``RangeAssignor``): per topic, members subscribed to it in member-id order
        each get a contiguous range; the first ``n % m`` members get one partition more. Caller holds the lock."""
        assignment: dict[str, list[TopicPartition]] = {m: [] for m in group.subscriptions}
        topics = sorted({t for subs in group.subscriptions.values() for t in subs})
        for topic in topics:
            members = sorted(m for m, subs in group.subscriptions.items() if topic in subs)
            n = self.partitions(topic)
            per, extra = divmod(n, len(members))
            start = 0
            for i, member in enumerate(members):
                count = per + (1 if i < extra else 0)
                assignment[member].extend(TopicPartition(topic, p) for p in range(start, start + count))
                start += count
        group.assignment = assignment
        group.generation += 1


class _MemoryProducer:
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus
        self._closed = False

    def produce(
        self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> None:
        """Append one record to ``partition``, or to ``partition_for(key, n)`` for a key, or else to the topic's
        shortest partition."""
        bus = self._bus
        if self._closed or bus._closed:
            raise BusError("produce on a closed producer or bus")
        if partition is None:
            if key is not None:
                partition = partition_for(key, bus._n)
            else:
                partition = self._unkeyed_partition(topic)
        elif not 0 <= partition < bus._n:
            raise ConfigurationError("partition", partition, f"topic {topic!r} has {bus._n} partitions")
        ts = now_us()
        with bus._lock:
            log = bus._logs.get(topic) or bus._log(topic)
            log[partition].append(key, value, ts)
            bus._appended.notify_all()

    def produce_batch(
        self, topic: str, values: Sequence[bytes], keys: Sequence[bytes | None] | None = None
    ) -> None:
        """Append many records under one lock (keys partition them as in ``produce``)."""
        bus = self._bus
        if self._closed or bus._closed:
            raise BusError("produce on a closed producer or bus")
        ts = now_us()
        n = bus._n
        keys = keys if keys is not None else [None] * len(values)
        if len(keys) != len(values):
            raise ConfigurationError("keys", len(keys), f"expected {len(values)} keys, one per value")
        with bus._lock:
            log = bus._log(topic)
            for key, value in zip(keys, values, strict=True):
                p = partition_for(key, n) if key is not None else min(range(n), key=lambda i: len(log[i]))
                log[p].append(key, value, ts)
            bus._appended.notify_all()

    def _unkeyed_partition(self, topic: str) -> int:
        with self._bus._lock:
            log = self._bus._log(topic)
            return min(range(self._bus._n), key=lambda i: len(log[i]))

    def flush(self, timeout: float = 10.0) -> None:
        """Records are appended synchronously: nothing is ever pending."""

    def close(self) -> None:
        self._closed = True


class _MemoryConsumer:
    def __init__(self, bus: MemoryBus, group: str) -> None:
        self._bus = bus
        self._group_id = group
        self._group = bus._groups.setdefault(group, _Group())
        self._member = f"{group}-{next(bus._member_ids):08d}"
        self._subscribed = False
        self._generation = 0
        self._on_assign: _Callback | None = None
        self._on_revoke: _Callback | None = None
        self._assigned: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._closed = False

    # -- membership ----------------------------------------------------------------------------------------------

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: _Callback | None = None,
        on_revoke: _Callback | None = None,
    ) -> None:
        """Join the group for ``topics``; the assignment arrives (with ``on_assign``) in the next ``poll``."""
        self._check_open()
        if isinstance(topics, str):
            raise ConfigurationError("topics", topics, "expected a sequence of topic names")
        self._on_assign, self._on_revoke = on_assign, on_revoke
        with self._bus._lock:
            self._group.subscriptions[self._member] = tuple(topics)
            self._bus._rebalance(self._group)
            self._subscribed = True

    def assign(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Read exactly these partitions from these offsets, outside group management."""
        self._check_open()
        self._leave_group()
        for tp, offset in offsets.items():
            self._check_partition(tp)
            if offset < 0:
                raise ConfigurationError(
                    "offset", offset, f"offset of {tp.topic}[{tp.partition}] must be >= 0"
                )
        self._assigned = list(offsets)
        self._positions = dict(offsets)

    def _leave_group(self) -> None:
        if self._subscribed:
            with self._bus._lock:
                self._group.subscriptions.pop(self._member, None)
                self._group.assignment.pop(self._member, None)
                self._bus._rebalance(self._group)
            self._subscribed = False

    def _sync_group(self) -> None:
        """Take part in a rebalance the coordinator has decided since the last poll."""
        group = self._group
        with self._bus._lock:
            if not self._subscribed or group.generation == self._generation:
                return
            self._generation = group.generation
            new = list(group.assignment.get(self._member, []))
            committed = dict(group.committed)
        old = self._assigned
        if self._on_revoke is not None and old:
            self._on_revoke(list(old))
        self._assigned = new
        self._positions = {tp: committed.get(tp, 0) for tp in new}
        if self._on_assign is not None:
            self._on_assign(list(new))

    # -- reading -------------------------------------------------------------------------------------------------

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """The next ``poll`` returns ``tp`` from ``offset``."""
        if tp not in self._positions:
            raise BusError(f"seek on {tp.topic}[{tp.partition}], which is not assigned to this consumer")
        if offset < 0:
            raise ConfigurationError("offset", offset, "must be >= 0")
        self._positions[tp] = offset

    def _fetch(
        self, max_records: int, timeout: float
    ) -> list[tuple[TopicPartition, int, list[bytes | None], list[bytes], list[int]]]:
        """Slices of up to ``max_records`` records of the assigned partitions, as (tp, first offset, keys, values,
        timestamps); advances the positions; waits up to ``timeout`` seconds when none is available."""
        self._check_open()
        self._sync_group()
        bus = self._bus
        deadline = time.monotonic() + timeout
        out: list[tuple[TopicPartition, int, list[bytes | None], list[bytes], list[int]]] = []
        with bus._lock:
            while True:
                remaining = max_records
                for tp in self._assigned:
                    log = bus._logs.get(tp.topic)
                    if log is None:
                        continue
                    part = log[tp.partition]
                    start = self._positions[tp]
                    stop = min(len(part), start + remaining)
                    if stop <= start:
                        continue
                    out.append(
                        (
                            tp,
                            start,
                            part.keys[start:stop],
                            part.values[start:stop],
                            part.timestamps[start:stop],
                        )
                    )
                    self._positions[tp] = stop
                    remaining -= stop - start
                    if remaining <= 0:
                        break
                left = deadline - time.monotonic()
                if out or left <= 0 or bus._closed:
                    return out
                bus._appended.wait(left)
                if self._subscribed and self._group.generation != self._generation:
                    return out  # a rebalance is pending: hand it to the next poll

    def poll(self, max_records: int = 10_000, timeout: float = 0.1) -> list[Record]:
        """Up to ``max_records`` records from the assigned partitions, in offset order within each partition;
        waits up to ``timeout`` seconds when none is available."""
        out: list[Record] = []
        for tp, start, keys, values, stamps in self._fetch(max_records, timeout):
            topic, partition = tp.topic, tp.partition
            out.extend(
                Record(topic, partition, offset, k, v, ts)
                for offset, k, v, ts in zip(itertools.count(start), keys, values, stamps)
            )
        return out

    def poll_batch(self, max_records: int = 10_000, timeout: float = 0.1) -> RawBatch:
        """``poll`` as columns: the same records in the same order, without an object per record."""
        slices = self._fetch(max_records, timeout)
        if not slices:
            return RawBatch.empty()
        if len(slices) == 1:
            tp, start, keys, values, stamps = slices[0]
            n = len(values)
            return RawBatch(
                (tp,),
                np.zeros(n, np.int32),
                np.arange(start, start + n, dtype=np.int64),
                keys,
                values,
                np.array(stamps, np.int64),
            )
        sizes = [len(v) for _, _, _, v, _ in slices]
        return RawBatch(
            tuple(tp for tp, _, _, _, _ in slices),
            np.repeat(np.arange(len(slices), dtype=np.int32), sizes),
            np.concatenate(
                [
                    np.arange(s, s + k, dtype=np.int64)
                    for (_, s, _, _, _), k in zip(slices, sizes, strict=True)
                ]
            ),
            list(itertools.chain.from_iterable(keys for _, _, keys, _, _ in slices)),
            list(itertools.chain.from_iterable(values for _, _, _, values, _ in slices)),
            np.concatenate([np.array(ts, np.int64) for _, _, _, _, ts in slices]),
        )

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record ``poll`` returns for ``tp``."""
        self._sync_group()
        try:
            return self._positions[tp]
        except KeyError:
            raise BusError(f"{tp.topic}[{tp.partition}] is not assigned to this consumer") from None

    def assignment(self) -> list[TopicPartition]:
        self._sync_group()
        return list(self._assigned)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Store the group's next offsets to read."""
        self._check_open()
        for tp, offset in offsets.items():
            self._check_partition(tp)
            if offset < 0:
                raise ConfigurationError("offset", offset, f"committed offset of {tp.topic}[{tp.partition}]")
        with self._bus._lock:
            self._group.committed.update(offsets)

    def committed(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        with self._bus._lock:
            return {tp: self._group.committed.get(tp) for tp in tps}

    def close(self) -> None:
        """Leave the group (the others are rebalanced at their next poll)."""
        if self._closed:
            return
        self._leave_group()
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise BusError(f"consumer of group {self._group_id!r} is closed")

    def _check_partition(self, tp: TopicPartition) -> None:
        if not 0 <= tp.partition < self._bus._n:
            raise ConfigurationError(
                "partition", tp.partition, f"topic {tp.topic!r} has {self._bus._n} partitions"
            )
