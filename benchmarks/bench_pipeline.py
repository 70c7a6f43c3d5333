"""The risk worker end to end: (a) ticks/s through consume → decode → validate → engine step on the Kafka mock,
against raw confluent-kafka consumption of the same messages; (b) tick → firm VaR latency at 10,000 ticks/s on the
in-process bus (produce timestamp → firm snapshot published by the aggregator).

Sample bank of 10,000 positions, 500 historical scenarios, 4 positions partitions; synthetic ticks drawn over the
whole factor history (`SyntheticFeed`).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._results import record
from benchmarks.bench_kafka import raw_consume
from riskstream.bus import TopicPartition, now_us, open_bus, partition_for
from riskstream.domain import RiskSnapshot, Tick
from riskstream.engine._pipeline import AggregatorService, publish_ticks
from riskstream.engine._stream import StreamingEngine
from riskstream.engine._stream_config import StreamConfig
from riskstream.engine._worker import VECTORS_TOPIC, Codecs, RiskWorker, WorkerConfig
from riskstream.marketdata import SimulatedClock, SyntheticFeed, Universe, synthetic_history
from riskstream.refdata import sample_bank

POSITIONS = 10_000
SCENARIOS = 500
PARTITIONS = 4
T0_US = 1_700_000_000_000_000
KAFKA_TICKS = 200_000
KAFKA_RATE = 100_000.0  # event-time rate of the replay: 100 ms windows of 10,000 ticks
KAFKA_WINDOW_US = 100_000
LATENCY_RATE = 10_000  # ticks/s
LATENCY_BATCH_MS = 10
LATENCY_SECONDS = 12.0
LATENCY_WARMUP_S = 2.0


def _ticks(history: Any, n: int, rate: float, seed: int) -> list[Tick]:
    clock = SimulatedClock(T0_US)
    stop = T0_US + int(n * 1e6 / rate)
    feed = SyntheticFeed(history, clock=clock, rate=rate, seed=seed, start_us=T0_US, stop_us=stop)
    out: list[Tick] = []
    while not feed.exhausted:
        clock.advance(100_000)
        out.extend(feed.next_batch(1_000_000))
    return out[:n]


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


class _StepTimer:
    """Seconds spent in `StreamingEngine.step` (the engine's share of the worker's time)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._original = StreamingEngine.step

    def __enter__(self) -> _StepTimer:
        original = self._original
        timer = self

        def timed(engine: StreamingEngine, *args: Any, **kw: Any) -> list[RiskSnapshot]:
            start = time.perf_counter()
            try:
                return original(engine, *args, **kw)
            finally:
                timer.seconds += time.perf_counter() - start

        StreamingEngine.step = timed  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        StreamingEngine.step = self._original  # type: ignore[method-assign]


def kafka_path(bank: Any, ticks: list[Tick], own: tuple[int, ...], columnar: bool = True) -> dict[str, Any]:
    """One worker owning ``own`` positions partitions consumes the replay in simulation mode on the Kafka mock
    (``columnar``: the worker's tick path; ``False``: its per-message reference path)."""
    bus = open_bus("kafka://mock", partitions=PARTITIONS)
    try:
        publish_ticks(bus, ticks, Codecs(bus))
        end_us = ticks[-1].event_time_us + 1
        config = WorkerConfig(
            group="bench",
            checkpoint_dir=Path(tempfile.mkdtemp(prefix="bench-pipeline-")),
            mode="simulation",
            window_us=KAFKA_WINDOW_US,
            start_us=T0_US,
            end_us=end_us,
            checkpoint_every_windows=10,
            stream=StreamConfig(window=SCENARIOS, slow_every_s=0.0),
            assigned=own,
            columnar=columnar,
        )
        closes: list[float] = []
        worker = RiskWorker(
            bus,
            bank.portfolio(),
            bank.snapshot,
            bank.history,
            config,
            on_window=lambda p, k, s: closes.append(time.perf_counter()),
        )
        windows = config.last_window - config.first_window + 1
        with _StepTimer() as steps:
            started = time.perf_counter()
            # until its own partitions are done (`until_end` would wait for the partitions nobody owns here)
            worker.run(max_windows=windows * len(own), timeout_s=600)
        assert len(closes) == windows * len(own), (len(closes), windows)
        # steady state: from the first closed window (engines built, restored, fenced) to the last
        per_window = len(ticks) / windows
        span = closes[-1] - closes[0]
        steady_ticks = per_window * (windows - 1)
        raws = [raw_consume(bus.bootstrap, bus.topics.ticks, len(ticks), PARTITIONS) for _ in range(3)]  # type: ignore[attr-defined]
    finally:
        bus.close()
    raw_rate = len(ticks) / statistics.median(raws)
    rate = steady_ticks / span
    return {
        "path": "columnar" if columnar else "per message",
        "partitions": len(own),
        "worker_ticks_s": rate,
        "raw_ticks_s": raw_rate,
        "ratio": rate / raw_rate,
        "engine_share": steps.seconds / (closes[-1] - started),
        "startup_s": closes[0] - started,
    }


