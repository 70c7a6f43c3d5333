"""Tick consumption on librdkafka's mock cluster: raw confluent-kafka against the riskstream Kafka path.

500,000 Avro ticks (keyed by factor id, 200 factors, 12 partitions) are produced once. Then (a) a bare confluent-kafka
consumer reads them with batch ``consume`` and no decoding (the baseline), and (b) the riskstream path reads the
same messages two ways: the columnar path (``Consumer.poll_batch`` → ``RawBatch``, ``TickValidator.validate_batch``
→ ``TickBatch``: vectorised Avro decode and checks) and the per-message path (``Consumer.poll`` records,
``decode_many`` (Avro → Tick) and ``TickValidator.validate``: all checks and per-source sequences). The memory bus
moving the same encoded values is shown for reference, per message and columnar.
"""

from __future__ import annotations

import itertools
import statistics
import time

import confluent_kafka
from prometheus_client import CollectorRegistry

from benchmarks._results import record
from riskstream.bus import TickValidator, TopicPartition, codec_for, decode_tick_columns, open_bus
from riskstream.domain import Tick

N = 500_000
FACTORS = [f"EQ.S{i:03d}" for i in range(200)]
# librdkafka's mock keeps about 5 MiB per partition (older record batches are dropped): 12 partitions keep
# every one of the 500k ticks
PARTITIONS = 12
BATCH = 10_000
T0_US = 1_700_000_000_000_000
ROUNDS = 5  # raw and columnar reads alternate this many times; medians are reported (the machine is shared)
_GROUPS = itertools.count()


def _ticks() -> list[Tick]:
    return [
        Tick(FACTORS[i % len(FACTORS)], 100.0 + (i % 997) / 100, f"feed-{i % 8}", i, T0_US + i, None, None)
        for i in range(N)
    ]


def raw_consume(bootstrap: str, topic: str, n: int = N, partitions: int = PARTITIONS) -> float:
    """Seconds a bare confluent-kafka consumer (no decoding) takes to read ``n`` messages of ``topic`` from
    offset 0 of its ``partitions``: the baseline every Kafka-path ratio is taken against."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-raw-{next(_GROUPS)}",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": 0,
            "auto.offset.reset": "earliest",
            "log_level": 3,
        }
    )
    consumer.assign([confluent_kafka.TopicPartition(topic, p, 0) for p in range(partitions)])
    start = time.perf_counter()
    got = 0
    while got < n:
        got += sum(1 for m in consumer.consume(num_messages=BATCH, timeout=1.0) if m.error() is None)
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed


def _riskstream_consume(bus, topic: str, columnar: bool = False) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Read and validate all N ticks on either bus: per message (``poll`` + ``validate``) or columnar
    (``poll_batch`` + ``validate_batch``). Returns (seconds, accepted ticks)."""
    validator = TickValidator(FACTORS, clock=lambda: T0_US + N, registry=CollectorRegistry())
    consumer = bus.consumer(f"bench-riskstream-{next(_GROUPS)}")
    consumer.assign({TopicPartition(topic, p): 0 for p in range(PARTITIONS)})
    read, validate = (
        (consumer.poll_batch, validator.validate_batch) if columnar else (consumer.poll, validator.validate)
    )
    start = time.perf_counter()
    n = accepted = 0
    while n < N:
        batch = read(BATCH, 1.0)
        n += len(batch)
        ticks, _dead = validate(batch)
        accepted += len(ticks)
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed, accepted


def _memory(values: list[bytes], keys: list[bytes]) -> tuple[float, float, float]:
    bus = open_bus("memory", partitions=PARTITIONS)
    producer = bus.producer()
    start = time.perf_counter()
    for i in range(0, N, BATCH):
        producer.produce_batch("ticks", values[i : i + BATCH], keys[i : i + BATCH])  # type: ignore[attr-defined]
    produce_s = time.perf_counter() - start
    consumer = bus.consumer("bench")
    consumer.assign({TopicPartition("ticks", p): 0 for p in range(PARTITIONS)})
    start = time.perf_counter()
    n = 0
    while n < N:
        n += len(consumer.poll(BATCH, 0.1))
    poll_s = time.perf_counter() - start
    columnar_s, accepted = _riskstream_consume(bus, "ticks", columnar=True)
    assert accepted == N, accepted
    return produce_s, poll_s, columnar_s


