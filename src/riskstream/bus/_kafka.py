"""The Kafka bus on confluent-kafka (librdkafka): a real cluster, or librdkafka's mock cluster in this process.

``kafka://mock`` starts the mock cluster that librdkafka builds in when a client is configured with
``test.mock.num.brokers``: one broker speaking the real Kafka wire protocol on a loopback port, so other processes
(``kcat -b HOST:PORT``) can join it; ``bus.bootstrap`` is that ``host:port``. The mock answers no CreateTopics and
auto-creates a topic with a partition count fixed in librdkafka (``rdkafka_mock.c``: ``defaults.partition_cnt =
4``; the only ``test.mock.*`` settings are ``num.brokers`` and ``broker.rtt``), so the bus creates its topics through
librdkafka's public mock API (``rd_kafka_mock_topic_create``, called with ctypes on the library confluent-kafka
loaded) with the configured count, before any client touches them. It also sets the mock group coordinator's
initial rebalance delay to 0 (a real broker's ``group.initial.rebalance.delay.ms`` is 3 s), so groups form at once.

``kafka://HOST:PORT[,HOST:PORT]`` connects to a real cluster with the same code; its topics keep the partition
counts the cluster gives them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import confluent_kafka
import numpy as np
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient

from riskstream.errors import BusError, ConfigurationError

from ._base import Record, TopicPartition, Topics, partition_for
from ._batch import RawBatch

__all__ = ["KafkaBus", "MockCluster"]

_Callback = Callable[[list[TopicPartition]], None]

_LOG_LEVEL = 3  # librdkafka syslog levels: 3 = errors only (the mock's disconnect notices are not errors)


def _librdkafka() -> ctypes.CDLL:
    """The librdkafka that confluent-kafka loaded (its wheel bundles one; else the system's)."""
    here = os.path.dirname(os.path.dirname(confluent_kafka.__file__))
    candidates = sorted(glob.glob(os.path.join(here, "confluent_kafka.libs", "librdkafka*.so*")))
    path = candidates[0] if candidates else ctypes.util.find_library("rdkafka")
    if not path:
        raise BusError("cannot find librdkafka to start the Kafka mock cluster")
    lib = ctypes.CDLL(path)
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_handle_mock_cluster.restype = ctypes.c_void_p
    lib.rd_kafka_handle_mock_cluster.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_topic_create.restype = ctypes.c_int
    lib.rd_kafka_mock_topic_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.restype = None
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    return lib


class MockCluster:
    """librdkafka's mock cluster, owned by a client configured ``test.mock.num.brokers=1`` kept alive until
    ``close``. ``bootstrap`` is its ``host:port``, read back from metadata."""

    def __init__(self, default_partitions: int) -> None:
        self._lib = _librdkafka()
        lib = self._lib
        conf = lib.rd_kafka_conf_new()
        err = ctypes.create_string_buffer(512)
        for name, value in (("test.mock.num.brokers", "1"), ("log_level", str(_LOG_LEVEL))):
            if lib.rd_kafka_conf_set(conf, name.encode(), value.encode(), err, len(err)) != 0:
                raise BusError(f"mock cluster config {name}={value}: {err.value.decode()}")
        self._rk = lib.rd_kafka_new(0, conf, err, len(err))  # 0 = RD_KAFKA_PRODUCER
        if not self._rk:
            raise BusError(f"cannot start the Kafka mock cluster: {err.value.decode()}")
        self._mcluster = lib.rd_kafka_handle_mock_cluster(self._rk)
        if not self._mcluster:
            raise BusError("librdkafka did not start a mock cluster")
        lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self._mcluster, 0)
        self.default_partitions = default_partitions
        self._created: set[str] = set()
        self._lock = threading.Lock()
        bootstraps = lib.rd_kafka_mock_cluster_bootstraps(self._mcluster).decode()
        # the brokers as every client sees them: confirm through metadata rather than trusting the mock's string
        admin = AdminClient({"bootstrap.servers": bootstraps, "log_level": _LOG_LEVEL})
        brokers = admin.list_topics(timeout=10).brokers.values()
        self.bootstrap = ",".join(f"{b.host}:{b.port}" for b in brokers)

    def create_topic(self, topic: str, partitions: int | None = None) -> None:
        """Create ``topic`` with ``partitions`` (default: the cluster's count) unless it exists."""
        with self._lock:
            if topic in self._created:
                return
            n = partitions or self.default_partitions
            code = self._lib.rd_kafka_mock_topic_create(self._mcluster, topic.encode(), n, 1)
            # 36 = TOPIC_ALREADY_EXISTS: a client auto-created it first; its count is read from metadata
            if code not in (0, 36):
                raise BusError(f"mock cluster could not create topic {topic!r}: {KafkaError(code).str()}")
            self._created.add(topic)

    def close(self) -> None:
        if self._rk:
            self._lib.rd_kafka_destroy(self._rk)
            self._rk = None