def latency(bank: Any, ticks: list[Tick]) -> dict[str, float]:
    """Ticks produced at 10,000/s in 10 ms batches on the memory bus; one worker (every partition, live windows
    closing every 10 ms) and the aggregator (publishing on every new vectors record). A tick's latency: from its
    produce time to the publication of the first firm snapshot whose every partition's window includes it."""
    bus = open_bus("memory", partitions=PARTITIONS)
    codecs = Codecs(bus)
    config = WorkerConfig(
        group="bench-latency",
        checkpoint_dir=Path(tempfile.mkdtemp(prefix="bench-latency-")),
        mode="live",
        trigger_ms=float(LATENCY_BATCH_MS),
        checkpoint_every_s=3600.0,
        stream=StreamConfig(window=SCENARIOS, slow_every_s=0.0),
    )
    # window → input offsets it includes, per positions partition (live windows take everything read)
    covered: dict[int, list[dict[int, int]]] = {p: [] for p in range(PARTITIONS)}
    worker: RiskWorker | None = None

    def on_window(p: int, _k: int, _snaps: list[RiskSnapshot]) -> None:
        assert worker is not None
        runner = worker.runners[p]
        covered[p].append({tp.partition: off for tp, off in runner.offsets.items() if tp in runner.tick_tps})

    worker = RiskWorker(bus, bank.portfolio(), bank.snapshot, bank.history, config, on_window=on_window)
    agg = AggregatorService(bus, config, publish_ms=0.0)
    # firm publications: (time, vectors records consumed per partition)
    published: list[tuple[int, dict[int, int]]] = []
    stop = threading.Event()
    produced: dict[int, list[int]] = {
        q: [] for q in range(PARTITIONS)
    }  # tick partition → produce time by offset

    def aggregate() -> None:
        while not stop.is_set():
            if agg.step(0.001):
                seen = {p: agg.consumer.position(TopicPartition(VECTORS_TOPIC, p)) for p in range(PARTITIONS)}
                published.append((now_us(), seen))
        agg.close()

    def produce() -> None:
        producer = bus.producer()
        topic = bus.topics.ticks
        per = LATENCY_RATE * LATENCY_BATCH_MS // 1000
        nxt = time.perf_counter()
        for i in range(0, len(ticks), per):
            if stop.is_set():
                break
            for t in ticks[i : i + per]:
                stamped = replace(t, event_time_us=now_us())
                key = t.factor_id.encode()
                q = partition_for(key, PARTITIONS)
                producer.produce(topic, codecs.tick.encode(stamped), key=key, partition=q)
                produced[q].append(stamped.event_time_us)
            nxt += LATENCY_BATCH_MS / 1000
            time.sleep(max(0.0, nxt - time.perf_counter()))
        producer.close()

    threads = [
        threading.Thread(target=lambda: worker.run(stop=stop), name="worker"),
        threading.Thread(target=aggregate, name="aggregator"),
    ]
    for t in threads:
        t.start()
    # wait until the engines are built and a first window went through before the feed starts
    while not published:
        time.sleep(0.05)
    feeder = threading.Thread(target=produce, name="feed")
    feeder.start()
    feeder.join()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join()
    bus.close()
    return _latencies(produced, covered, published, ticks)


def _latencies(
    produced: dict[int, list[int]],
    covered: dict[int, list[dict[int, int]]],
    published: list[tuple[int, dict[int, int]]],
    ticks: list[Tick],
) -> dict[str, float]:
    start = min(ts[0] for ts in produced.values() if ts)
    out: list[float] = []
    missed = 0
    for q, times in produced.items():
        for offset, t_us in enumerate(times):
            if t_us - start < LATENCY_WARMUP_S * 1e6:
                continue
            # per positions partition: the first window whose offsets include the tick (its vectors record index)
            need: dict[int, int] = {}
            for p, windows in covered.items():
                k = next((i for i, offs in enumerate(windows) if offs.get(q, 0) > offset), None)
                if k is None:
                    break
                need[p] = k
            if len(need) < len(covered):
                missed += 1
                continue
            when = next((ts for ts, seen in published if all(seen[p] > k for p, k in need.items())), None)
            if when is None:
                missed += 1
                continue
            out.append((when - t_us) / 1000)
    return {
        "p50_ms": _pct(out, 50),
        "p99_ms": _pct(out, 99),
        "max_ms": max(out),
        "ticks": len(out),
        "missed": missed,
        "firm_publications": len(published),
        "windows": statistics.median(len(w) for w in covered.values()),
        "produced": sum(len(t) for t in produced.values()),
        "offered": len(ticks),
    }


