"""Crash recovery: a worker process on the Kafka mock cluster, killed with SIGKILL at random points and restarted
until its input is consumed, publishes exactly what an uninterrupted run publishes — value by value, no window
twice, every input record counted once."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from worker_inputs import (
    START_US,
    WINDOW_US,
    portfolio_dir,
    position_events,
    publish_events,
    replay_ticks,
    sim_config,
)

from riskstream.bus import Bus, TopicPartition, open_bus
from riskstream.engine._checkpoint import CheckpointStore
from riskstream.engine._pipeline import AggregatorService, publish_ticks, read_snapshots, run_simulation
from riskstream.engine._worker import VECTORS_TOPIC, Codecs, _read_range, ensure_vectors_topic
from riskstream.refdata import load_portfolio

pytestmark = pytest.mark.integration

SECONDS = 6.0  # 24 windows of 250 ms
GROUP = "crash"


def _topic(bus: Bus, topic: str) -> dict[tuple[int, int], bytes]:
    """(partition, offset) → value of every record of ``topic``."""
    reader = bus.consumer("test.reader")
    out: dict[tuple[int, int], bytes] = {}
    try:
        for p, end in sorted(bus.end_offsets(topic).items()):
            if end:
                for r in _read_range(reader, TopicPartition(topic, p), 0, end):
                    out[(p, r.offset)] = r.value
    finally:
        reader.close()
    return out


def _published(bus: Bus, codecs: Codecs) -> dict[str, object]:
    snaps = read_snapshots(bus, codecs)
    keys = Counter((s.node, s.sequence) for s in snaps)
    vectors = _topic(bus, VECTORS_TOPIC)
    return {
        "snapshot_counts": keys,
        "snapshots": {(s.node, s.sequence): (dict(s.measures), dict(s.input_offsets)) for s in snaps},
        # a partition's vectors, window after window, as published (the bytes hold window, partition, leaves)
        "vectors": {p: [v for (q, _), v in sorted(vectors.items()) if q == p] for p in range(4)},
        "alerts": sorted(_topic(bus, bus.topics.alerts).values()),
        "dead": sorted(_topic(bus, bus.topics.deadletter).values()),
    }


def _worker_cmd(bus: Bus, folder: Path, ckpt: Path, registry: str) -> list[str]:
    return [
        sys.executable, "-m", "riskstream.engine._worker",
        "--bus", f"kafka://{bus.bootstrap}", "--portfolio", str(folder), "--group", GROUP,
        "--checkpoint-dir", str(ckpt), "--mode", "simulation", "--window-us", str(WINDOW_US),
        "--start-us", str(START_US), "--end-us", str(START_US + int(SECONDS * 1e6)),
        "--checkpoint-every", "1", "--window", "250", "--own", "0,1,2,3",
        "--registry-url", registry, "--until-end", "--timeout", "90",
    ]  # fmt: skip


def _vector_count(bus: Bus) -> int:
    return sum(bus.end_offsets(VECTORS_TOPIC).values())


@pytest.mark.timeout(120)
def test_sigkilled_worker_publishes_what_an_uninterrupted_run_publishes(tmp_path: Path) -> None:
    ticks = replay_ticks(SECONDS)
    events = position_events(SECONDS)
    folder = portfolio_dir(tmp_path.parent)
    loaded = load_portfolio(folder)

    # the uninterrupted run: one worker thread and the aggregator on the in-process bus
    mem = open_bus("memory", partitions=4)
    mem_codecs = Codecs(mem)
    publish_ticks(mem, ticks, mem_codecs)
    publish_events(mem, events, mem_codecs)
    config = sim_config(tmp_path / "ref", SECONDS)
    run_simulation(mem, loaded.portfolio, loaded.snapshot, loaded.history, config, workers=1)
    expected = _published(mem, mem_codecs)

    registry = f"mock://{uuid.uuid4().hex}"
    bus = open_bus("kafka://mock", partitions=4, registry_url=registry)
    try:
        codecs = Codecs(bus)  # first in this registry: the schema ids the worker process gives them too
        ensure_vectors_topic(bus)
        publish_ticks(bus, ticks, codecs)
        publish_events(bus, events, codecs)
        cmd = _worker_cmd(bus, folder, tmp_path / "ckpt", registry)
        rng = random.Random(20_240_601)
        kills = 0
        progress = 0
        while kills < 3:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            # kill at a random instant after the restarted worker has published something new: every run
            # makes progress and dies mid-work (publishing, producing or writing a checkpoint)
            deadline = time.monotonic() + 60
            while _vector_count(bus) <= progress and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.25))
            if proc.poll() is not None:
                _out, err = proc.communicate()
                pytest.fail(
                    f"the worker ended before it was killed: {proc.returncode} {err.decode()[-2000:]}"
                )
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            kills += 1
            progress = _vector_count(bus)
        # 4 partitions × 24 windows: the killed runs left work to do
        assert progress < 4 * 24
        final = subprocess.run(cmd, capture_output=True, timeout=90)
        assert final.returncode == 0, final.stderr.decode()[-3000:]

        agg = AggregatorService(bus, sim_config(tmp_path / "ckpt", SECONDS, group=GROUP))
        agg.run(timeout_s=30)
        got = _published(bus, codecs)

        # no tick lost or counted twice: every partition's last checkpoint has read each input to its end
        store = CheckpointStore(tmp_path / "ckpt", GROUP)
        ends = {
            f"{t}:{q}": e
            for t in (bus.topics.ticks, bus.topics.positions)
            for q, e in bus.end_offsets(t).items()
        }
        for p in range(4):
            ckpt = store.load(p)
            assert ckpt is not None and ckpt.window == config.last_window
            for key, offset in ckpt.input_offsets.items():
                assert offset == ends[key], f"partition {p}: {key} read to {offset} of {ends[key]}"
    finally:
        bus.close()

    assert max(got["snapshot_counts"].values()) == 1, "a window was published twice"
    # every book, trader, desk and firm snapshot of every window: the same measures, exactly, and the same input
    # offsets (each window reflects exactly the same input records)
    assert got["snapshots"].keys() == expected["snapshots"].keys()
    for key, value in expected["snapshots"].items():
        assert got["snapshots"][key] == value, key
    assert got["vectors"] == expected["vectors"]
    assert got["alerts"] == expected["alerts"]
    assert got["dead"] == expected["dead"] == []
