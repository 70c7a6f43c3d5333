"""The pipeline on Kafka (librdkafka's mock cluster) with kcat as a third-party tick producer."""

from __future__ import annotations

import subprocess
import uuid
from collections import Counter
from pathlib import Path

import pytest
from worker_inputs import portfolio_dir, replay_ticks, sim_config

from riskstream.bus import open_bus, partition_for
from riskstream.domain import RiskSnapshot
from riskstream.engine._pipeline import publish_ticks, run_simulation
from riskstream.engine._worker import Codecs
from riskstream.refdata import load_portfolio

pytestmark = pytest.mark.integration


def _by_key(snaps: list[RiskSnapshot]) -> dict[tuple[str, int], dict[str, float]]:
    counts = Counter((s.node, s.sequence) for s in snaps)
    assert max(counts.values()) == 1, "a window was published twice"
    return {(s.node, s.sequence): dict(s.measures) for s in snaps}


def _memory_run(tmp: Path, ticks: list, seconds: float) -> dict[tuple[str, int], dict[str, float]]:
    loaded = load_portfolio(portfolio_dir(tmp.parent))
    bus = open_bus("memory", partitions=4)
    publish_ticks(bus, ticks)
    result = run_simulation(
        bus, loaded.portfolio, loaded.snapshot, loaded.history, sim_config(tmp / "mem", seconds), workers=1
    )
    return _by_key(result.snapshots)


def test_kcat_produced_ticks_give_the_in_process_result(tmp_path: Path) -> None:
    ticks = replay_ticks()
    bus = open_bus("kafka://mock", partitions=4, registry_url=f"mock://{uuid.uuid4().hex}")
    try:
        codecs = Codecs(bus)
        files: dict[int, list[str]] = {}
        for i, t in enumerate(ticks):
            path = tmp_path / "ticks" / f"{i:06d}.avro"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(codecs.tick.encode(t))
            files.setdefault(partition_for(t.factor_id.encode(), 4), []).append(str(path))
        for q, names in sorted(files.items()):
            # kcat sends each file as one message, in order: binary Avro needs no delimiter
            subprocess.run(
                ["kcat", "-P", "-b", bus.bootstrap, "-t", bus.topics.ticks, "-p", str(q), *names],
                check=True,
                timeout=60,
            )
        assert sum(bus.end_offsets(bus.topics.ticks).values()) == len(ticks)
        loaded = load_portfolio(portfolio_dir(tmp_path.parent))
        result = run_simulation(
            bus, loaded.portfolio, loaded.snapshot, loaded.history, sim_config(tmp_path / "kafka"), workers=2
        )
        got = _by_key(result.snapshots)
    finally:
        bus.close()
    assert got == _memory_run(tmp_path, ticks, 4.0)
