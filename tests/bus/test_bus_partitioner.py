"""``partition_for`` is Kafka's Java default partitioner: murmur2 on published vectors, and librdkafka agrees."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from riskstream.bus import Bus, murmur2, partition_for

# Apache Kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2 (signed Java ints)
KAFKA_UTILS_TEST_MURMUR2 = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("key", "expected"), KAFKA_UTILS_TEST_MURMUR2)
def test_murmur2_matches_kafka_utils_test(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@pytest.mark.parametrize(("key", "expected"), KAFKA_UTILS_TEST_MURMUR2)
def test_partition_is_positive_murmur2_modulo(key: bytes, expected: int) -> None:
    # DefaultPartitioner / BuiltInPartitioner.partitionForKey: Utils.toPositive(Utils.murmur2(key)) % n,
    # toPositive(x) = x & 0x7fffffff
    for n in (1, 3, 4, 12, 1000):
        assert partition_for(key, n) == (expected & 0x7FFFFFFF) % n


@pytest.mark.integration
def test_librdkafka_murmur2_partitioner_agrees(kafka_bus: Bus, topic: str) -> None:
    """librdkafka's ``murmur2_random`` partitioner (documented as Java-compatible) places keys where we do."""
    n = kafka_bus.partitions(topic)
    placed: dict[bytes, int] = {}

    def delivered(err, msg) -> None:  # type: ignore[no-untyped-def]
        assert err is None
        placed[msg.key()] = msg.partition()

    producer = Producer({"bootstrap.servers": kafka_bus.bootstrap, "partitioner": "murmur2_random"})  # type: ignore[attr-defined]
    keys = [f"EQ.N{i}".encode() for i in range(200)] + [k for k, _ in KAFKA_UTILS_TEST_MURMUR2]
    for key in keys:
        producer.produce(topic, b"x", key, on_delivery=delivered)
    assert producer.flush(10) == 0
    assert placed == {key: partition_for(key, n) for key in keys}