def main() -> None:
    codec = codec_for(Tick)
    ticks = _ticks()
    start = time.perf_counter()
    values = [codec.encode(t) for t in ticks]
    encode_s = time.perf_counter() - start
    keys = [t.factor_id.encode() for t in ticks]

    bus = open_bus("kafka://mock", partitions=PARTITIONS)
    topic = bus.topics.ticks
    producer = bus.producer()
    start = time.perf_counter()
    for key, value in zip(keys, values, strict=True):
        producer.produce(topic, value, key=key)
    producer.flush(60)
    produce_s = time.perf_counter() - start
    assert sum(bus.end_offsets(topic).values()) == N

    raw_times: list[float] = []
    columnar_times: list[float] = []
    for _ in range(ROUNDS):
        raw_times.append(raw_consume(bus.bootstrap, topic))  # type: ignore[attr-defined]
        columnar_s, accepted = _riskstream_consume(bus, topic, columnar=True)
        assert accepted == N, accepted
        columnar_times.append(columnar_s)
    ours_s, accepted = _riskstream_consume(bus, topic)
    assert accepted == N, accepted
    bus.close()
    start = time.perf_counter()
    decoded, failures = codec.decode_many(values)
    decode_s = time.perf_counter() - start
    assert len(decoded) == N and not failures
    start = time.perf_counter()
    for i in range(0, N, BATCH):
        batch, failures = decode_tick_columns(values[i : i + BATCH], codec)
        assert len(batch) == len(values[i : i + BATCH]) and not failures
    columns_s = time.perf_counter() - start
    mem_produce_s, mem_poll_s, mem_columnar_s = _memory(values, keys)

    raw_rate = N / statistics.median(raw_times)
    columnar_rate = N / statistics.median(columnar_times)
    ours_rate = N / ours_s
    rows = [
        ("Avro encode (`AvroCodec.encode`)", N / encode_s),
        ("Kafka produce, keyed, idempotent (`Producer.produce` + `flush`)", N / produce_s),
        ("**raw confluent-kafka consume, no decoding (baseline)**", raw_rate),
        ("**riskstream columnar: `Consumer.poll_batch` + `TickValidator.validate_batch`**", columnar_rate),
        ("riskstream per message: `Consumer.poll` + `decode_many` + `TickValidator.validate`", ours_rate),
        (f"`decode_tick_columns` alone (Avro → TickBatch, batches of {BATCH:,})", N / columns_s),
        ("`decode_many` alone (Avro → Tick)", N / decode_s),
        ("memory bus `produce_batch`", N / mem_produce_s),
        ("memory bus `poll`", N / mem_poll_s),
        ("memory bus columnar: `poll_batch` + `validate_batch`", N / mem_columnar_s),
    ]
    ratio = columnar_rate / raw_rate
    per_message_ratio = ours_rate / raw_rate
    for name, rate in rows:
        print(f"{name:90s} {rate:12,.0f} msg/s")
    print(
        f"columnar path / raw consume: {ratio:.2f} (goal >= 0.5); per-message path: {per_message_ratio:.2f}"
    )
    spread = ", ".join(f"{N / r:,.0f}/{N / c:,.0f}" for r, c in zip(raw_times, columnar_times, strict=True))
    print(f"rounds (raw/columnar msg/s): {spread}")
    table = "\n".join(f"| {name} | {rate:,.0f} |" for name, rate in rows)
    body = (
        f"{N:,} Avro ticks ({len(values[0])} bytes each, Confluent wire format), keyed by factor id over "
        f"{len(FACTORS)} factors, {PARTITIONS} partitions, on librdkafka's mock cluster (`kafka://mock`), "
        f"batches of {BATCH:,}. Every tick passes validation. Raw and columnar reads alternate {ROUNDS} times on "
        f"the same messages (medians; rounds raw/columnar msg/s: {spread}), then the per-message path once.\n\n"
        "| step | messages/s |\n|---|---:|\n"
        + table
        + f"\n\ncolumnar path ÷ raw consumption: **{ratio:.2f}** (goal ≥ 0.5); per-message path ÷ raw: "
        f"{per_message_ratio:.2f}. The per-message path is bound by Python work per message (a `Record`, the Avro "
        "decode, a frozen `Tick`, the checks); the columnar one parses and checks whole columns with numpy."
    )
    record(
        "kafka_path",
        "Kafka tick path: riskstream vs raw confluent-kafka",
        body,
        ".venv/bin/python -m benchmarks kafka",
    )


if __name__ == "__main__":
    main()
