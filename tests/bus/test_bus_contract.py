"""The contract both buses keep: the in-process log and Kafka (librdkafka's mock cluster) pass the same tests."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from riskstream.bus import Bus, Consumer, Record, TopicPartition, partition_for
from riskstream.errors import BusError


def drain(consumer: Consumer, n: int, timeout: float = 10.0) -> list[Record]:
    """Poll until ``n`` records arrived (or fail after ``timeout`` seconds)."""
    out: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out.extend(consumer.poll(10_000, 0.1))
    assert len(out) == n, f"expected {n} records, got {len(out)}"
    return out


def produce_keyed(bus: Bus, topic: str, n: int, keys: int = 11) -> list[tuple[bytes, bytes]]:
    producer = bus.producer()
    sent = [(f"K{i % keys}".encode(), f"v{i}".encode()) for i in range(n)]
    for key, value in sent:
        producer.produce(topic, value, key=key)
    producer.flush()
    return sent


def test_keyed_records_land_on_partition_for_in_order(bus: Bus, topic: str) -> None:
    sent = produce_keyed(bus, topic, 500)
    n = bus.partitions(topic)
    assert n == 3
    consumer = bus.consumer(f"g-{topic}")
    consumer.subscribe([topic])
    got = drain(consumer, 500)
    by_partition: dict[int, list[Record]] = defaultdict(list)
    for r in got:
        assert r.partition == partition_for(r.key or b"", n)
        assert r.timestamp_us > 1_600_000_000_000_000  # appended after 2020-09-13, in microseconds
        by_partition[r.partition].append(r)
    for p, records in by_partition.items():
        assert [r.offset for r in records] == list(range(len(records))), p
        expected = [v for k, v in sent if partition_for(k, n) == p]
        assert [r.value for r in records] == expected
    assert bus.end_offsets(topic) == {p: len(by_partition[p]) for p in range(n)}
    consumer.close()


def test_explicit_partition_wins(bus: Bus, topic: str) -> None:
    producer = bus.producer()
    for i in range(10):
        producer.produce(topic, f"v{i}".encode(), key=b"any", partition=2)
    producer.flush()
    assert bus.end_offsets(topic) == {0: 0, 1: 0, 2: 10}


def test_manual_assign_seek_and_position(bus: Bus, topic: str) -> None:
    producer = bus.producer()
    for i in range(20):
        producer.produce(topic, f"v{i}".encode(), partition=1)
    producer.flush()
    tp = TopicPartition(topic, 1)
    consumer = bus.consumer(f"g-{topic}")
    consumer.assign({tp: 5})
    assert consumer.assignment() == [tp]
    assert consumer.position(tp) == 5
    got = drain(consumer, 15)
    assert [r.offset for r in got] == list(range(5, 20))
    assert [r.value for r in got] == [f"v{i}".encode() for i in range(5, 20)]
    assert consumer.position(tp) == 20
    consumer.seek(tp, 3)
    assert consumer.position(tp) == 3
    again = drain(consumer, 17)
    assert [r.offset for r in again] == list(range(3, 20))
    with pytest.raises(BusError):
        consumer.seek(TopicPartition(topic, 0), 0)
    consumer.close()


def test_commit_and_committed_resume_a_group(bus: Bus, topic: str) -> None:
    produce_keyed(bus, topic, 60)
    group = f"g-{topic}"
    first = bus.consumer(group)
    first.subscribe([topic])
    got = drain(first, 60)
    tps = [TopicPartition(topic, p) for p in range(3)]
    assert first.committed(tps) == dict.fromkeys(tps)
    # commit "read up to 2 records of each partition"
    first.commit({tp: 2 for tp in tps})
    assert first.committed(tps) == dict.fromkeys(tps, 2)
    first.close()
    second = bus.consumer(group)
    second.subscribe([topic])
    resumed = drain(second, 60 - 6)
    assert {(r.partition, r.offset) for r in resumed} == {
        (r.partition, r.offset) for r in got if r.offset >= 2
    }
    assert second.committed(tps) == dict.fromkeys(tps, 2)
    second.close()


def test_rebalance_when_a_member_joins_and_leaves(bus: Bus, topic: str) -> None:
    group = f"g-{topic}"
    events: dict[str, list[tuple[str, list[TopicPartition]]]] = {"a": [], "b": []}
    a, b = bus.consumer(group), bus.consumer(group)
    a.subscribe(
        [topic],
        lambda tps: events["a"].append(("assign", tps)),
        lambda tps: events["a"].append(("revoke", tps)),
    )
    deadline = time.monotonic() + 30  # generous: only a loaded machine needs it
    while len(a.assignment()) != 3 and time.monotonic() < deadline:
        a.poll(100, 0.05)
    assert sorted(tp.partition for tp in a.assignment()) == [0, 1, 2]
    assert events["a"] == [("assign", [TopicPartition(topic, p) for p in range(3)])]

    b.subscribe(
        [topic],
        lambda tps: events["b"].append(("assign", tps)),
        lambda tps: events["b"].append(("revoke", tps)),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        a.poll(100, 0.05)
        b.poll(100, 0.05)
        if b.assignment() and len(a.assignment()) + len(b.assignment()) == 3:
            break
    owned_a, owned_b = set(a.assignment()), set(b.assignment())
    # range assignment: 3 partitions over 2 members → 2 + 1, each partition owned by exactly one member
    assert owned_a | owned_b == {TopicPartition(topic, p) for p in range(3)}
    assert not owned_a & owned_b
    assert sorted([len(owned_a), len(owned_b)]) == [1, 2]
    assert ("revoke", [TopicPartition(topic, p) for p in range(3)]) in events["a"]
    assert events["b"] and events["b"][-1] == ("assign", sorted(owned_b, key=lambda tp: tp.partition))

    # records produced now are read once, by their partition's owner
    produce_keyed(bus, topic, 90)
    seen: list[Record] = []
    deadline = time.monotonic() + 30  # generous: only a loaded machine needs it
    while len(seen) < 90 and time.monotonic() < deadline:
        for consumer, owned in ((a, owned_a), (b, owned_b)):
            batch = consumer.poll(1000, 0.05)
            assert all(TopicPartition(r.topic, r.partition) in owned for r in batch)
            seen.extend(batch)
    assert len(seen) == 90
    assert len({(r.partition, r.offset) for r in seen}) == 90

    b.close()
    deadline = time.monotonic() + 15
    while len(a.assignment()) != 3 and time.monotonic() < deadline:
        a.poll(100, 0.05)
    assert sorted(tp.partition for tp in a.assignment()) == [0, 1, 2]
    assert events["a"][-1] == ("assign", [TopicPartition(topic, p) for p in range(3)])
    a.close()