_Message = confluent_kafka.Message


def _timestamp_of(message: confluent_kafka.Message) -> int:
    return message.timestamp()[1]  # milliseconds since the epoch


def _to_kafka(tp: TopicPartition, offset: int = -1001) -> KafkaTopicPartition:
    return KafkaTopicPartition(tp.topic, tp.partition, offset)


def _from_kafka(tps: Sequence[KafkaTopicPartition]) -> list[TopicPartition]:
    return [TopicPartition(tp.topic, tp.partition) for tp in tps]


class KafkaBus:
    """Bus on a Kafka cluster (``open_bus("kafka://...")``)."""

    def __init__(
        self,
        url: str,
        *,
        partitions: int = 4,
        topics: Topics | None = None,
        registry_url: str = "mock://",
        config: Mapping[str, Any] | None = None,
    ) -> None:
        if not url.startswith("kafka://") or len(url) <= len("kafka://"):
            raise ConfigurationError("url", url, "expected 'kafka://mock' or 'kafka://HOST:PORT[,HOST:PORT]'")
        self.url = url
        self.topics = topics or Topics()
        self.registry_url = registry_url
        self._partitions = partitions
        self._config = dict(config or {})
        target = url[len("kafka://") :]
        self.mock: MockCluster | None = None
        if target == "mock":
            self.mock = MockCluster(partitions)
            self.bootstrap = self.mock.bootstrap
            for topic in self.topics.all():
                self.mock.create_topic(topic)
        else:
            self.bootstrap = target
        # the mock coordinator completes a rebalance when a timer of one session timeout fires: keep it short there
        # (a real broker refuses session timeouts below its group.min.session.timeout.ms, 6 s by default)
        self.group_timing: dict[str, int] = (
            {"session.timeout.ms": 1500, "heartbeat.interval.ms": 200} if self.mock is not None else {}
        )
        self._meta: confluent_kafka.Consumer | None = None
        self._meta_lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._clients: weakref.WeakSet[KafkaProducer | KafkaConsumer] = weakref.WeakSet()

    def client_config(self, **extra: Any) -> dict[str, Any]:
        """Configuration every client of this bus starts from."""
        return {"bootstrap.servers": self.bootstrap, "log_level": _LOG_LEVEL, **self._config, **extra}

    def ensure_topic(self, topic: str) -> None:
        """On the mock cluster, create ``topic`` with the bus's partition count before first use."""
        if self.mock is not None:
            self.mock.create_topic(topic)

    def producer(self) -> KafkaProducer:
        producer = KafkaProducer(self)
        self._clients.add(producer)
        return producer

    def consumer(self, group: str) -> KafkaConsumer:
        if not group:
            raise ConfigurationError("group", group, "a consumer needs a group id")
        consumer = KafkaConsumer(self, group)
        self._clients.add(consumer)
        return consumer

    def _metadata_client(self) -> confluent_kafka.Consumer:
        if self._meta is None:
            self._meta = confluent_kafka.Consumer(
                self.client_config(**{"group.id": "riskstream-metadata", "enable.auto.commit": False})
            )
        return self._meta

    def partitions(self, topic: str) -> int:
        """Partition count of ``topic``, from cluster metadata (cached)."""
        n = self._counts.get(topic)
        if n is not None:
            return n
        self.ensure_topic(topic)
        with self._meta_lock:
            deadline = time.monotonic() + 10
            while True:
                meta = self._metadata_client().list_topics(topic, timeout=10)
                info = meta.topics.get(topic)
                if info is not None and info.error is None and info.partitions:
                    n = self._counts[topic] = len(info.partitions)
                    return n
                if time.monotonic() > deadline:
                    raise BusError(f"topic {topic!r} has no metadata: {info.error if info else 'absent'}")
                time.sleep(0.05)

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Partition → high watermark (the offset the next record will get)."""
        n = self.partitions(topic)
        with self._meta_lock:
            client = self._metadata_client()
            try:
                return {
                    p: client.get_watermark_offsets(KafkaTopicPartition(topic, p), timeout=10)[1]
                    for p in range(n)
                }
            except KafkaException as exc:
                raise BusError(f"watermarks of topic {topic!r}: {exc}") from exc

    def close(self) -> None:
        """Close every client this bus made that is still open, then the cluster connection (and the mock)."""
        for client in list(self._clients):
            try:
                client.close()
            except BusError:
                pass  # undelivered records on shutdown: nothing left to report them to
        with self._meta_lock:
            if self._meta is not None:
                self._meta.close()
                self._meta = None
        if self.mock is not None:
            self.mock.close()
            self.mock = None


def _delivery_errors(errors: list[str]) -> Callable[[KafkaError | None, Any], None]:
    """Delivery callback appending failures to ``errors`` (a closure, not a bound method: no reference cycle
    keeps the librdkafka client alive after its producer is dropped)."""

    def on_delivery(err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            errors.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")

    return on_delivery


class KafkaProducer:
    """Idempotent producer; keyed records go to ``partition_for(key, n)``, exactly as Java clients'."""

    def __init__(self, bus: KafkaBus) -> None:
        self._bus = bus
        self._errors: list[str] = []
        self._producer = confluent_kafka.Producer(
            bus.client_config(
                **{
                    "enable.idempotence": True,
                    "linger.ms": 2,
                    # the Java default partitioner, should a record reach librdkafka without a partition
                    "partitioner": "murmur2_random",
                    "delivery.report.only.error": True,
                    "on_delivery": _delivery_errors(self._errors),
                }
            )
        )
        self._known: set[str] = set()
        self._since_poll = 0

    def produce(
        self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> None:
        if topic not in self._known:
            self._bus.ensure_topic(topic)
            self._known.add(topic)
        if partition is None:
            partition = partition_for(key, self._bus.partitions(topic)) if key is not None else -1
        while True:
            try:
                self._producer.produce(topic, value, key, partition)
                break
            except BufferError:  # local queue full: let librdkafka send, then retry
                self._producer.poll(0.05)
            except KafkaException as exc:
                raise BusError(f"produce to {topic!r}: {exc}") from exc
            except AttributeError:
                raise BusError(f"produce to {topic!r} on a closed producer") from None
        self._since_poll += 1
        if self._since_poll >= 1000:
            self._producer.poll(0)
            self._since_poll = 0

    def flush(self, timeout: float = 10.0) -> None:
        """Wait for every record to be acknowledged; BusError if one failed or ``timeout`` (s) passed."""
        if self._producer is None:
            return
        remaining = self._producer.flush(timeout)
        if self._errors:
            errors, self._errors = self._errors, []
            raise BusError(f"{len(errors)} record(s) not delivered, first: {errors[0]}")
        if remaining:
            raise BusError(f"{remaining} record(s) not delivered within {timeout} s")

    def close(self) -> None:
        """Deliver what is pending (BusError if that fails), then release the client."""
        if self._producer is None:
            return
        try:
            self.flush()
        finally:
            self._producer = None  # type: ignore[assignment]


class KafkaConsumer:
    """Consumer of one group: ``subscribe`` for group management (range assignment), ``assign`` for manual."""

    def __init__(self, bus: KafkaBus, group: str) -> None:
        self._bus = bus
        self.group = group
        self._consumer = confluent_kafka.Consumer(
            bus.client_config(
                **{
                    "group.id": group,
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    # without it librdkafka backs off fetching for 1 s when its queue fills; the mock then stalls
                    "fetch.queue.backoff.ms": 0,
                    "partition.assignment.strategy": "range",
                    **bus.group_timing,
                }
            )
        )
        self._positions: dict[TopicPartition, int] = {}
        self._assigned: list[TopicPartition] = []
        self._manual = False
        self._closed = False

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: _Callback | None = None,
        on_revoke: _Callback | None = None,
    ) -> None:
        if isinstance(topics, str):
            raise ConfigurationError("topics", topics, "expected a sequence of topic names")
        for topic in topics:
            self._bus.ensure_topic(topic)

        def assigned(_consumer: Any, partitions: list[KafkaTopicPartition]) -> None:
            tps = _from_kafka(partitions)
            self._assigned = tps
            for tp in tps:
                self._positions.pop(tp, None)
            if on_assign is not None:
                on_assign(tps)

        def revoked(_consumer: Any, partitions: list[KafkaTopicPartition]) -> None:
            tps = _from_kafka(partitions)
            self._assigned = []
            self._positions.clear()
            if on_revoke is not None and tps:
                on_revoke(tps)

        self._manual = False
        self._consumer.subscribe(list(topics), on_assign=assigned, on_revoke=revoked)

    def assign(self, offsets: Mapping[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            self._bus.ensure_topic(tp.topic)
            if offset < 0:
                raise ConfigurationError(
                    "offset", offset, f"offset of {tp.topic}[{tp.partition}] must be >= 0"
                )
        self._manual = True
        self._consumer.assign([_to_kafka(tp, o) for tp, o in offsets.items()])
        self._assigned = list(offsets)
        self._positions = dict(offsets)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if offset < 0:
            raise ConfigurationError("offset", offset, "must be >= 0")
        if tp not in self._assigned:
            raise BusError(f"seek on {tp.topic}[{tp.partition}], which is not assigned to this consumer")
        if self._manual:
            # re-assigning is the one way that works before the first fetch of a partition has started
            self._positions[tp] = offset
            self._consumer.assign([_to_kafka(t, self.position(t)) for t in self._assigned])
            return
        try:
            self._consumer.seek(_to_kafka(tp, offset))
        except KafkaException as exc:
            raise BusError(f"seek {tp.topic}[{tp.partition}] to {offset}: {exc}") from exc
        self._positions[tp] = offset

    def poll(self, max_records: int = 10_000, timeout: float = 0.1) -> list[Record]:
        try:
            messages = self._consumer.consume(num_messages=max_records, timeout=timeout)
        except KafkaException as exc:
            raise BusError(f"consume of group {self.group!r}: {exc}") from exc
        out: list[Record] = []
        last: dict[tuple[str, int], int] = {}
        for m in messages:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise BusError(f"consumer of group {self.group!r}: {err.str()}")
                continue  # transient (e.g. a partition EOF notice); librdkafka retries by itself
            topic, partition, offset = m.topic(), m.partition(), m.offset()
            # a message without error always has topic, partition, offset and a value (b"" when empty)
            out.append(Record(topic, partition, offset, m.key(), m.value(), m.timestamp()[1] * 1000))  # type: ignore[arg-type]
            last[(topic, partition)] = offset  # type: ignore[index,assignment]
        for (topic, partition), offset in last.items():
            self._positions[TopicPartition(topic, partition)] = offset + 1
        return out

    def poll_batch(self, max_records: int = 10_000, timeout: float = 0.1) -> RawBatch:
        """``poll`` as columns, straight from the messages of one ``consume``: no ``Record`` per message."""
        try:
            messages = self._consumer.consume(num_messages=max_records, timeout=timeout)
        except KafkaException as exc:
            raise BusError(f"consume of group {self.group!r}: {exc}") from exc
        if not messages:
            return RawBatch.empty()
        errors = list(map(_Message.error, messages))
        if errors.count(None) != len(errors):
            for err in errors:
                if err is not None and err.fatal():
                    raise BusError(f"consumer of group {self.group!r}: {err.str()}")
            # transient notices (e.g. a partition EOF): librdkafka retries by itself
            messages = [m for m, err in zip(messages, errors, strict=True) if err is None]
            if not messages:
                return RawBatch.empty()
        n = len(messages)
        topics: list[str] = list(map(_Message.topic, messages))  # type: ignore[arg-type]
        partitions = np.fromiter(map(_Message.partition, messages), np.int32, n)
        offsets = np.fromiter(map(_Message.offset, messages), np.int64, n)
        keys = list(map(_Message.key, messages))
        values = list(map(_Message.value, messages))

        def stamps() -> np.ndarray:
            return np.fromiter(map(_timestamp_of, messages), np.int64, n) * 1000

        topic = topics[0]
        if topics.count(topic) == n:
            # one topic (the usual case): index partitions through a table as long as the highest partition
            present = np.flatnonzero(np.bincount(partitions))
            table = np.zeros(int(present[-1]) + 1, np.int32)
            table[present] = np.arange(len(present), dtype=np.int32)
            tps = tuple(TopicPartition(topic, int(p)) for p in present.tolist())
            tp_index = table[partitions]
        else:
            codes: dict[tuple[str, int], int] = {}
            tp_index = np.fromiter(
                (codes.setdefault(tp, len(codes)) for tp in zip(topics, partitions.tolist(), strict=True)),
                np.int32,
                n,
            )
            tps = tuple(TopicPartition(t, p) for t, p in codes)
        batch = RawBatch(tps, tp_index, offsets, keys, values, stamps)  # type: ignore[arg-type]
        self._positions.update(batch.next_offsets())
        return batch

    def position(self, tp: TopicPartition) -> int:
        known = self._positions.get(tp)
        if known is not None:
            return known
        if tp not in self._assigned:
            raise BusError(f"{tp.topic}[{tp.partition}] is not assigned to this consumer")
        committed = self.committed([tp])[tp]
        if committed is not None:
            return committed
        low, _high = self._consumer.get_watermark_offsets(_to_kafka(tp), timeout=10)
        return int(low)

    def assignment(self) -> list[TopicPartition]:
        return _from_kafka(self._consumer.assignment())

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=[_to_kafka(tp, o) for tp, o in offsets.items()], asynchronous=False)
        except KafkaException as exc:
            raise BusError(f"commit of group {self.group!r}: {exc}") from exc

    def committed(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        if not tps:
            return {}
        try:
            result = self._consumer.committed([_to_kafka(tp) for tp in tps], timeout=10)
        except KafkaException as exc:
            raise BusError(f"committed offsets of group {self.group!r}: {exc}") from exc
        return {TopicPartition(r.topic, r.partition): (r.offset if r.offset >= 0 else None) for r in result}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()