def main() -> None:
    universe = Universe.default()
    history = synthetic_history(universe, 0)
    bank = sample_bank(POSITIONS, 0, universe=universe, history=history)
    n_factors = len(history.columns)
    kafka_ticks = _ticks(history, KAFKA_TICKS, KAFKA_RATE, seed=1)
    results = [
        kafka_path(bank, kafka_ticks, own, columnar)
        for own, columnar in (((0,), True), (tuple(range(PARTITIONS)), True), ((0,), False))
    ]
    for r in results:
        print(
            f"kafka path ({r['path']}), worker owning {r['partitions']} partition(s): "
            f"{r['worker_ticks_s']:,.0f} ticks/s vs raw "
            f"{r['raw_ticks_s']:,.0f} msg/s, ratio {r['ratio']:.3f} (goal >= 0.5); engine step share "
            f"{r['engine_share']:.0%}; start-up {r['startup_s']:.1f} s"
        )
    lat_ticks = _ticks(history, int(LATENCY_RATE * LATENCY_SECONDS), float(LATENCY_RATE), seed=2)
    lat = latency(bank, lat_ticks)
    print(
        f"tick → firm VaR at {LATENCY_RATE:,}/s: p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms "
        f"(goal <= 50 ms), max {lat['max_ms']:.0f} ms over {lat['ticks']:,} ticks; {lat['missed']} not covered "
        f"at the end; {lat['firm_publications']} firm publications, {lat['windows']:.0f} windows per partition"
    )
    rows = "\n".join(
        f"| {r['path']} | {r['partitions']} | {r['worker_ticks_s']:,.0f} | {r['raw_ticks_s']:,.0f} | **{r['ratio']:.3f}** | "
        f"{r['engine_share']:.0%} | {r['startup_s']:.1f} |"
        for r in results
    )
    record(
        "pipeline_kafka",
        "Risk worker on Kafka: ticks/s through consume → decode → validate → engine step vs raw consumption",
        f"Sample bank of {POSITIONS:,} positions, {SCENARIOS} historical scenarios, {n_factors} factors in the "
        f"history; {KAFKA_TICKS:,} synthetic Avro ticks (factor drawn uniformly) on librdkafka's mock cluster "
        f"(`kafka://mock`, {PARTITIONS} partitions), replayed in simulation mode with windows of "
        f"{KAFKA_WINDOW_US // 1000} ms of event time ({int(KAFKA_RATE * KAFKA_WINDOW_US / 1e6):,} ticks each). "
        "Worker rate: ticks of the windows after the first ÷ time from the first window's close to the last "
        "(engine construction excluded). Columnar: `poll_batch` → `validate_batch` → `apply_levels`; a worker "
        "owning 4 partitions at the same tick offsets decodes and validates each poll once and steps 4 engines. "
        "Per message: the reference path (`WorkerConfig(columnar=False)`: `poll` → `validate` → `apply_ticks`). "
        "Raw: a bare confluent-kafka consumer reading the same messages without decoding (median of 3, same "
        "run).\n\n"
        "| tick path | partitions owned | worker ticks/s | raw consume msg/s | ratio (goal ≥ 0.5) "
        "| time in engine step | start-up (s) |\n|---|---:|---:|---:|---:|---:|---:|\n" + rows,
        ".venv/bin/python -m benchmarks pipeline",
    )
    record(
        "pipeline_latency",
        "Pipeline: tick → firm VaR latency at 10,000 ticks/s (memory bus)",
        f"Ticks produced at {LATENCY_RATE:,}/s in {LATENCY_BATCH_MS} ms batches for {LATENCY_SECONDS:.0f} s "
        f"(first {LATENCY_WARMUP_S:.0f} s dropped), on the in-process bus, {PARTITIONS} partitions; one worker "
        f"thread owning every partition (live windows every {LATENCY_BATCH_MS} ms), the aggregator publishing "
        "firm and desk snapshots on every new vectors record. Latency of a tick: from its produce time to the "
        "publication of the first firm snapshot whose every partition's window includes it.\n\n"
        "| p50 (ms) | p99 (ms) | max (ms) | ticks measured | firm publications | windows per partition |\n"
        "|---:|---:|---:|---:|---:|---:|\n"
        f"| {lat['p50_ms']:.0f} | **{lat['p99_ms']:.0f}** | {lat['max_ms']:.0f} | {lat['ticks']:,} | "
        f"{lat['firm_publications']} | {lat['windows']:.0f} |\n\nGoal: p99 ≤ 50 ms.",
        ".venv/bin/python -m benchmarks pipeline",
    )


if __name__ == "__main__":
    main()
