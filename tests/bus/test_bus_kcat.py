"""A third-party client on the wire: kcat (Debian's, librdkafka-based) produces to and consumes from the mock
cluster alongside the bus."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from riskstream.bus import Bus, TopicPartition, codec_for, partition_for
from riskstream.domain import Tick

pytestmark = pytest.mark.integration

KCAT = shutil.which("kcat") or "/usr/bin/kcat"
DELIM = b"\n--riskstream-message--\n"


def test_bus_reads_ticks_that_kcat_produced(kafka_bus: Bus, topic: str, tmp_path: Path) -> None:
    codec = codec_for(Tick)
    ticks = [
        Tick(f"EQ.S{i % 7}", 100.0 + i, "kcat", i, 1_700_000_000_000_000 + i, 99.5 + i, 100.5 + i)
        for i in range(50)
    ]
    values = [codec.encode(t) for t in ticks]
    assert not any(DELIM in v or b":" in t.factor_id.encode() for v, t in zip(values, ticks, strict=True))
    path = tmp_path / "ticks.bin"
    path.write_bytes(
        b"".join(t.factor_id.encode() + b":" + v + DELIM for t, v in zip(ticks, values, strict=True))
    )
    n = kafka_bus.partitions(topic)  # creates the topic with the bus's partition count first
    subprocess.run(
        [
            KCAT,
            "-P",
            "-b",
            kafka_bus.bootstrap,
            "-t",
            topic,
            "-K:",
            "-D",
            DELIM.decode(),
            "-X",  # type: ignore[attr-defined]
            "partitioner=murmur2_random",
            "-l",
            str(path),
        ],
        check=True,
        timeout=30,
        capture_output=True,
    )
    consumer = kafka_bus.consumer(f"g-{topic}")
    consumer.assign({TopicPartition(topic, p): 0 for p in range(n)})
    records = []
    deadline = time.monotonic() + 10
    while len(records) < len(ticks) and time.monotonic() < deadline:
        records.extend(consumer.poll(1000, 0.1))
    consumer.close()
    decoded, failures = codec.decode_many([r.value for r in records])
    assert failures == []
    assert sorted(decoded, key=lambda t: t.sequence) == ticks
    for r, t in zip(records, decoded, strict=True):
        assert r.key == t.factor_id.encode() and r.partition == partition_for(r.key, n)


def test_kcat_reads_what_the_bus_produced(kafka_bus: Bus, topic: str) -> None:
    codec = codec_for(Tick)
    producer = kafka_bus.producer()
    ticks = [Tick(f"FX.C{i % 5}", 1.0 + i / 100, "bus", i, 1_700_000_000_000_000) for i in range(40)]
    for t in ticks:
        producer.produce(topic, codec.encode(t), key=t.factor_id.encode())
    producer.flush()
    listing = subprocess.run(
        [
            KCAT,
            "-C",
            "-b",
            kafka_bus.bootstrap,
            "-t",
            topic,
            "-e",
            "-o",
            "beginning",
            "-q",
            "-f",
            r"%k %p %o %S\n",
        ],  # type: ignore[attr-defined]
        check=True,
        timeout=30,
        capture_output=True,
    ).stdout.decode()
    rows = [line.split() for line in listing.splitlines() if line]
    assert len(rows) == 40
    n = kafka_bus.partitions(topic)
    assert all(int(p) == partition_for(k.encode(), n) for k, p, _o, _s in rows)
    # the raw value of one message, byte for byte, decodes to the tick that was sent
    key, partition, offset, size = rows[0]
    raw = subprocess.run(
        [
            KCAT,
            "-C",
            "-b",
            kafka_bus.bootstrap,
            "-t",
            topic,
            "-p",
            partition,
            "-o",
            offset,
            "-c",
            "1",
            "-e",
            "-q",
            "-f",
            "%s",
        ],  # type: ignore[attr-defined]
        check=True,
        timeout=30,
        capture_output=True,
    ).stdout
    assert len(raw) == int(size)
    tick = codec.decode(raw)
    assert tick.factor_id == key and tick in ticks
